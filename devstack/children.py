"""Children of `switchyard dev`: each in its own session, its output prefixed and coloured."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from logs import get_logger

log = get_logger("switchyard.dev")
PARENT_ENV = "SWITCHYARD_DEV_PARENT"
COLOURS = (36, 35, 33, 32, 34, 91, 96, 95)
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child of `switchyard dev`: get SIGTERM if the supervisor dies, even by SIGKILL."""
    expected = os.environ.get(PARENT_ENV)
    if not expected or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(expected):  # the supervisor died before prctl took hold
        os._exit(1)


class LogMux:
    """One stream for every child: `name | line`, a colour per name when it is a terminal."""

    def __init__(self, out: IO[str], *, colour: bool) -> None:
        self.out = out
        self.colour = colour
        self.lock = threading.Lock()
        self.width = 7

    def line(self, name: str, text: str, *, index: int = 0) -> None:
        """Write one prefixed line."""
        prefix = f"{name:<{self.width}}|"
        if self.colour:
            prefix = f"\033[{COLOURS[index % len(COLOURS)]}m{prefix}\033[0m"
        with self.lock:
            self.out.write(f"{prefix} {text.rstrip()}\n")
            self.out.flush()

    def banner(self, text: str) -> None:
        """Write a block as is."""
        with self.lock:
            self.out.write(text)
            self.out.flush()


@dataclass
class Child:
    """One supervised process."""

    name: str
    popen: subprocess.Popen[bytes]
    ready_marker: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    # Start the same command again (same name, environment and colour), for a restart.
    relaunch: Callable[[], Child] | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        """The child's pid (also its process group id)."""
        return self.popen.pid

    def signal_group(self, sig: int) -> None:
        """Signal the child's whole process group (a worker and its pool)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, *, timeout: float) -> None:
        """SIGTERM the group, SIGKILL it if it lingers, and reap."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("dev_child_killed", child=self.name, after_seconds=timeout)
                self.signal_group(signal.SIGKILL)
                self.popen.wait(5)
        self.signal_group(signal.SIGKILL)  # pool children the leader left behind


def spawn(
    name: str,
    argv: list[str],
    *,
    env: dict[str, str],
    mux: LogMux,
    index: int,
    ready_marker: str | None = None,
    preexec: Callable[[], None] | None = None,
) -> Child:
    """Start `argv` in a new session and stream its output through `mux`."""
    popen = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops us in order
        preexec_fn=preexec,
    )
    child = Child(name=name, popen=popen, ready_marker=ready_marker)
    # A restart forks without the preexec hook: once log threads run, a hook in the forked
    # child could deadlock (a restarted Redis is stopped by the supervisor's shutdown alone).
    child.relaunch = lambda: spawn(
        name, argv, env=env, mux=mux, index=index, ready_marker=ready_marker
    )

    def pump() -> None:
        assert popen.stdout is not None
        for raw in iter(popen.stdout.readline, b""):
            text = raw.decode(errors="replace")
            child.tail.append(text)
            if child.ready_marker and child.ready_marker in text:
                child.ready.set()
            mux.line(name, text, index=index)

    threading.Thread(target=pump, name=f"dev-{name}", daemon=True).start()
    return child
