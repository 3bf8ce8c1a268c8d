"""Helpers for the operations tests: running `switchyard dev`, reading its banner, process trees."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from devstack.processes import Process, free_port, switchyard, wait_until

READY_LINE = "Switchyard is up"


def dev_env(data_dir: Path, *, api_port: int, flower_port: int) -> dict[str, str]:
    """The environment of a `switchyard dev` that owns everything under `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.update(
        SWITCHYARD_DATA_DIR=str(data_dir),
        SWITCHYARD_API__PORT=str(api_port),
        SWITCHYARD_FLOWER__PORT=str(flower_port),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass(frozen=True)
class Banner:
    """What `switchyard dev` printed once it was up."""

    api: str
    flower: str
    flower_user: str
    flower_password: str
    token: str
    submit_line: str
    read_line: str


def parse_banner(output: str) -> Banner:
    """Pull the URLs, credentials and the two curl lines out of the banner."""
    block = output[output.index(READY_LINE) :]

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, block, re.MULTILINE)
        assert match, f"banner lacks {pattern!r}:\n{block}"
        return match

    flower = find(r"^\s+Flower\s+(\S+)\s+\(user (\S+), password (\S+)\)")
    return Banner(
        api=find(r"^\s+API docs\s+(\S+)/docs").group(1),
        flower=flower.group(1),
        flower_user=flower.group(2),
        flower_password=flower.group(3),
        token=find(r"export SWITCHYARD_API_KEY=(\S+)").group(1),
        submit_line=find(r"^JOB=\$\(curl .*$").group(0),
        read_line=find(r"^sleep 1; curl .*$").group(0),
    )


class DevStackProcess:
    """`switchyard dev` as a subprocess in its own session, as a terminal would run it."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.env = dev_env(data_dir, api_port=free_port(), flower_port=free_port())
        self.proc = Process(switchyard("dev"), env=self.env, log_path=log_path)

    def wait_up(self, timeout: float = 120) -> Banner:
        """Wait for the banner; fail early if the supervisor exits."""

        def up() -> bool:
            if self.proc.popen.poll() is not None:
                raise AssertionError(f"switchyard dev exited:\n{self.proc.output()[-6000:]}")
            return READY_LINE in self.proc.output()

        wait_until(up, timeout=timeout, interval=0.2, what="switchyard dev to come up")
        return parse_banner(self.proc.output())

    def tree(self) -> list[psutil.Process]:
        """The supervisor, every descendant, and the embedded PostgreSQL with its backends."""
        root = psutil.Process(self.proc.pid)
        procs = [root, *root.children(recursive=True)]
        pidfile = self.data_dir / "pgdata" / "postmaster.pid"
        if pidfile.exists():
            postmaster = psutil.Process(int(pidfile.read_text().split()[0]))
            procs += [postmaster, *postmaster.children(recursive=True)]
        return procs

    def interrupt(self, timeout: float = 60, *, sig: int = signal.SIGINT) -> int:
        """Ctrl-C (or, with SIGHUP, a closed terminal): `sig` to the foreground process group;
        returns the exit code."""
        os.killpg(self.proc.pid, sig)
        try:
            return self.proc.popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"dev did not stop:\n{self.proc.output()[-4000:]}") from exc

    def close(self) -> None:
        """Stop it if a test failed half-way (SIGTERM: the supervisor still cleans up), and the
        embedded PostgreSQL too if the supervisor died without stopping it."""
        self.proc.stop(timeout=60)
        pidfile = self.data_dir / "pgdata" / "postmaster.pid"
        with suppress(OSError, ValueError, IndexError):
            postmaster = psutil.Process(int(pidfile.read_text().split()[0]))
            postmaster.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            postmaster.wait(30)


def alive(procs: list[psutil.Process]) -> list[str]:
    """Descriptions of the processes still running (zombies count as gone)."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{p.pid} {' '.join(p.cmdline())}")
        except psutil.NoSuchProcess:
            continue
    return left
