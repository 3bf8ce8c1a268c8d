"""`switchyard payments intents|unknown|verify` against the run's ledger, as subprocesses:
verify finds a tampered history row and a tampered balance."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from config import Settings
from devstack.processes import settings_env, switchyard
from errors import RetryableError
from store.db import transaction
from tasks.payments import service
from tasks.payments.gateway import TokenGateway
from tests.support.ledger import clean_tables
from tests.support.payments import LosingGateway, run_operations


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        switchyard("payments", *args), env=settings_env(settings), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


def confirmed(settings: Settings) -> str:
    with transaction(settings) as s:
        made = service.create_intent(s, producer="shop", amount=700, currency="JPY",
                                     payment_method="pm_card_visa")  # fmt: skip
        service.confirm(s, made.id, producer="shop", payment_method=None, settings=settings)
        return made.id


@pytest.fixture
def two_intents(settings: Settings) -> Iterator[list[str]]:
    """One succeeded intent, one whose authorization's outcome is unknown."""
    ids = [confirmed(settings)]
    run_operations(settings, TokenGateway())
    ids.append(confirmed(settings))
    losing = LosingGateway()
    losing.lose_next = 1
    with pytest.raises(RetryableError):  # the answer is lost: the operation stays unknown
        run_operations(settings, losing)
    yield ids
    clean_tables(settings, domain="payments")
    with transaction(settings) as s:
        s.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def test_intents_unknown_and_verify(settings: Settings, two_intents: list[str]) -> None:
    listed = json.loads(cli(settings, "intents", "--json").stdout)
    assert {i["id"]: i["status"] for i in listed} == {
        two_intents[0]: "succeeded", two_intents[1]: "processing"}  # fmt: skip
    unknown = json.loads(cli(settings, "unknown", "--json").stdout)
    assert [u["intent"] for u in unknown] == [two_intents[1]]
    done = cli(settings, "verify")
    assert done.returncode == 0 and "2 intent chains intact" in done.stdout, done.stderr


def test_verify_finds_a_tampered_history(settings: Settings, two_intents: list[str]) -> None:
    with transaction(settings) as s:
        s.execute(text("ALTER TABLE pay_intent_events DISABLE TRIGGER pay_intent_events_immutable"))
        s.execute(text("UPDATE pay_intent_events SET data = '{\"amount\": 1}' WHERE seq = 0"
                       " AND intent_id = :i"), {"i": two_intents[0]})  # fmt: skip
        s.execute(text("ALTER TABLE pay_intent_events ENABLE TRIGGER pay_intent_events_immutable"))
    done = cli(settings, "verify")
    assert done.returncode == 1
    assert two_intents[0] in done.stderr


def test_verify_finds_a_tampered_balance(settings: Settings, two_intents: list[str]) -> None:
    with transaction(settings) as s:  # past every trigger, the deferred balance check too
        s.execute(text("ALTER TABLE pay_accounts DISABLE TRIGGER USER"))
        s.execute(text("UPDATE pay_accounts SET credits_posted = credits_posted + 1"
                       " WHERE id = 'provider:JPY'"))  # fmt: skip
        s.execute(text("ALTER TABLE pay_accounts ENABLE TRIGGER USER"))
    done = cli(settings, "verify", "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["broken"] == [] and report["chains"] == 2  # the histories are intact
    assert report["imbalance"] == {"JPY": [-1, 0]}
    assert "JPY: debits - credits = -1 posted, 0 pending" in done.stderr
