"""Payloads of the diagnostic job types."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from config import MAINTENANCE_QUEUE
from tasks.registry import JobSpec

QUEUE = MAINTENANCE_QUEUE


class EchoPayload(BaseModel):
    """Any JSON object; the job's result is the payload itself."""

    model_config = ConfigDict(extra="allow")


class SleepPayload(BaseModel):
    """Hold a worker slot for a while."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=3_600)


class FailPayload(BaseModel):
    """Fail the first `times` attempts, then succeed."""

    model_config = ConfigDict(extra="forbid")

    times: int = Field(default=1, ge=0, le=100)
    mode: Literal["retryable", "permanent"] = "retryable"
    message: str = Field(default="failing on purpose", max_length=500)


ECHO = JobSpec(
    "system.echo", EchoPayload, QUEUE, "Result is the payload.", batch_size=50, group_commit=True
)
SLEEP = JobSpec("system.sleep", SleepPayload, QUEUE, "Sleeps `seconds`, then succeeds.")
FAIL = JobSpec("system.fail", FailPayload, QUEUE, "Fails `times` attempts (`mode`), then succeeds.")
