"""The Stripe adapter (the official package) against the simulator process: outcomes, units,
idempotency, and a charge whose answer was lost is asked about, never made twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from errors import RetryableError
from store.db import transaction
from tasks.payments import ledger, service
from tasks.payments.gateways import gateway_for
from tasks.payments.models import Intent
from tasks.payments.settings import PaymentSettings
from tasks.payments.stripe_gateway import StripeGateway
from tests.support.ledger import clean_tables
from tests.support.payments import run_operations


def faults(base: str, **rates: Any) -> None:
    httpx.post(f"{base}/_sim/faults", json={"seed": 7, **rates}, timeout=5).raise_for_status()


def truth(base: str, intent_key: str) -> list[dict[str, Any]]:
    found = httpx.get(f"{base}/_sim/truth", timeout=5).json()["payment_intents"]
    return [p for p in found if p["metadata"].get("switchyard_key", "").startswith(intent_key)]


@pytest.fixture
def striped(settings: Settings, payment_simulator: str) -> Iterator[Settings]:
    """Settings whose gateway is Stripe's API at the simulator (a 1 s timeout)."""
    cfg = PaymentSettings(gateway="stripe", api_base=payment_simulator, api_timeout=1.0)
    s = settings.model_copy(update={"payments": cfg})
    faults(payment_simulator)
    yield s
    faults(payment_simulator)
    clean_tables(settings, domain="payments")
    with transaction(settings) as session:
        session.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def intent(
    s: Settings,
    *,
    amount: int = 2_000,
    currency: str = "USD",
    pm: str = "pm_card_visa",
    manual: bool = False,
) -> str:
    with transaction(s) as session:
        made = service.create_intent(
            session,
            producer="shop",
            amount=amount,
            currency=currency,
            capture_method="manual" if manual else "automatic",
            payment_method=pm,
        )
        service.confirm(session, made.id, producer="shop", payment_method=None, settings=s)
        return made.id


def get(s: Settings, pid: str) -> Intent:
    with transaction(s) as session:
        return session.get_one(Intent, pid)


def test_the_configured_gateway_is_the_stripe_adapter(striped: Settings) -> None:
    assert isinstance(gateway_for(striped), StripeGateway)


def test_authorize_capture_refund_through_stripes_api(
    striped: Settings, payment_simulator: str
) -> None:
    gw = gateway_for(striped)
    pid = intent(striped, manual=True)
    run_operations(striped, gw)
    assert get(striped, pid).status == "requires_capture"
    with transaction(striped) as session:
        service.request_capture(
            session, pid, producer="shop", amount=1_500, final=True, settings=striped
        )
    run_operations(striped, gw)
    with transaction(striped) as session:
        service.request_refund(session, pid, producer="shop", amount=500, settings=striped)
    run_operations(striped, gw)
    local = get(striped, pid)
    (remote,) = truth(payment_simulator, pid)
    assert (local.status, local.amount_captured, local.amount_refunded) == ("succeeded", 1_500, 500)
    assert (remote["status"], remote["amount_received"]) == ("succeeded", 1_500)
    with transaction(striped) as session:
        assert ledger.imbalance(session) == {}


def test_a_decline_fails_the_intent(striped: Settings) -> None:
    pid = intent(striped, pm="pm_card_chargeDeclined")
    run_operations(striped, gateway_for(striped))
    assert get(striped, pid).status == "failed"


def test_isk_is_sent_in_the_providers_units(striped: Settings, payment_simulator: str) -> None:
    pid = intent(striped, amount=1_000, currency="ISK")
    run_operations(striped, gateway_for(striped))
    (remote,) = truth(payment_simulator, pid)
    assert (remote["amount"], remote["currency"]) == (100_000, "isk")
    assert get(striped, pid).amount_captured == 1_000


def test_a_timeout_after_the_charge_is_resolved_with_the_same_key(
    striped: Settings, payment_simulator: str
) -> None:
    faults(payment_simulator, hang_rate=1.0, hang_seconds=3)
    pid = intent(striped)
    with pytest.raises(RetryableError):
        run_operations(striped, gateway_for(striped))
    with transaction(striped) as session:
        status = session.execute(
            text("SELECT status FROM pay_operations WHERE intent_id = :i"), {"i": pid}
        ).scalar_one()
    assert status == "unknown" and get(striped, pid).status == "processing"
    faults(payment_simulator)
    run_operations(striped, gateway_for(striped))
    assert get(striped, pid).status == "succeeded"
    assert len(truth(payment_simulator, pid)) == 1  # charged once


def test_a_5xx_before_the_charge_leaves_it_unknown_until_the_provider_answers(
    striped: Settings, payment_simulator: str
) -> None:
    faults(payment_simulator, error_rate=1.0)
    pid = intent(striped)
    with pytest.raises(RetryableError):
        run_operations(striped, gateway_for(striped))
    assert get(striped, pid).status == "processing"
    faults(payment_simulator)
    run_operations(striped, gateway_for(striped))
    assert get(striped, pid).status == "succeeded"
    assert len(truth(payment_simulator, pid)) == 1


def forgetful(s: Settings) -> Settings:
    """`s` with a provider that forgets keys at once: every unknown attempt is past it."""
    cfg = s.section(PaymentSettings).model_copy(update={"key_lifetime": 0.001})
    return s.model_copy(update={"payments": cfg})


def operation(s: Settings, pid: str, kind: str) -> tuple[str, int, str | None]:
    with transaction(s) as session:
        row = session.execute(
            text("SELECT status, asks, error FROM pay_operations WHERE intent_id = :i"
                 " AND kind = :k"), {"i": pid, "k": kind},
        ).one()  # fmt: skip
        return row.status, row.asks, row.error


def test_past_the_key_lifetime_a_lost_charge_is_found_by_its_key(
    striped: Settings, payment_simulator: str
) -> None:
    """The answer is lost and every call still hangs: a replay would be lost again. Past the
    key's lifetime the janitor's question is a search by `switchyard_key`, which finds it."""
    faults(payment_simulator, hang_rate=1.0, hang_seconds=3)
    pid = intent(striped)
    with pytest.raises(RetryableError):
        run_operations(striped, gateway_for(striped))
    late = forgetful(striped)
    with transaction(late) as session:
        assert service.ask_about_unknowns(session, settings=late, now=True) == 1
    (done,) = run_operations(late, gateway_for(late))
    assert done["status"] == "succeeded" and get(late, pid).status == "succeeded"
    assert operation(late, pid, "authorize")[:2] == ("succeeded", 1)
    assert len(truth(payment_simulator, pid)) == 1  # charged once: found, not made again


def test_past_the_key_lifetime_an_authorization_not_found_never_happened(
    striped: Settings, payment_simulator: str
) -> None:
    """A 5xx before anything was applied, and the provider still failing: the search finds no
    payment intent with the key, so the authorization is declined (`not_at_provider`)."""
    faults(payment_simulator, error_rate=1.0)
    pid = intent(striped)
    with pytest.raises(RetryableError):
        run_operations(striped, gateway_for(striped))
    late = forgetful(striped)
    run_operations(late, gateway_for(late))
    assert operation(late, pid, "authorize") == ("failed", 1, "not_at_provider")
    assert get(late, pid).status == "failed"
    assert truth(payment_simulator, pid) == []


def test_past_the_key_lifetime_a_lost_capture_is_left_to_an_operator(
    striped: Settings, payment_simulator: str
) -> None:
    """Only an authorization carries the key in its metadata: a capture whose answer was lost
    is neither replayed nor asked about by the janitor past the key's lifetime."""
    pid = intent(striped, manual=True)
    run_operations(striped, gateway_for(striped))
    with transaction(striped) as session:
        service.request_capture(session, pid, producer="shop", amount=None, final=True,
                                settings=striped)  # fmt: skip
    faults(payment_simulator, hang_rate=1.0, hang_seconds=3)
    with pytest.raises(RetryableError):
        run_operations(striped, gateway_for(striped))
    late = forgetful(striped)
    with transaction(late) as session:
        assert service.ask_about_unknowns(session, settings=late, now=True) == 0
    (left,) = run_operations(late, gateway_for(late))  # a worker that still picks it up
    assert left == {"status": "unknown", "reason": "past the provider's key lifetime"}
    assert operation(late, pid, "capture")[0] == "unknown"
    assert get(late, pid).status == "requires_capture"
