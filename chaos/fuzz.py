"""The longer schemathesis pass of `make chaos`: every operation of the served OpenAPI, fuzzed.

Reported, not judged: hostile input still finds 500s that are being fixed (issue 10, item 1),
and the battery's verdict rests on the ledger's invariants. Only server errors are checked.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from chaos.invariants import Row

MIN_SECONDS = 20.0  # below this a pass says little; skip it instead


def _binary() -> str | None:
    beside = Path(sys.executable).with_name("schemathesis")
    return str(beside) if beside.exists() else shutil.which("schemathesis")


def run(base: str, token: str, *, seconds: float, logs: Path) -> list[Row]:
    """Fuzz the API at `base` for about `seconds`; rows for the report."""
    binary = _binary()
    if binary is None:
        return [Row("schemathesis", "skipped", note="not installed (pip install -e '.[dev]')")]
    if seconds < MIN_SECONDS:
        return [Row("schemathesis", "skipped", note=f"only {seconds:.0f} s of the budget left")]
    junit = logs / "schemathesis-junit.xml"
    argv = [
        binary, "run", f"{base}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error",
        "--max-time", str(int(seconds)),
        "--workers", "2",
        "--request-timeout", "10",
        "--seed", "1",
        "--report", "junit", "--report-junit-path", str(junit),
    ]  # fmt: skip
    with (logs / "schemathesis.log").open("w") as out:
        try:
            # In the logs dir: its example database goes there, not into the work tree.
            subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=seconds + 60, cwd=logs
            )
        except subprocess.TimeoutExpired:
            return [Row("schemathesis", "timeout", note=f"see {logs / 'schemathesis.log'}")]
    if not junit.exists():
        return [Row("schemathesis", "no report", note=f"see {logs / 'schemathesis.log'}")]
    generated = re.search(r"(\d+) generated", (logs / "schemathesis.log").read_text())
    return [
        Row("test cases generated", generated.group(1) if generated else "?"),
        *summarise(junit.read_text()),
    ]


def summarise(xml: str) -> list[Row]:
    """Operations tested, and those where the API answered a server error."""
    cases = ET.fromstring(xml).iter("testcase")
    tested, errors = 0, []
    for case in cases:
        tested += 1
        failures = [el for el in case if el.tag == "failure"]
        # ST101 is schemathesis's code for `not_a_server_error`; its text says "Server error".
        if any(
            "ST101" in el.get("message", "") or "Server error" in (el.text or "") for el in failures
        ):
            errors.append(case.get("name", "?"))
    return [
        Row("operations fuzzed", tested),
        Row("operations answering a server error", len(errors), note="; ".join(errors)),
    ]
