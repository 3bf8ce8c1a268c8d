"""Driving a fleet: the devices' batches in turn, paced to a rate of readings per second (or as
fast as `concurrency` sends allow), until a duration, a number of batches or a stop request.

A batch whose send is under way when the run stops is waited for, never abandoned; a send that
fails (FleetError) stops the run and is raised once the others have finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.fleet import Fleet, FleetBatch

Send = Callable[[FleetBatch], Coroutine[Any, Any, object]]


@dataclass(frozen=True)
class Pace:
    """How much to send: `size` readings a batch, `rate` readings/s (None: no pacing), for
    `seconds` (None: no limit) or `batches` batches (None: no limit), `concurrency` in flight."""

    size: int
    rate: float | None = None
    seconds: float | None = None
    batches: int | None = None
    concurrency: int = 8


async def drive(
    fleet: Fleet,
    send: Send,
    pace: Pace,
    *,
    stop: asyncio.Event | None = None,
) -> float:
    """Send the fleet's batches as `pace` says; returns the seconds the run took."""
    stop = stop or asyncio.Event()
    slots = asyncio.Semaphore(pace.concurrency)
    pending: set[asyncio.Task[object]] = set()
    failures: list[BaseException] = []
    interval = pace.size / pace.rate if pace.rate else 0.0
    start = time.monotonic()

    def finished(task: asyncio.Task[object]) -> None:
        pending.discard(task)
        slots.release()
        if task.exception() is not None:
            failures.append(task.exception())  # type: ignore[arg-type]
            stop.set()

    sent = 0
    while not stop.is_set() and (pace.batches is None or sent < pace.batches):
        due = start + sent * interval
        if pace.seconds is not None and due - start >= pace.seconds:
            break
        await slots.acquire()
        if (wait := due - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            if stop.is_set():
                slots.release()
                break
        device = fleet.ids[sent % len(fleet.ids)]
        task = asyncio.create_task(send(fleet.batch(device, size=pace.size, now=_now())))
        pending.add(task)
        task.add_done_callback(finished)
        sent += 1
    if pending:
        await asyncio.wait(set(pending))
    if failures:
        raise failures[0]
    return time.monotonic() - start


def _now() -> datetime:
    return datetime.now(UTC)
