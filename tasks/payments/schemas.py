"""The payments domain's job types and their payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tasks.registry import JobSpec

QUEUE = "payments"


class LedgerTickPayload(BaseModel):
    """Beat's ledger upkeep takes no arguments."""

    model_config = ConfigDict(extra="forbid")


LEDGER_TICK = JobSpec(
    "payments.ledger_tick",
    LedgerTickPayload,
    QUEUE,
    "Expires holds past their timeout and rolls up the hot accounts' entries.",
)
