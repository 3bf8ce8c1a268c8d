"""`switchyard payments intents|unknown|verify` against the run's ledger, as subprocesses:
verify finds a tampered history row, a tampered balance (balanced or not) and a tampered
transfer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from config import Settings
from devstack.processes import settings_env, switchyard
from errors import RetryableError
from store.db import transaction
from tasks.payments import ledger, service
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
    assert "accounts match their transfers" in done.stdout


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
    (drift,) = report["drift"]
    assert drift["account"] == "provider:JPY"
    assert drift["stored"]["credits_posted"] == drift["recomputed"]["credits_posted"] + 1


def drifted(report: dict[str, Any]) -> dict[str, dict[str, tuple[int, int]]]:
    """Per drifted account, each balance that differs: (stored, recomputed)."""
    return {
        d["account"]: {k: (v, d["recomputed"][k]) for k, v in d["stored"].items()
                       if v != d["recomputed"][k]}
        for d in report["drift"]
    }  # fmt: skip


def test_verify_finds_a_balance_and_a_transfer_tampered(
    settings: Settings, two_intents: list[str]
) -> None:
    """Two tamperings the database's own checks let through: a hand-written UPDATE that moves
    one yen between two accounts' stored balances (debits = credits still holds, so the
    deferred check commits it) and one transfer's amount changed past its immutability
    trigger. Only recomputing every balance from the transfers sees them; each is named."""
    captured = two_intents[0]
    account = f"intent:{captured}"
    with transaction(settings) as s:
        provider_pending = ledger.balance(s, "provider:JPY").debits_pending
        intent_pending = ledger.balance(s, account).credits_pending
        s.execute(text("UPDATE pay_accounts SET debits_pending = debits_pending + 1"
                       " WHERE id = 'provider:JPY'"))  # fmt: skip
        s.execute(text("UPDATE pay_accounts SET credits_pending = credits_pending + 1"
                       " WHERE id = :a"), {"a": account})  # fmt: skip
    with transaction(settings) as s:
        s.execute(text("ALTER TABLE pay_transfers DISABLE TRIGGER pay_transfers_immutable"))
        fee = s.execute(text("UPDATE pay_transfers SET amount = amount + 5 WHERE debit_account_id"
                             " = :a AND credit_account_id = 'fees:JPY' RETURNING amount"),
                        {"a": account}).scalar_one()  # fmt: skip
        s.execute(text("ALTER TABLE pay_transfers ENABLE TRIGGER pay_transfers_immutable"))
    done = cli(settings, "verify", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["broken"] == [] and report["imbalance"] == {}  # neither check would see it
    assert drifted(report) == {
        "provider:JPY": {"debits_pending": (provider_pending + 1, provider_pending)},
        account: {
            "credits_pending": (intent_pending + 1, intent_pending),
            "debits_posted": (fee - 5, fee),
        },
        "fees:JPY": {"credits_posted": (fee - 5, fee)},
    }
    assert f"account fees:JPY: credits_posted {fee - 5} stored, {fee} from transfers" in (
        done.stderr)  # fmt: skip
