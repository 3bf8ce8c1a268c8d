"""What must hold of the payments domain after any step: checked against the ledger's rows and
the provider simulator's ground truth. Each check raises AssertionError naming the intent."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tasks.payments import intents, ledger
from tasks.payments.models import Intent, IntentEvent, Operation
from tasks.payments.states import TRANSITIONS, Event, Status

AMOUNTS = (
    "amount", "amount_capturable", "amount_captured", "amount_refunded", "amount_disputed",
    "amount_lost", "fee", "fee_returned",
)  # fmt: skip

INTENT_ACCOUNTS = text(
    "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted"
    " FROM pay_accounts WHERE id LIKE 'intent:%'"
)


def legal_histories(session: Session) -> None:
    """Every intent's history is a chain of declared transitions ending at its status."""
    history: dict[str, list[IntentEvent]] = defaultdict(list)
    for row in session.scalars(
        select(IntentEvent).order_by(IntentEvent.intent_id, IntentEvent.seq)
    ):
        history[row.intent_id].append(row)
    for intent in session.scalars(select(Intent)):
        first, *rest = history[intent.id]
        assert (first.seq, first.event, first.from_status) == (0, "created", None), intent.id
        at = first.to_status
        for n, row in enumerate(rest, start=1):
            assert row.seq == n and row.from_status == at, (intent.id, row.seq)
            legal = TRANSITIONS[Event(row.event)].get(Status(row.from_status))
            assert legal == Status(row.to_status), (intent.id, row.event, row.from_status)
            at = row.to_status
        assert at == intent.status, intent.id
        assert intents.verify_chain(session, intent), intent.id


def balanced(session: Session) -> None:
    """Debits equal credits, posted and pending, in every currency the ledger holds."""
    for currency, net in ledger.net_by_currency(session).items():
        assert net == (0, 0), (currency, net)


def amounts_add_up(session: Session) -> None:
    """Exact integers; what left never exceeds what was captured; every part sums to its whole:
    gross = fee + net per capture, the operations to the intent's totals, the fee returned pro
    rata, and the intent's ledger account to what the intent says it holds."""
    ops: dict[str, list[Operation]] = defaultdict(list)
    for op in session.scalars(select(Operation).where(Operation.status == "succeeded")):
        ops[op.intent_id].append(op)
    accounts = {row.id: row for row in session.execute(INTENT_ACCOUNTS)}
    for i in session.scalars(select(Intent)):
        values = {name: getattr(i, name) for name in AMOUNTS}
        assert all(type(v) is int and v >= 0 for v in values.values()), (i.id, values)
        gone = i.amount_refunded + i.amount_disputed + i.amount_lost
        assert i.amount_refunded + i.amount_lost <= gone <= i.amount_captured <= i.amount, values
        assert i.amount_capturable + i.amount_captured <= i.amount, (i.id, values)
        captures = [
            op for op in ops[i.id]
            if op.kind == "capture" or (op.kind == "authorize" and i.capture_method == "automatic")
        ]  # fmt: skip
        assert all(op.fee + op.net == op.amount for op in captures), i.id
        assert sum(op.amount for op in captures) == i.amount_captured, i.id
        assert sum(op.fee for op in captures) == i.fee, (i.id, i.fee)
        refunds = [op for op in ops[i.id] if op.kind == "refund"]
        assert sum(op.amount for op in refunds) == i.amount_refunded, i.id
        assert all(op.fee + op.net == -op.amount for op in refunds), i.id
        owed = i.fee * gone // i.amount_captured if i.amount_captured else 0
        assert i.fee_returned == owed, (i.id, i.fee_returned, owed)
        account = accounts.get(f"intent:{i.id}")
        if account is None:
            assert i.amount_capturable == i.amount_captured == 0, i.id
            continue
        assert account.credits_pending - account.debits_pending == i.amount_capturable, i.id
        held = i.amount_captured - i.fee - gone + i.fee_returned
        assert account.credits_posted - account.debits_posted == held, (i.id, held)


def agrees_with_provider(session: Session, truth: dict[str, Any]) -> None:
    """At most one provider charge per intent; and an intent with no call in flight holds what
    the provider says it captured and refunded."""
    charges: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in truth["payment_intents"]:
        charges[p["metadata"].get("switchyard_key", ":").split(":", 1)[0]].append(p)
    refunded: dict[str, int] = defaultdict(int)
    for r in truth["refunds"]:
        refunded[r["payment_intent"]] += r["amount"]
    open_ops = set(
        session.scalars(
            select(Operation.intent_id).where(Operation.status.in_(("pending", "unknown")))
        )
    )
    for i in session.scalars(select(Intent)):
        assert len(charges[i.id]) <= 1, (i.id, "charged twice")
        if i.id in open_ops or not charges[i.id]:
            continue
        (p,) = charges[i.id]
        assert i.provider_ref in (None, p["id"]), i.id  # None: the provider declined it
        assert i.amount_captured == p["amount_received"], (i.id, i.amount_captured, p)
        assert i.amount_refunded == refunded[p["id"]], i.id
