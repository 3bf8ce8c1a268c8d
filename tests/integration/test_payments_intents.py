"""Payment intents through the service against the real PostgreSQL, with in-process providers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from config import Settings
from errors import RetryableError
from store.db import transaction
from tasks.payments import currencies, disputes, intents, ledger, service
from tasks.payments.errors import (
    AmountExceededError,
    IllegalTransitionError,
    UnknownCurrencyError,
)
from tasks.payments.gateway import TokenGateway
from tasks.payments.models import Intent
from tasks.payments.settings import PaymentSettings
from tests.support.ledger import clean_tables
from tests.support.payments import LosingGateway, run_operations


@pytest.fixture
def pay(settings: Settings) -> Iterator[Settings]:
    """The run's settings with a 10% fee; the domain's tables emptied afterwards."""
    s = settings.model_copy(update={"payments": PaymentSettings(fee_bps=1_000)})
    assert s.section(PaymentSettings).fee_bps == 1_000
    yield s
    clean_tables(settings, domain="payments")
    with transaction(settings) as session:
        session.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def new_intent(s: Settings, amount: int = 10_000, currency: str = "USD", **kw: Any) -> str:
    with transaction(s) as session:
        intent = service.create_intent(
            session, producer="shop", amount=amount, currency=currency, **kw
        )
        return intent.id


def confirm(s: Settings, intent_id: str, pm: str = "pm_card_visa") -> None:
    with transaction(s) as session:
        service.confirm(session, intent_id, producer="shop", payment_method=pm, settings=s)


def get(s: Settings, intent_id: str) -> Intent:
    with transaction(s) as session:
        return session.get_one(Intent, intent_id)


def ledger_balance(s: Settings, account: str) -> int:
    """The account's posted credits less its posted debits."""
    with transaction(s) as session:
        b = ledger.balance(session, account)
    return b.credits_posted - b.debits_posted


def sound(s: Settings, intent_id: str) -> None:
    with transaction(s) as session:
        assert ledger.imbalance(session) == {}
        intent = session.get_one(Intent, intent_id)
        assert intents.verify_chain(session, intent)
        b = ledger.balance(session, f"intent:{intent_id}")
        assert b.credits_pending == intent.amount_capturable


def test_an_automatic_intent_is_captured_with_its_fee(pay: Settings) -> None:
    pid = new_intent(pay)
    confirm(pay, pid)
    assert get(pay, pid).status == "processing"
    run_operations(pay, TokenGateway())
    intent = get(pay, pid)
    assert (intent.status, intent.amount_captured, intent.fee) == ("succeeded", 10_000, 1_000)
    sound(pay, pid)


def test_partial_captures_never_exceed_the_authorization(pay: Settings) -> None:
    pid = new_intent(pay, capture_method="manual")
    confirm(pay, pid)
    gw = TokenGateway()
    run_operations(pay, gw)
    assert get(pay, pid).status == "requires_capture"
    with transaction(pay) as session:
        service.request_capture(
            session, pid, producer="shop", amount=3_000, final=False, settings=pay
        )
    with pytest.raises(AmountExceededError), transaction(pay) as session:
        service.request_capture(
            session, pid, producer="shop", amount=7_001, final=False, settings=pay
        )
    run_operations(pay, gw)
    intent = get(pay, pid)
    assert (intent.status, intent.amount_captured, intent.amount_capturable) == (
        "requires_capture",
        3_000,
        7_000,
    )
    sound(pay, pid)
    with transaction(pay) as session:
        service.request_capture(
            session, pid, producer="shop", amount=2_000, final=True, settings=pay
        )
    run_operations(pay, gw)
    intent = get(pay, pid)
    assert (intent.status, intent.amount_captured, intent.amount_capturable) == (
        "succeeded",
        5_000,
        0,
    )
    assert intent.fee == 500
    sound(pay, pid)  # the 5 000 not captured was released


def test_refunds_never_exceed_what_was_captured_and_return_the_fee(pay: Settings) -> None:
    pid = new_intent(pay, amount=999)
    confirm(pay, pid)
    gw = TokenGateway()
    run_operations(pay, gw)
    for amount in (333, 333):
        with transaction(pay) as session:
            service.request_refund(session, pid, producer="shop", amount=amount, settings=pay)
        run_operations(pay, gw)
    with pytest.raises(AmountExceededError), transaction(pay) as session:
        service.request_refund(session, pid, producer="shop", amount=334, settings=pay)
    with transaction(pay) as session:
        service.request_refund(session, pid, producer="shop", amount=None, settings=pay)
    run_operations(pay, gw)
    intent = get(pay, pid)
    assert (intent.amount_refunded, intent.fee_returned) == (999, intent.fee)
    with transaction(pay) as session:
        assert ledger.balance(session, f"intent:{pid}").credits_posted == (
            ledger.balance(session, f"intent:{pid}").debits_posted
        )
    sound(pay, pid)


def test_a_decline_fails_the_intent_and_holds_nothing(pay: Settings) -> None:
    pid = new_intent(pay)
    confirm(pay, pid, pm="pm_card_chargeDeclined")
    run_operations(pay, TokenGateway())
    assert get(pay, pid).status == "failed"
    with pytest.raises(IllegalTransitionError), transaction(pay) as session:
        service.request_refund(session, pid, producer="shop", amount=1, settings=pay)


def test_cancel_voids_the_hold_and_expiry_cancels_a_late_authorization(pay: Settings) -> None:
    gw = TokenGateway()
    a, b = new_intent(pay, capture_method="manual"), new_intent(pay, capture_method="manual")
    confirm(pay, a)
    confirm(pay, b)
    run_operations(pay, gw)
    with transaction(pay) as session:
        service.cancel(session, a, producer="shop", settings=pay)
    run_operations(pay, gw)
    assert get(pay, a).status == "canceled"
    with transaction(pay) as session:
        session.execute(text("UPDATE pay_intents SET expires_at = now() WHERE id = :id"), {"id": b})
        assert service.expire_authorizations(session, settings=pay) == 1
    intent = get(pay, b)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "expired")
    sound(pay, a)
    sound(pay, b)


def test_expiry_waits_for_a_capture_in_flight(pay: Settings) -> None:
    """Found by the state machine: an authorization expired while its capture's answer was
    lost, and the capture the provider had made then had no hold to post."""
    pid = new_intent(pay, capture_method="manual")
    confirm(pay, pid)
    run_operations(pay, TokenGateway())
    with transaction(pay) as session:
        service.request_capture(session, pid, producer="shop", amount=4_000, final=False,
                                settings=pay)  # fmt: skip
    losing = LosingGateway()
    losing.lose_next = 1
    with pytest.raises(RetryableError):  # the provider captured; its answer was lost
        run_operations(pay, losing)
    expire = text("UPDATE pay_intents SET expires_at = now() WHERE id = :id")
    with transaction(pay) as session:
        session.execute(expire, {"id": pid})
        assert service.expire_authorizations(session, settings=pay) == 0
    run_operations(pay, losing)  # asked: the capture is applied to the hold
    intent = get(pay, pid)
    assert (intent.status, intent.amount_captured, intent.amount_capturable) == (
        "requires_capture", 4_000, 6_000,
    )  # fmt: skip
    with transaction(pay) as session:
        session.execute(expire, {"id": pid})
        assert service.expire_authorizations(session, settings=pay) == 1  # nothing in flight
    intent = get(pay, pid)
    assert (intent.status, intent.amount_captured, intent.amount_capturable) == (
        "canceled", 4_000, 0,
    )  # fmt: skip
    sound(pay, pid)


def test_an_unknown_outcome_is_asked_about_never_charged_twice(pay: Settings) -> None:
    pid = new_intent(pay)
    confirm(pay, pid)
    gw = LosingGateway()
    gw.lose_next = 1
    with pytest.raises(RetryableError):
        run_operations(pay, gw)
    assert get(pay, pid).status == "processing"
    run_operations(pay, gw)  # the retry asks with the same key: the charge happened
    assert len(set(gw.calls)) == 1 and gw.effects == 1
    assert get(pay, pid).status == "succeeded"
    sound(pay, pid)


def test_disputes_withdraw_and_reinstate_or_stay_lost(pay: Settings) -> None:
    pid = new_intent(pay)
    confirm(pay, pid)
    run_operations(pay, TokenGateway())
    provider_before = ledger_balance(pay, "provider:USD")
    with transaction(pay) as session:
        assert disputes.open_dispute(
            session, pid, dispute_id="dp_1", amount=4_000, fee=1_500, settings=pay
        )
        assert disputes.open_dispute(
            session, pid, dispute_id="dp_2", amount=6_000, fee=1_500, settings=pay
        )
        # the same dispute again changes nothing
        assert not disputes.open_dispute(
            session, pid, dispute_id="dp_2", amount=6_000, fee=1_500, settings=pay
        )
    assert get(pay, pid).amount_disputed == 10_000
    with pytest.raises(AmountExceededError), transaction(pay) as session:
        service.request_refund(session, pid, producer="shop", amount=1, settings=pay)
    with pytest.raises(AmountExceededError), transaction(pay) as session:
        disputes.open_dispute(session, pid, dispute_id="dp_3", amount=1, fee=0, settings=pay)
    with transaction(pay) as session:
        assert disputes.close_dispute(session, "dp_1", won=True, settings=pay)
        assert disputes.close_dispute(session, "dp_2", won=False, settings=pay)
        assert not disputes.close_dispute(session, "dp_2", won=True, settings=pay)  # final
    intent = get(pay, pid)
    assert (intent.amount_disputed, intent.amount_lost) == (0, 6_000)
    assert intent.fee_returned == 600
    # the provider's account: 6 000 withdrawn for good, two fees of 1 500 charged to the shop
    assert ledger_balance(pay, "merchant:shop:USD") == -3_000
    assert ledger_balance(pay, "provider:USD") - provider_before == 6_000 + 3_000
    sound(pay, pid)


def test_refunds_and_lost_disputes_never_exceed_the_capture(pay: Settings) -> None:
    pid = new_intent(pay)
    confirm(pay, pid)
    run_operations(pay, TokenGateway())
    with transaction(pay) as session:
        service.request_refund(session, pid, producer="shop", amount=7_000, settings=pay)
    run_operations(pay, TokenGateway())
    with pytest.raises(AmountExceededError), transaction(pay) as session:
        disputes.open_dispute(session, pid, dispute_id="dp_x", amount=3_001, fee=0, settings=pay)
    with transaction(pay) as session:
        disputes.open_dispute(session, pid, dispute_id="dp_y", amount=3_000, fee=0, settings=pay)
        disputes.close_dispute(session, "dp_y", won=False, settings=pay)
    with pytest.raises(AmountExceededError), transaction(pay) as session:
        service.request_refund(session, pid, producer="shop", amount=1, settings=pay)
    intent = get(pay, pid)
    assert intent.amount_refunded + intent.amount_lost == intent.amount_captured == 10_000
    sound(pay, pid)


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("KWD", 3), ("CLF", 4), ("ISK", 0)])
def test_exponents_come_from_the_iso_table(pay: Settings, currency: str, exponent: int) -> None:
    with transaction(pay) as session:
        assert currencies.exponent(session, currency) == exponent
    pid = new_intent(pay, amount=1_001, currency=currency)
    confirm(pay, pid)
    run_operations(pay, TokenGateway())
    intent = get(pay, pid)
    assert (intent.amount_captured, intent.fee) == (1_001, 100)  # 10% of 1 001, half up
    sound(pay, pid)


def test_an_unknown_currency_is_refused(pay: Settings) -> None:
    with pytest.raises(UnknownCurrencyError):
        new_intent(pay, currency="XYZ")


def test_the_janitor_asks_again_after_its_schedule_and_once_per_step(pay: Settings) -> None:
    pid = new_intent(pay)
    confirm(pay, pid)
    gw = LosingGateway()
    gw.lose_next = 1
    with pytest.raises(RetryableError):
        run_operations(pay, gw)
    with transaction(pay) as session:
        assert service.ask_about_unknowns(session, settings=pay) == 0  # not 30 s yet
        session.execute(text("UPDATE pay_operations SET updated_at = now() - interval '31 s'"))
    for _ in range(2):  # two beat ticks: one question per step of the schedule
        with transaction(pay) as session:
            assert service.ask_about_unknowns(session, settings=pay) == 1
    with transaction(pay) as session:
        asked = session.execute(
            text("SELECT count(*) FROM jobs WHERE idempotency_key LIKE 'janitor:%'")
        ).scalar_one()
    assert asked == 1
    run_operations(pay, gw)
    assert get(pay, pid).status == "succeeded" and gw.effects == 1
