"""Payments pieces with no I/O: card numbers, transitions, currency units, fee allocation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.payments.cards import contains_card_number, luhn_valid
from tasks.payments.currencies import from_provider, to_provider
from tasks.payments.errors import UnknownCurrencyError
from tasks.payments.models import Intent
from tasks.payments.money import fee_back, fee_for
from tasks.payments.states import TERMINAL, TRANSITIONS, Event, Status, target


@pytest.mark.parametrize(
    "body",
    [
        '{"card": "4242424242424242"}',
        '{"note": "pay with 4242 4242 4242 4242 please"}',
        '{"n": "5555-5555-5555-4444"}',
        "number=378282246310005",  # Amex, 15 digits
        '{"pan": "6011111111111117"}',
        "order=4242424242424242;",
    ],
)
def test_card_numbers_are_found_anywhere(body: str) -> None:
    assert contains_card_number(body)


@pytest.mark.parametrize(
    "body",
    [
        '{"card": "4242424242424241"}',  # Luhn-invalid
        '{"amount": 123456789012}',  # 12 digits
        '{"id": "pi_01a2335f073d7d47a0a616d948e10d52"}',
        '{"token": "pm_card_visa"}',
        '{"phone": "12345678901234567890"}',  # 20 digits: not a card
        # ids whose hex holds a Luhn-valid run of 16 digits (4 % of webhook bodies did)
        '{"id": "pi_0a4242424242424242c1d2"}',
        '{"key": "evt_4242424242424242:capture"}',
    ],
)
def test_other_numbers_pass(body: str) -> None:
    assert not contains_card_number(body)


def test_luhn() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


def test_terminal_statuses_have_no_way_out_but_money_movements() -> None:
    for event, moves in TRANSITIONS.items():
        for source, dest in moves.items():
            if source in TERMINAL:
                assert dest == source, (event, source)
    assert target(Event.CONFIRMED, Status.SUCCEEDED) is None
    assert target(Event.AUTHORIZED, Status.PROCESSING) is Status.REQUIRES_CAPTURE
    assert target(Event.DECLINED, Status.PROCESSING) is Status.FAILED


@pytest.mark.parametrize(
    ("amount", "currency", "iso", "override", "provider"),
    [
        (500, "JPY", 0, None, 500),
        (1_234, "KWD", 3, None, 1_234),
        (12_345, "CLF", 4, None, 12_345),
        (1_000, "ISK", 0, 2, 100_000),  # Stripe counts ISK in hundredths
    ],
)
def test_provider_units(
    amount: int, currency: str, iso: int, override: int | None, provider: int
) -> None:
    overrides = {currency: override} if override is not None else {}
    assert to_provider(amount, currency, iso_exponent=iso, overrides=overrides) == provider
    assert from_provider(provider, currency, iso_exponent=iso, overrides=overrides) == amount


def test_a_fractional_provider_amount_is_refused() -> None:
    with pytest.raises(UnknownCurrencyError):
        from_provider(150, "ISK", iso_exponent=0, overrides={"ISK": 2})


def _intent(captured: int, fee: int) -> Intent:
    return Intent(
        amount_captured=captured,
        fee=fee,
        fee_returned=0,
        amount_refunded=0,
        amount_disputed=0,
        amount_lost=0,
    )


@settings(deadline=None)  # a shared machine's pauses are not failures
@given(
    captured=st.integers(1, 10**9),
    bps=st.integers(0, 10_000),
    parts=st.lists(st.integers(1, 10**9), min_size=1, max_size=8),
)
def test_fees_returned_with_refunds_sum_to_the_fee_and_never_exceed_it(
    captured: int, bps: int, parts: list[int]
) -> None:
    fee = fee_for(captured, bps=bps, fixed=0)
    intent = _intent(captured, fee)
    left = captured
    for part in parts:
        part = min(part, left)
        if part == 0:
            break
        back = fee_back(intent, given_back=part)
        assert 0 <= back <= fee - intent.fee_returned
        intent.amount_refunded += part
        intent.fee_returned += back
        left -= part
        # what the intent's account keeps is never negative
        assert captured - fee - intent.amount_refunded + intent.fee_returned >= 0
    if left == 0:
        assert intent.fee_returned == fee
