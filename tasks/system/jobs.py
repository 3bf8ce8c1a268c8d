"""Handlers of the diagnostic job types."""

from __future__ import annotations

import time
from typing import Any

from errors import PermanentError, RetryableError
from tasks.context import JobContext
from tasks.registry import handles
from tasks.system.schemas import ECHO, FAIL, SLEEP, EchoPayload, FailPayload, SleepPayload


@handles(ECHO.name)
def echo(ctx: JobContext, payload: EchoPayload) -> dict[str, Any]:
    """Return the payload unchanged."""
    return payload.model_dump()


@handles(SLEEP.name)
def sleep(ctx: JobContext, payload: SleepPayload) -> dict[str, Any]:
    """Sleep, then report how long."""
    time.sleep(payload.seconds)
    return {"slept": payload.seconds}


@handles(FAIL.name)
def fail(ctx: JobContext, payload: FailPayload) -> dict[str, Any]:
    """Fail while the attempt number is at most `times`."""
    if ctx.job.attempt <= payload.times:
        error = RetryableError if payload.mode == "retryable" else PermanentError
        raise error(f"{payload.message} (attempt {ctx.job.attempt} of {payload.times} failing)")
    return {"succeeded_on_attempt": ctx.job.attempt}
