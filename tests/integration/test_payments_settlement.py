"""`settlement.stage` and `match` against the real PostgreSQL: each kind of difference, none for
a clean report, units converted exactly, and intents too recent to judge left alone. Every
case runs in a transaction that is rolled back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from config import Settings
from store.db import transaction
from tasks.payments import settlement
from tasks.payments.errors import UnknownCurrencyError
from tasks.payments.gateway import SettlementLine as Line
from tasks.payments.settlement import Kind, Mismatch

SEED = text(
    "INSERT INTO pay_intents (id, producer, amount, currency, status, capture_method,"
    " amount_captured, amount_refunded, fee, provider_ref, chain_head, updated_at)"
    " VALUES (:id, 'shop', :captured, :currency, 'succeeded', 'automatic', :captured,"
    " :refunded, :fee, :ref, '0', now() - make_interval(secs => :age))"
)
INTENTS = [  # (id, provider ref, currency, captured, refunded, fee, seconds since it moved)
    ("a", "pi_a", "USD", 2_000, 500, 58, 3_600),
    ("b", "pi_b", "JPY", 300, 0, 9, 3_600),
    ("c", "pi_c", "ISK", 500, 0, 15, 3_600),  # Stripe counts ISK in hundredths
    ("r", "pi_r", "USD", 100, 0, 3, 0),  # moved just now: not judged yet
]


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    with pytest.raises(RuntimeError, match="rolled back"), transaction(settings) as s:
        for iid, ref, currency, captured, refunded, fee, age in INTENTS:
            s.execute(SEED, {"id": iid, "ref": ref, "currency": currency, "captured": captured,
                             "refunded": refunded, "fee": fee, "age": age})  # fmt: skip
        yield s
        raise RuntimeError("rolled back")


def lines(**changes: object) -> list[Line]:
    base = [
        Line("t1", "charge", "pi_a", 2_000, 58, "USD"),
        Line("t2", "refund", "pi_a", -500, 0, "USD"),
        Line("t3", "charge", "pi_b", 300, 9, "JPY"),
        Line("t4", "charge", "pi_c", 50_000, 1_500, "ISK"),
        Line("t5", "payout", None, -9_999, 0, "USD"),  # not a payment's line: not matched
    ]
    return [Line(**{**line.__dict__, **changes}) if line.id == "t1" else line for line in base]


def found(session: Session, report: list[Line]) -> list[Mismatch]:
    assert settlement.stage(session, report, overrides={"ISK": 2}) == len(report)
    now = session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    return settlement.match(session, settled_before=now - timedelta(seconds=300))


def kinds(session: Session, report: list[Line]) -> list[tuple[Kind, str]]:
    return [(m.kind, m.provider_ref) for m in found(session, report)]


def test_a_clean_report_matches(session: Session) -> None:
    assert found(session, lines()) == []
    now = session.scalar(select(func.now()))
    assert isinstance(now, datetime)
    assert settlement.booked(session, settled_before=now - timedelta(seconds=300)) == 3


def test_each_difference_has_its_kind(session: Session) -> None:
    assert kinds(session, lines(amount=2_100)) == [(Kind.OVER, "pi_a")]
    assert kinds(session, lines(amount=1_900)) == [(Kind.UNDER, "pi_a")]
    assert kinds(session, lines(fee=60)) == [(Kind.FEE, "pi_a")]
    (currency,) = found(session, lines(currency="EUR"))
    assert (currency.kind, currency.detail) == (Kind.CURRENCY, "USD here, ['EUR'] there")
    assert kinds(session, lines(provider_ref="pi_z")) == [
        (Kind.UNDER, "pi_a"),  # pi_a's charge is gone, its refund is left
        (Kind.UNEXPECTED, "pi_z"),
    ]
    assert kinds(session, lines()[1:]) == [(Kind.UNDER, "pi_a")]
    assert kinds(session, lines()[2:]) == [(Kind.MISSING, "pi_a")]
    twice = [*lines(), Line("t9", "charge", "pi_b", 300, 9, "JPY")]
    (dup,) = found(session, twice)
    assert (dup.kind, dup.provider_ref, dup.intent_id, dup.expected, dup.actual, dup.detail) == (
        Kind.DUPLICATE, "pi_b", "b", 300, 600, "2 lines",
    )  # fmt: skip


def test_refunds_are_compared_on_their_own(session: Session) -> None:
    more = [*lines(), Line("t6", "refund", "pi_a", -100, 0, "USD")]
    (over,) = found(session, more)
    assert (over.kind, over.detail, over.expected, over.actual) == (Kind.OVER, "refunds", 500, 600)


def test_two_different_charges_are_a_multi_capture_not_a_duplicate(session: Session) -> None:
    split = [*lines()[1:], Line("t7", "charge", "pi_a", 1_500, 44, "USD"),
             Line("t8", "charge", "pi_a", 500, 14, "USD")]  # fmt: skip
    assert found(session, split) == []


def test_a_recent_intent_is_neither_judged_nor_unexpected(session: Session) -> None:
    report = [*lines(), Line("t10", "charge", "pi_r", 999, 1, "USD")]
    assert found(session, report) == []


def test_provider_units_are_converted_exactly_or_refused(session: Session) -> None:
    assert kinds(session, [*lines()[:4]]) == []
    odd = [*lines()[:3], Line("t4", "charge", "pi_c", 50_001, 1_500, "ISK")]
    with pytest.raises(UnknownCurrencyError, match="not whole"):
        found(session, odd)


def test_an_unknown_currency_is_refused(session: Session) -> None:
    with pytest.raises(UnknownCurrencyError):
        found(session, lines(currency="XXZ"))


DISPUTE = text(
    "INSERT INTO pay_disputes (id, intent_id, amount, fee, status)"
    " VALUES (:id, :intent, :amount, 1500, :status)"
)


def test_dispute_adjustments_are_matched_against_the_disputes(session: Session) -> None:
    """pi_a: one dispute of 700 won (its withdrawal with the 1500 fee, its reversal); pi_b:
    one of 300 open. Each difference of the report's adjustments is one `dispute_mismatch`;
    dispute lines of no intent are `unexpected`, in another currency `currency_mismatch`."""
    session.execute(DISPUTE, {"id": "dp_a", "intent": "a", "amount": 700, "status": "won"})
    session.execute(DISPUTE, {"id": "dp_b", "intent": "b", "amount": 300, "status": "open"})
    disputed = [
        *lines(),
        Line("t11", "dispute", "pi_a", -700, 1_500, "USD"),
        Line("t12", "dispute_reversal", "pi_a", 700, 0, "USD"),
        Line("t13", "dispute", "pi_b", -300, 1_500, "JPY"),
    ]
    assert found(session, disputed) == []
    (unheard,) = found(session, [line for line in disputed if line.id != "t12"])
    assert unheard.provider_ref == "pi_a"  # the won dispute's reversal is not in the report
    assert found(session, disputed[:-1]) == [
        Mismatch(Kind.DISPUTE, "pi_b", "b", 1_800, 0,
                 "withdrawn, fees, reinstated: 300, 1500, 0 here; 0, 0, 0 there"),
    ]  # fmt: skip
    assert (unheard.kind, unheard.expected, unheard.actual) == (Kind.DISPUTE, 1_500, 2_200)
    stray = [*disputed, Line("t14", "dispute", "pi_z", -50, 1_500, "USD")]
    assert kinds(session, stray) == [(Kind.UNEXPECTED, "pi_z")]
    foreign = [*disputed[:-1], Line("t13", "dispute", "pi_b", -300, 1_500, "EUR")]
    (currency,) = found(session, foreign)
    assert (currency.kind, currency.detail) == (Kind.CURRENCY, "JPY here, ['EUR'] there")
    # an intent with no line at all is `missing`; its disputes are not reported besides
    assert kinds(session, [line for line in disputed if line.provider_ref != "pi_b"]) == [
        (Kind.MISSING, "pi_b")]  # fmt: skip
