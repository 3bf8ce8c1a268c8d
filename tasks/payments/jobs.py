"""The payments domain's handlers: parse, call the service, return a result."""

from __future__ import annotations

from typing import Any

from tasks.context import JobContext
from tasks.payments import ledger
from tasks.payments.schemas import LEDGER_TICK, LedgerTickPayload
from tasks.registry import handles


@handles(LEDGER_TICK.name)
def ledger_tick(ctx: JobContext, payload: LedgerTickPayload) -> dict[str, Any]:
    """Expire overdue holds, then fold hot-account entries into balances."""
    expired = ledger.expire_pending(ctx.session)
    return {"expired": expired, "rolled_up": ledger.roll_up_hot(ctx.session)}
