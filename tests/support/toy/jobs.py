"""The toy domain's handlers: rows and a follow-up job in the job's own transaction."""

from __future__ import annotations

import os
import signal
from typing import Any

from tasks.context import JobContext
from tasks.enqueue import enqueue
from tasks.registry import handles
from tests.support.toy.models import ToyNote
from tests.support.toy.schemas import RECORD, TICK, RecordPayload, TickPayload
from tests.support.toy.settings import ToySettings


@handles(RECORD.name)
def record(ctx: JobContext, payload: RecordPayload) -> dict[str, Any]:
    """Write the note and its follow-up; they commit with `succeeded`, or not at all."""
    greeting = ctx.settings.section(ToySettings).greeting
    ctx.session.add(ToyNote(job_id=ctx.job.id, kind="record", text=f"{greeting} {payload.text}"))
    followup = enqueue(
        ctx.session,
        "system.echo",
        {"echo_of": str(ctx.job.id)},
        producer="toy",
        settings=ctx.settings,
    ).job_id
    ctx.session.flush()
    if ctx.job.attempt in payload.crash_on_attempts:
        os.kill(os.getpid(), signal.SIGKILL)  # between the handler's writes and their commit
    return {"followup": str(followup)}


@handles(TICK.name)
def tick(ctx: JobContext, payload: TickPayload) -> None:
    """Write one tick note."""
    ctx.session.add(ToyNote(job_id=ctx.job.id, kind="tick", text="tick"))
