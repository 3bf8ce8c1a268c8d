"""The README's runnable examples: the fenced blocks marked to run against `switchyard dev`,
and a way to run one as written, recording what every `curl` in it answered."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import ROOT

MARKER = "<!-- readme-test:"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Every curl of the example also reports its status and URL on stderr, and fails on >= 400.
PRELUDE = """set -euo pipefail
curl() { command curl --fail-with-body --show-error \\
  -w '%{stderr}README-CURL %{http_code} %{url_effective}\\n' "$@"; }
"""
STATUS = re.compile(r"^README-CURL (\d{3}) (\S+)$", re.MULTILINE)


def marked_examples(readme: Path = ROOT / "README.md") -> list[str]:
    """The ```bash blocks that directly follow a `<!-- readme-test: … -->` line, in order."""
    text = readme.read_text()
    examples = []
    for part in text.split(MARKER)[1:]:
        after = part.split("\n", 1)[1]
        match = BLOCK.match(after)
        assert match, f"a readme-test marker is not followed by a ```bash block: {after[:200]}"
        examples.append(match.group(1))
    return examples


@dataclass(frozen=True)
class ExampleRun:
    """What running one example did."""

    returncode: int
    stdout: str
    stderr: str
    statuses: list[tuple[int, str]]  # every curl's HTTP status and URL, in order


def run_example(
    example: str, *, api: str, cwd: Path, env: dict[str, str], timeout: float = 120
) -> ExampleRun:
    """Run `example` in bash from `cwd` (a stand-in for the repository root, whose `.switchyard`
    is the stack's data dir), its `localhost:8000` / `127.0.0.1:8000` meaning the stack's API."""
    netloc = api.removeprefix("http://")
    script = example.replace("localhost:8000", netloc).replace("127.0.0.1:8000", netloc)
    done = subprocess.run(
        ["bash", "-c", PRELUDE + script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    statuses = [(int(code), url) for code, url in STATUS.findall(done.stderr)]
    return ExampleRun(done.returncode, done.stdout, done.stderr, statuses)
