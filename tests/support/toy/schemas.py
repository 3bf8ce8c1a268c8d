"""The toy domain's job types."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.registry import JobSpec

QUEUE = "toy"


class RecordPayload(BaseModel):
    """Write a note, and enqueue a follow-up echo of it in the same transaction."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=100)
    # Kill the worker process after the writes, before the commit, on these attempts.
    crash_on_attempts: list[int] = Field(default_factory=list, max_length=5)


class TickPayload(BaseModel):
    """Beat's tick: nothing to say."""

    model_config = ConfigDict(extra="forbid")


RECORD = JobSpec("toy.record", RecordPayload, QUEUE, "Writes a note and enqueues its echo.")
TICK = JobSpec("toy.tick", TickPayload, QUEUE, "Writes a tick note (beat, every second).")
