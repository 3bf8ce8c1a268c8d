"""What `switchyard payments` reads: intents, unknown attempts, and the books' soundness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tasks.payments import intents, ledger
from tasks.payments.models import Intent, Operation


@dataclass
class Verification:
    """The outcome of `verify`: every chain and the ledger's per-currency balance."""

    chains: int = 0
    broken: list[str] = field(default_factory=list)
    imbalance: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def sound(self) -> bool:
        """No broken chain and no currency out of balance."""
        return not self.broken and not self.imbalance


def verify(session: Session) -> Verification:
    """Check every intent's hash chain and the ledger's debits = credits per currency."""
    report = Verification(imbalance=ledger.imbalance(session))
    for intent in session.scalars(select(Intent).order_by(Intent.id)):
        report.chains += 1
        if not intents.verify_chain(session, intent):
            report.broken.append(intent.id)
    return report


def list_intents(session: Session, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest intents (optionally of one status) as plain data."""
    query = select(Intent).order_by(Intent.id.desc()).limit(limit)
    if status:
        query = query.where(Intent.status == status)
    return [
        {"id": i.id, "status": i.status, "amount": i.amount, "currency": i.currency,
         "captured": i.amount_captured, "refunded": i.amount_refunded, "producer": i.producer}
        for i in session.scalars(query)
    ]  # fmt: skip


def unknown_attempts(session: Session) -> list[dict[str, Any]]:
    """Operations whose last call has no known outcome, oldest first, with their age (since
    the operation was requested) and how often the provider was asked."""
    age = func.extract("epoch", func.now() - Operation.created_at)
    rows = session.execute(
        select(Operation, age.label("age"))
        .where(Operation.status == "unknown")
        .order_by(Operation.created_at)
    )
    return [
        {"operation": op.id, "intent": op.intent_id, "kind": op.kind, "attempt": op.attempt,
         "key": op.idempotency_key, "asks": op.asks, "age_seconds": round(float(a), 1)}
        for op, a in rows
    ]  # fmt: skip
