"""The payments gauges on a real API's `/metrics`, and the imbalance gauge seeing a broken book."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from config import Settings
from errors import RetryableError
from store.db import transaction
from tasks.payments import metrics, reconciliation, service
from tasks.payments.gateway import SettlementLine, TokenGateway
from tests.support.keys import MakeKey
from tests.support.ledger import clean_tables
from tests.support.metrics import scrape
from tests.support.payments import LosingGateway, run_operations


def confirmed(settings: Settings, *, currency: str) -> str:
    with transaction(settings) as s:
        made = service.create_intent(s, producer="shop", amount=700, currency=currency,
                                     payment_method="pm_card_visa")  # fmt: skip
        service.confirm(s, made.id, producer="shop", payment_method=None, settings=settings)
        return made.id


@pytest.fixture
def books(settings: Settings) -> Iterator[None]:
    """A succeeded JPY intent, a USD one whose authorization's outcome is unknown, an intent
    still waiting for its payment method, and a report of one stray line reconciled."""
    confirmed(settings, currency="JPY")
    run_operations(settings, TokenGateway())
    confirmed(settings, currency="USD")
    losing = LosingGateway()
    losing.lose_next = 1
    with pytest.raises(RetryableError):
        run_operations(settings, losing)
    with transaction(settings) as s:
        service.create_intent(s, producer="shop", amount=5, currency="EUR")
        stray = SettlementLine("txn_stray", "charge", "pi_nobody", 100, 3, "USD")
        reconciliation.reconcile(s, [stray], overrides={}, settle_after=0)
    yield
    clean_tables(settings, domain="payments")
    with transaction(settings) as s:
        s.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def test_the_api_exports_intents_unknowns_exceptions_and_balances(
    api: str, make_key: MakeKey, books: None
) -> None:
    got = scrape(api, make_key("ops", ("metrics:read",)))
    intents = {k: v for k, v in got.items() if k.startswith("switchyard_payments_intents{")}
    assert intents['switchyard_payments_intents{status="succeeded"}'] == 1
    assert intents['switchyard_payments_intents{status="processing"}'] == 1
    assert intents['switchyard_payments_intents{status="requires_payment_method"}'] == 1
    assert sum(intents.values()) == 3 and len(intents) == 8  # every status, 0 when none
    assert got["switchyard_payments_unknown_attempts"] == 1
    assert 0 <= got["switchyard_payments_unknown_oldest_seconds"] < 300
    exceptions = {
        k.split('"')[1]: v for k, v in got.items() if "recon_exceptions_open" in k
    }  # the stray line is unexpected; the JPY capture, not in the report, missing
    assert exceptions == {
        "missing": 1, "unexpected": 1, "over": 0, "under": 0, "currency_mismatch": 0,
        "fee_mismatch": 0, "duplicate": 0, "dispute_mismatch": 0, "unexplained": 0,
    }  # fmt: skip
    balances = {k: v for k, v in got.items() if "ledger_imbalance" in k}
    assert balances == {  # only JPY moved money here: the lost answer booked nothing yet
        'switchyard_payments_ledger_imbalance{balance="posted",currency="JPY"}': 0,
        'switchyard_payments_ledger_imbalance{balance="pending",currency="JPY"}': 0,
    }


def test_the_imbalance_gauge_shows_a_tampered_account(settings: Settings, books: None) -> None:
    with pytest.raises(RuntimeError, match="rolled back"), transaction(settings) as s:
        s.execute(text("ALTER TABLE pay_accounts DISABLE TRIGGER USER"))
        s.execute(text("UPDATE pay_accounts SET debits_posted = debits_posted + 3"
                       " WHERE id = 'provider:JPY'"))  # fmt: skip
        (family,) = [m for m in metrics.collect(s) if m.name.endswith("ledger_imbalance")]
        net = {(x.labels["currency"], x.labels["balance"]): x.value for x in family.samples}
        assert net == {("JPY", "posted"): 3, ("JPY", "pending"): 0}
        raise RuntimeError("rolled back")
