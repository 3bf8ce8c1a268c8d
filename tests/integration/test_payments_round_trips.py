"""What one provider operation costs in SQL statements (each a round trip to PostgreSQL).

B-payments is bound by the worker's round trips per operation (docs/performance.md); this
pins the budget so that a change adding one is seen here, deterministically, not as a slower
benchmark. Counted on the real database, through the engine's cursor events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, text

from config import Settings
from store.db import autocommit, get_engine, transaction
from tasks.payments import intents, ledger, operations, service
from tasks.payments.gateway import TokenGateway
from tasks.payments.models import Intent, Operation
from tests.support.ledger import clean_tables

# authorize: lock the intent (with its currency's exponent), read the operation, record the
# attempt (committed before the call), the operation's outcome, open the four accounts, the
# hold, the history's next seq, the intent's guarded update, its history entry.
AUTHORIZE_BUDGET = 9
# capture: the same reads and attempt, then the linked chain (savepoint, account locks, the
# post and the fee, release) in place of the accounts and the hold.
CAPTURE_BUDGET = 13


@pytest.fixture
def pay(settings: Settings) -> Iterator[Settings]:
    """The run's settings; the domain's tables emptied afterwards."""
    yield settings
    clean_tables(settings, domain="payments")
    with transaction(settings) as session:
        session.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def _execute_counting(settings: Settings, intent_id: str) -> int:
    """Run the intent's open operation as the worker does; the statements it sent."""
    with transaction(settings) as session:
        (op_id,) = session.scalars(
            text("SELECT id FROM pay_operations WHERE intent_id = :i AND status = 'pending'"),
            {"i": intent_id},
        ).all()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    engine = get_engine(settings)
    event.listen(engine, "before_cursor_execute", count)
    try:
        with autocommit(settings) as recorder, transaction(settings) as session:
            result = operations.execute(
                session, op_id, recorder=recorder, gateway=TokenGateway(), settings=settings
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert result["status"] == "succeeded", result
    return len(statements)


def test_an_authorization_and_a_capture_stay_within_their_statement_budgets(
    pay: Settings,
) -> None:
    with transaction(pay) as session:
        intent_id = service.create_intent(
            session, producer="shop", amount=2_500, currency="JPY", capture_method="manual"
        ).id
        service.confirm(
            session, intent_id, producer="shop", payment_method="pm_card_visa", settings=pay
        )
    assert _execute_counting(pay, intent_id) <= AUTHORIZE_BUDGET
    with transaction(pay) as session:
        service.request_capture(
            session, intent_id, producer="shop", amount=1_000, final=True, settings=pay
        )
    assert _execute_counting(pay, intent_id) <= CAPTURE_BUDGET
    # Fewer statements, the same outcome: captured in part, the rest released, books sound.
    with transaction(pay) as session:
        intent = session.get_one(Intent, intent_id)
        assert (intent.status, intent.amount_captured, intent.amount_capturable) == (
            "succeeded",
            1_000,
            0,
        )
        assert intents.verify_chain(session, intent)
        assert ledger.imbalance(session) == {}
        ops = session.query(Operation).filter_by(intent_id=intent_id).all()
        assert sorted((o.kind, o.attempt, o.status) for o in ops) == [
            ("authorize", 1, "succeeded"),
            ("capture", 1, "succeeded"),
        ]
