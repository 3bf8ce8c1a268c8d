"""What the chaos battery reads of the payments tables, against the real PostgreSQL: open holds,
histories and attempts as the ledger holds them, judged by the battery's invariants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from chaos.invariants import failed
from chaos.payments_invariants import payment_rows
from chaos.payments_ledger import PaymentSnapshot, ProviderIntent, snapshot
from config import Settings
from store.db import transaction
from tasks.payments import service
from tasks.payments.gateway import TokenGateway
from tasks.payments.models import Operation
from tasks.payments.settings import PaymentSettings
from tests.support.ledger import clean_tables
from tests.support.payments import run_operations


@pytest.fixture
def pay(settings: Settings) -> Iterator[Settings]:
    """The run's settings with the payments section; the domain's tables emptied afterwards."""
    yield settings.model_copy(update={"payments": PaymentSettings()})
    clean_tables(settings, domain="payments")
    with transaction(settings) as session:
        session.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def authorized(s: Settings, amount: int) -> str:
    """A manual intent, confirmed and authorized by the in-process provider."""
    with transaction(s) as session:
        intent = service.create_intent(
            session, producer="chaos", amount=amount, currency="USD", capture_method="manual",
            payment_method="pm_card_visa",
        )  # fmt: skip
        service.confirm(session, intent.id, producer="chaos", payment_method=None, settings=s)
        intent_id = intent.id
    run_operations(s, TokenGateway())
    return intent_id


def capture(s: Settings, intent_id: str, amount: int, *, final: bool) -> None:
    with transaction(s) as session:
        service.request_capture(
            session, intent_id, producer="chaos", amount=amount, final=final, settings=s
        )
    run_operations(s, TokenGateway())


def truth_of(s: Settings, intent_id: str, status: str, *, received: int, capturable: int) -> list[
    ProviderIntent
]:  # fmt: skip
    """The provider's side as it would be: its intent made by the recorded authorization."""
    with transaction(s) as session:
        op = session.query(Operation).filter_by(intent_id=intent_id, kind="authorize").one()
        ref = session.execute(
            text("SELECT provider_ref FROM pay_intents WHERE id = :i"), {"i": intent_id}
        ).scalar_one()
        return [ProviderIntent(ref, status, capturable, received, 0, op.idempotency_key or "")]


def test_an_open_authorization_reads_as_its_hold_then_none_once_captured(pay: Settings) -> None:
    pid = authorized(pay, 10_000)
    capture(pay, pid, 4_000, final=False)
    snap: PaymentSnapshot = snapshot(
        pay, truth_of(pay, pid, "requires_capture", received=4_000, capturable=6_000)
    )
    assert snap.open_holds == {pid: 6_000}
    assert snap.intents[pid].history == (
        "requires_confirmation", "processing", "requires_capture", "requires_capture",
    )  # fmt: skip
    assert snap.imbalance == {}
    # everything agrees, but the intent has not ended yet
    assert [r.name for r in failed(payment_rows(snap))] == [
        "intents not in exactly one terminal state"
    ]
    capture(pay, pid, 6_000, final=True)
    done = snapshot(pay, truth_of(pay, pid, "succeeded", received=10_000, capturable=0))
    assert done.open_holds == {} and done.intents[pid].status == "succeeded"
    assert failed(payment_rows(done)) == []


def test_a_hold_the_ledger_keeps_after_its_authorization_ended_is_caught(pay: Settings) -> None:
    pid = authorized(pay, 5_000)
    with transaction(pay) as session:  # the intent forgets its authorization, the ledger not
        session.execute(
            text("UPDATE pay_intents SET amount_capturable = 0 WHERE id = :i"), {"i": pid}
        )
    snap = snapshot(pay, truth_of(pay, pid, "requires_capture", received=0, capturable=0))
    assert snap.open_holds == {pid: 5_000}
    names = [r.name for r in failed(payment_rows(snap))]
    assert "open holds ≠ open authorizations" in names
