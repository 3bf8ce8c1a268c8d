"""Helpers for payments tests: a provider that loses answers, and running operations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from config import Settings
from store.db import autocommit, transaction
from tasks.payments import operations
from tasks.payments.gateway import Outcome, OutcomeUnknownError, TokenGateway
from tasks.payments.models import Operation


class LosingGateway(TokenGateway):
    """Applies every call, then loses the answer for the keys in `lose` (a timeout after
    the charge), and counts the calls that reached it."""

    def __init__(self, lose: set[str] | None = None) -> None:
        super().__init__()
        self.lose_next = 0
        self.calls: list[str] = []

    def authorize(self, **kw: Any) -> Outcome:
        """Authorize, perhaps losing the answer."""
        return self._maybe_lose(kw["key"], super().authorize(**kw))

    def capture(self, **kw: Any) -> Outcome:
        """Capture, perhaps losing the answer."""
        return self._maybe_lose(kw["key"], super().capture(**kw))

    def refund(self, **kw: Any) -> Outcome:
        """Refund, perhaps losing the answer."""
        return self._maybe_lose(kw["key"], super().refund(**kw))

    def _maybe_lose(self, key: str, outcome: Outcome) -> Outcome:
        self.calls.append(key)
        if self.lose_next:
            self.lose_next -= 1
            raise OutcomeUnknownError("timed out after the provider applied the call")
        return outcome


def run_operations(settings: Settings, gateway: TokenGateway) -> list[dict[str, Any]]:
    """Execute every open operation once, oldest first, as the worker would."""
    with transaction(settings) as s:
        ids = s.scalars(
            select(Operation.id)
            .where(Operation.status.in_(("pending", "unknown")))
            .order_by(Operation.id)
        ).all()
    results = []
    for op_id in ids:
        with autocommit(settings) as recorder, transaction(settings) as s:
            results.append(
                operations.execute(s, op_id, recorder=recorder, gateway=gateway, settings=settings)
            )
    return results
