"""Machine CPU over a stretch of time, from the kernel's counters (every process, every core)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


def busy_seconds() -> float:
    """CPU seconds the machine has spent not idle since boot, summed over its cores."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


@dataclass
class CpuSpent:
    """The machine's busy CPU seconds between entering and leaving `machine_cpu()`."""

    seconds: float = 0.0

    def per_job_ms(self, jobs: int) -> float:
        """Milliseconds of machine CPU per job."""
        return self.seconds * 1000 / jobs


@contextmanager
def machine_cpu() -> Iterator[CpuSpent]:
    """Measure the machine's busy CPU over the block (it counts other users' load too)."""
    spent, start = CpuSpent(), busy_seconds()
    try:
        yield spent
    finally:
        spent.seconds = busy_seconds() - start
