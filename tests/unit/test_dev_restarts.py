"""`switchyard dev`'s restart backoff: doubling per crash in a row, capped, reset when stable."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from devstack.children import Child, LogMux
from devstack.restarts import MAX_DELAY, STABLE_AFTER, Restarts

pytestmark = pytest.mark.usefixtures("no_io")


@dataclass
class FakePopen:
    returncode: int = -9
    pid: int = 4242


@dataclass
class FakeChild:
    """What Restarts reads of a child: a name, how it exited, when it started, its group."""

    name: str = "relay"
    popen: FakePopen = field(default_factory=FakePopen)
    started_at: float = field(default_factory=time.monotonic)
    signalled: list[int] = field(default_factory=list)
    relaunched: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal_group(self, sig: int) -> None:
        self.signalled.append(sig)

    def relaunch(self) -> Any:
        self.relaunched += 1
        return FakeChild(name=self.name, popen=FakePopen(returncode=0, pid=self.pid + 1))


def crash(restarts: Restarts, child: FakeChild) -> None:
    restarts.crashed(cast(Child, child))  # a fake with the fields Restarts reads
    restarts.due[child.name] = 0.0  # backoff over: restart it now
    children: list[Any] = [child]
    restarts.restart_due(children)
    assert child.relaunched == 1 and children[0] is not child


def test_each_crash_in_a_row_doubles_the_delay_up_to_the_cap_and_is_logged() -> None:
    out = io.StringIO()
    restarts = Restarts(LogMux(out, colour=False))
    delays = []
    for _ in range(7):
        child = FakeChild()
        crash(restarts, child)
        delays.append(restarts.delay("relay"))
        assert child.signalled  # whatever it left in its group is killed first
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_DELAY, MAX_DELAY]
    log = out.getvalue()
    assert "relay exited with -9; restarting it in 1s (crash 1 in a row)" in log
    assert "relay exited with -9; restarting it in 30s (crash 7 in a row)" in log
    assert "relay restarted (pid 4243)" in log


def test_a_child_that_stayed_up_a_while_starts_a_new_series() -> None:
    restarts = Restarts(LogMux(io.StringIO(), colour=False))
    for _ in range(3):
        crash(restarts, FakeChild())
    assert restarts.delay("relay") == 4.0
    crash(restarts, FakeChild(started_at=time.monotonic() - STABLE_AFTER - 1))
    assert restarts.delay("relay") == 1.0
