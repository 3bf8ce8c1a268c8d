"""Restarting a crashed child of `switchyard dev`: after a backoff that doubles with each crash
in a row (1 s, 2 s, 4 s … 30 s) and starts over once the child has stayed up a minute."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

from devstack.children import Child, LogMux

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # seconds up after which a crash counts as the first of a new series


@dataclass
class Restarts:
    """The crashed children waiting for their restart, and each one's crash series."""

    mux: LogMux
    crashes: dict[str, int] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)

    def delay(self, name: str) -> float:
        """The backoff before restarting `name` after its latest crash."""
        return min(MAX_DELAY, FIRST_DELAY * 2.0 ** (self.crashes[name] - 1))

    def crashed(self, child: Child) -> None:
        """Note that `child` exited by itself and schedule its restart."""
        if child.name in self.due:
            return
        child.signal_group(signal.SIGKILL)  # what it left behind (a killed worker's pool)
        if time.monotonic() - child.started_at > STABLE_AFTER:
            self.crashes[child.name] = 0
        self.crashes[child.name] = self.crashes.get(child.name, 0) + 1
        wait = self.delay(child.name)
        self.due[child.name] = time.monotonic() + wait
        self.mux.line(
            "dev",
            f"{child.name} exited with {child.popen.returncode}; restarting it in {wait:.0f}s "
            f"(crash {self.crashes[child.name]} in a row)",
        )

    def restart_due(self, children: list[Child]) -> None:
        """Start again, in place, every crashed child whose backoff has passed."""
        now = time.monotonic()
        for n, child in enumerate(children):
            at = self.due.get(child.name)
            if at is None or at > now or child.relaunch is None:
                continue
            del self.due[child.name]
            children[n] = child.relaunch()
            self.mux.line("dev", f"{child.name} restarted (pid {children[n].pid})")
