"""What `switchyard payments` reads: intents, unknown attempts, and the books' soundness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tasks.payments import intents, ledger
from tasks.payments.models import Intent, Operation


@dataclass(frozen=True)
class Drift:
    """An account whose stored balances are not what its transfers add up to."""

    account: str
    currency: str
    stored: ledger.Balance
    recomputed: ledger.Balance


@dataclass
class Verification:
    """The outcome of `verify`: every chain, every account's balances, every currency."""

    chains: int = 0
    accounts: int = 0
    broken: list[str] = field(default_factory=list)
    drift: list[Drift] = field(default_factory=list)
    imbalance: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def sound(self) -> bool:
        """No broken chain, no account off its transfers and no currency out of balance."""
        return not self.broken and not self.drift and not self.imbalance


# Every account's four balances recomputed from the immutable transfers, beside the stored
# ones (a hot account's unrolled entries added, as `ledger.balance` does). A hold counts as
# pending until a post or void names it; posted and post transfers count as posted.
_RECOMPUTE = text(
    """
    WITH sides AS (
      SELECT t.debit_account_id AS account_id, true AS debit, t.kind, t.amount,
             r.id IS NOT NULL AS resolved
      FROM pay_transfers t LEFT JOIN pay_transfers r ON r.pending_id = t.id
      UNION ALL
      SELECT t.credit_account_id, false, t.kind, t.amount, r.id IS NOT NULL
      FROM pay_transfers t LEFT JOIN pay_transfers r ON r.pending_id = t.id
    ), recomputed AS (
      SELECT account_id,
        coalesce(sum(amount) FILTER (WHERE debit AND kind = 'pending' AND NOT resolved), 0) AS dp,
        coalesce(sum(amount) FILTER (WHERE debit AND kind IN ('posted', 'post')), 0) AS dq,
        coalesce(sum(amount) FILTER (WHERE NOT debit AND kind = 'pending' AND NOT resolved), 0)
          AS cp,
        coalesce(sum(amount) FILTER (WHERE NOT debit AND kind IN ('posted', 'post')), 0) AS cq
      FROM sides GROUP BY account_id
    ), hot AS (
      SELECT account_id, sum(debits) AS d, sum(credits) AS c FROM pay_hot_entries
      GROUP BY account_id
    )
    SELECT a.id, a.currency::text AS currency,
           a.debits_pending AS sdp, a.debits_posted + coalesce(h.d, 0) AS sdq,
           a.credits_pending AS scp, a.credits_posted + coalesce(h.c, 0) AS scq,
           coalesce(r.dp, 0) AS dp, coalesce(r.dq, 0) AS dq,
           coalesce(r.cp, 0) AS cp, coalesce(r.cq, 0) AS cq
    FROM pay_accounts a LEFT JOIN recomputed r ON r.account_id = a.id
    LEFT JOIN hot h ON h.account_id = a.id
    ORDER BY a.id
    """
)


def balance_drift(session: Session) -> tuple[int, list[Drift]]:
    """How many accounts there are, and those whose stored balances differ from their
    transfers' sum."""
    rows = session.execute(_RECOMPUTE).all()
    drift = []
    for row in rows:
        stored = ledger.Balance(int(row.sdp), int(row.sdq), int(row.scp), int(row.scq))
        recomputed = ledger.Balance(int(row.dp), int(row.dq), int(row.cp), int(row.cq))
        if stored != recomputed:
            drift.append(Drift(row.id, row.currency.strip(), stored, recomputed))
    return len(rows), drift


def verify(session: Session) -> Verification:
    """Check every intent's hash chain, every account's balances against its transfers and
    the ledger's debits = credits per currency."""
    accounts, drift = balance_drift(session)
    report = Verification(accounts=accounts, drift=drift, imbalance=ledger.imbalance(session))
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
