"""Reconciliation against the simulator's settlement report, read through the `stripe`
package: a clean report yields no exception, every injected mismatch is found with its type
once, and an operator's resolution is kept and final."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from devstack.processes import settings_env, switchyard
from store.db import transaction
from tasks.payments import reconciliation, service
from tasks.payments.gateways import gateway_for
from tasks.payments.models import Intent
from tasks.payments.reconciliation import Resolution
from tasks.payments.settings import PaymentSettings
from tasks.payments.settlement import Kind
from tests.support.ledger import clean_tables
from tests.support.payments import run_operations, start_simulator


@pytest.fixture
def recon(settings: Settings, logs_dir: Path) -> Iterator[tuple[Settings, str]]:
    """Settings on a simulator of its own (its report holds only this test's charges)."""
    proc, base = start_simulator(logs_dir)
    cfg = PaymentSettings(gateway="stripe", api_base=base, api_timeout=5.0, recon_settle_after=0)
    yield settings.model_copy(update={"payments": cfg}), base
    proc.stop()
    clean_tables(settings, domain="payments")
    with transaction(settings) as session:
        session.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def paid(s: Settings, *, amount: int = 2_000, refund: int = 0) -> str:
    """An intent captured (and partly refunded) through the simulator; its provider ref."""
    with transaction(s) as session:
        made = service.create_intent(
            session, producer="shop", amount=amount, currency="USD",
            capture_method="automatic", payment_method="pm_card_visa",
        )  # fmt: skip
        service.confirm(session, made.id, producer="shop", payment_method=None, settings=s)
    run_operations(s, gateway_for(s))  # type: ignore[arg-type]
    if refund:
        with transaction(s) as session:
            service.request_refund(session, made.id, producer="shop", amount=refund, settings=s)
        run_operations(s, gateway_for(s))  # type: ignore[arg-type]
    with transaction(s) as session:
        intent = session.get_one(Intent, made.id)
        assert intent.amount_captured == amount and intent.amount_refunded == refund
        assert intent.provider_ref
        return intent.provider_ref


def run(s: Settings) -> dict[str, int]:
    with transaction(s) as session:
        return reconciliation.run(session, settings=s)  # type: ignore[return-value]


def open_by_ref(s: Settings) -> dict[str, list[str]]:
    with transaction(s) as session:
        found: dict[str, list[str]] = {}
        for e in reconciliation.open_exceptions(session):
            found.setdefault(e.provider_ref, []).append(e.kind)
        return found


def test_a_clean_report_yields_no_exception(recon: tuple[Settings, str]) -> None:
    s, _ = recon
    refs = [paid(s), paid(s, refund=500), paid(s, amount=999)]
    summary = run(s)
    assert summary["lines"] == 4  # three charges and one refund
    assert summary["intents"] == len(refs)
    assert (summary["found"], summary["recorded"]) == (0, 0), open_exc(s)
    assert open_by_ref(s) == {}


def test_every_injected_mismatch_is_found_once_with_its_type(recon: tuple[Settings, str]) -> None:
    s, sim = recon
    refs = {kind: paid(s) for kind in ("missing", "over", "under", "currency", "fee", "duplicate")}
    clean = paid(s, refund=300)
    inject = [{"kind": kind, "payment_intent": ref} for kind, ref in refs.items()]
    inject.append({"kind": "unexpected"})
    httpx.post(f"{sim}/_sim/settlement", json={"inject": inject}, timeout=5).raise_for_status()
    summary = run(s)
    found = open_by_ref(s)
    expected_kinds = {
        "missing": Kind.MISSING, "over": Kind.OVER, "under": Kind.UNDER,
        "currency": Kind.CURRENCY, "fee": Kind.FEE, "duplicate": Kind.DUPLICATE,
    }  # fmt: skip
    for injected, ref in refs.items():
        assert found.pop(ref) == [expected_kinds[injected]], injected
    assert clean not in found  # no false alarm beside the injected ones
    ((stray, kinds),) = found.items()
    assert stray.startswith("pi_unexpected_") and kinds == [Kind.UNEXPECTED]
    assert summary["found"] == summary["recorded"] == 7
    # Run again: the same differences are still there, and none is recorded twice.
    again = run(s)
    assert (again["found"], again["recorded"]) == (7, 0)


def test_a_resolution_is_kept_and_final(recon: tuple[Settings, str]) -> None:
    s, sim = recon
    ref = paid(s)
    body = {"inject": [{"kind": "fee", "payment_intent": ref, "delta": 7}]}
    httpx.post(f"{sim}/_sim/settlement", json=body, timeout=5).raise_for_status()
    run(s)
    with transaction(s) as session:
        (exc,) = reconciliation.open_exceptions(session)
        assert (exc.expected, exc.actual) == (58, 65)
        done = reconciliation.resolve(
            session, exc.id, resolution=Resolution.PROVIDER_CORRECTED, by="ana", note="ticket 9"
        )
        assert (done.resolution, done.resolved_by, done.note) == (
            "provider_corrected",
            "ana",
            "ticket 9",
        )
        assert done.resolved_at is not None
    with transaction(s) as session, pytest.raises(reconciliation.ReconExceptionResolvedError):
        reconciliation.resolve(
            session, exc.id, resolution=Resolution.WRITTEN_OFF, by="bo", note="x"
        )
    # Once resolved, the same difference found again is a new exception to look at.
    assert run(s)["recorded"] == 1


def open_exc(s: Settings) -> list[tuple[str, str, int | None, int | None, str]]:
    with transaction(s) as session:
        return [
            (e.kind, e.provider_ref, e.expected, e.actual, e.detail)
            for e in reconciliation.open_exceptions(session)
        ]


def cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        switchyard("payments", *args), env=settings_env(s), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_operators_run_and_resolve_from_the_cli(recon: tuple[Settings, str]) -> None:
    s, sim = recon
    ref = paid(s)
    body = {"inject": [{"kind": "under", "payment_intent": ref, "delta": 5}]}
    httpx.post(f"{sim}/_sim/settlement", json=body, timeout=5).raise_for_status()
    listed = cli(s, "recon", "--run", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["kind"], row["provider_ref"], row["expected"], row["actual"]) == (
        "under", ref, 2_000, 1_995,
    )  # fmt: skip
    args = ("recon-resolve", str(row["id"]), "--resolution", "written_off", "--note", "5 cents")
    done = cli(s, *args, "--by", "ana")
    assert done.returncode == 0, done.stderr
    assert "written_off, ana" in done.stdout
    again = cli(s, *args, "--by", "bo")
    assert again.returncode == 1 and "already resolved" in again.stderr
    assert json.loads(cli(s, "recon", "--json").stdout) == []
