"""Helpers shared by the tests: polling with a deadline, settings as env vars, processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr
from pydantic_core import to_jsonable_python

from config import Settings

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        last = found
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that make a child process read exactly `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        plain = _revealed(value)
        text = json.dumps(plain) if isinstance(plain, dict | list) else str(plain)
        env[f"SWITCHYARD_{name.upper()}"] = text
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _revealed(value: Any) -> Any:
    """`value` as JSON types, secrets in clear: the child must read them, not `**********`."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _revealed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_revealed(v) for v in value]
    return to_jsonable_python(value)


def isolated(settings: Settings, **updates: Any) -> Settings:
    """`settings` with a Redis key prefix of their own, so no other worker of the run sees it."""
    redis_settings = settings.redis.model_copy(
        update={"key_prefix": f"{settings.redis.key_prefix}{uuid.uuid4().hex[:8]}:"}
    )
    return settings.model_copy(update={"redis": redis_settings, **updates})


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, args: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            args,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The leader's pid."""
        return self.popen.pid

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole group (the worker and its pool children)."""
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reaps."""
        if self.popen.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.popen.wait(5)
        self.kill(signal.SIGKILL)  # stragglers left in the group
        self._log.close()


def switchyard(*args: str) -> list[str]:
    """The command line that runs `switchyard ARGS` with this interpreter."""
    return [sys.executable, "-m", "cli", *args]


@contextmanager
def running(args: list[str], *, env: dict[str, str], log_path: Path) -> Iterator[Process]:
    """Run a process for the duration of the block."""
    proc = Process(args, env=env, log_path=log_path)
    try:
        yield proc
    finally:
        proc.stop()
