"""Reconciliation against the simulator's settlement report, read through the `stripe`
package: a clean report (disputes included) yields no exception, every injected mismatch is
found with its type once, a provider event no operation of ours explains is an `unexplained`
exception, an operator's resolution is kept and final, and the report's payouts are booked
once as ledger transfers (or typed exceptions when they cannot be)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from config import Settings
from devstack.processes import settings_env, switchyard
from store.db import transaction
from tasks.payments import ledger, payouts, reconciliation, service
from tasks.payments.gateway import SettlementLine
from tasks.payments.gateways import gateway_for
from tasks.payments.models import Intent, ReconException, WebhookEvent
from tasks.payments.reconciliation import Resolution
from tasks.payments.settings import PaymentSettings
from tasks.payments.settlement import Kind
from tasks.payments.stripe_gateway import StripeGateway
from tests.support.ledger import clean_tables
from tests.support.payments import apply_provider_events, run_operations, start_simulator


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
    run_operations(s, gateway_for(s))
    if refund:
        with transaction(s) as session:
            service.request_refund(session, made.id, producer="shop", amount=refund, settings=s)
        run_operations(s, gateway_for(s))
    with transaction(s) as session:
        intent = session.get_one(Intent, made.id)
        assert intent.amount_captured == amount and intent.amount_refunded == refund
        assert intent.provider_ref
        return intent.provider_ref


def run(s: Settings) -> dict[str, Any]:
    with transaction(s) as session:
        return reconciliation.run(session, settings=s)


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


def dispute(sim: str, ref: str, *, close: str | None = None, amount: int | None = None) -> str:
    """A dispute of the charge opened at the provider (and closed `won` or `lost`); its id."""
    body: dict[str, object] = {"payment_intent": ref}
    if amount is not None:
        body["amount"] = amount
    made = httpx.post(f"{sim}/_sim/disputes", json=body, timeout=5)
    made.raise_for_status()
    if close:
        httpx.post(
            f"{sim}/_sim/disputes/{made.json()['id']}/close", json={"status": close}, timeout=5
        ).raise_for_status()
    return str(made.json()["id"])


def test_a_clean_report_with_disputes_yields_no_exception(recon: tuple[Settings, str]) -> None:
    """Withdrawals, their fees and a won dispute's reversal are in the report as Stripe's
    adjustments; each matches the dispute its webhooks recorded here."""
    s, sim = recon
    gateway = gateway_for(s)
    lost, won, partial = paid(s), paid(s), paid(s, refund=500)
    dispute(sim, lost, close="lost")
    dispute(sim, won, close="won")
    dispute(sim, partial, amount=700)  # still open
    for ref in (lost, won, partial):
        statuses = {status for _, status in apply_provider_events(s, gateway, sim, ref)}
        assert statuses <= {"applied", "unchanged", "stale"}, statuses
    summary = run(s)
    assert summary["lines"] == 3 + 1 + 3 + 1  # charges, a refund, withdrawals, a reversal
    assert (summary["found"], summary["recorded"]) == (0, 0), open_exc(s)


def test_a_dispute_mismatch_is_typed(recon: tuple[Settings, str]) -> None:
    """A withdrawal the report moves by 40, and a won dispute whose webhooks never arrived:
    each a `dispute_mismatch` of the disputes' net cost, its parts in the detail."""
    s, sim = recon
    moved, unheard = paid(s), paid(s)
    dispute(sim, moved)
    dispute(sim, unheard, close="won")
    apply_provider_events(s, gateway_for(s), sim, moved)  # unheard's events are lost
    body = {"inject": [{"kind": "dispute", "payment_intent": moved, "delta": 40}]}
    httpx.post(f"{sim}/_sim/settlement", json=body, timeout=5).raise_for_status()
    assert run(s)["recorded"] == 2
    assert sorted(open_exc(s), key=lambda e: e[1] != moved) == [
        ("dispute_mismatch", moved, 3_500, 3_540,
         "withdrawn, fees, reinstated: 2000, 1500, 0 here; 2040, 1500, 0 there"),
        ("dispute_mismatch", unheard, 0, 1_500,
         "withdrawn, fees, reinstated: 0, 0, 0 here; 2000, 1500, 2000 there"),
    ]  # fmt: skip


def test_an_event_no_operation_explains_is_an_unexplained_exception(
    recon: tuple[Settings, str],
) -> None:
    """Another system refunds at the provider, and the provider disputes a charge already
    refunded in full: neither can apply here, each event is `unexplained` and raises one
    `unexplained` exception naming it; the report then shows both too (the refund `over`, the
    dispute a `dispute_mismatch`)."""
    s, sim = recon
    gateway = gateway_for(s)
    assert isinstance(gateway, StripeGateway)
    elsewhere, refunded = paid(s), paid(s, refund=2_000)
    gateway.client.v1.refunds.create(params={"payment_intent": elsewhere, "amount": 300})
    dispute(sim, refunded)
    last = apply_provider_events(s, gateway, sim, elsewhere)[-1]
    assert last == ("charge.refunded", "unexplained")
    last = apply_provider_events(s, gateway, sim, refunded)[-1]
    assert last == ("charge.dispute.created", "unexplained")
    with transaction(s) as session:
        raised = {e.provider_ref: e for e in session.scalars(select(ReconException))}
        assert set(raised) == {elsewhere, refunded}
        for exc in raised.values():
            event = session.get_one(WebhookEvent, exc.webhook_event_id)
            assert (exc.kind, exc.run_id, exc.intent_id) == ("unexplained", None, event.intent_id)
            assert event.status == "unexplained" and event.id in exc.detail
        assert "reports 300 refunded; no operation of ours explains it" in raised[elsewhere].detail
        assert "the dispute cannot apply" in raised[refunded].detail
        intent = session.scalars(select(Intent).where(Intent.provider_ref == elsewhere)).one()
        assert intent.amount_refunded == 0  # nothing was applied
    # Applied again (a redelivery), nothing more is raised; reconciling adds the report's view.
    apply_provider_events(s, gateway, sim, elsewhere)
    run(s)
    assert sorted((kind, ref) for kind, ref, *_ in open_exc(s)) == sorted([
        ("unexplained", elsewhere), ("over", elsewhere),
        ("unexplained", refunded), ("dispute_mismatch", refunded),
    ])  # fmt: skip


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


def pay_out(sim: str, **body: object) -> dict[str, object]:
    """A payout made at the provider (all that is available unless `amount` says)."""
    made = httpx.post(f"{sim}/_sim/payouts", json=body, timeout=5)
    made.raise_for_status()
    return dict(made.json())


def transfers(s: Settings) -> dict[str, tuple[str, str, int, str]]:
    """Every transfer: its accounts, amount and code."""
    with transaction(s) as session:
        rows = session.execute(text(
            "SELECT id, debit_account_id, credit_account_id, amount, code FROM pay_transfers"
        ))  # fmt: skip
        return {r.id: (r.debit_account_id, r.credit_account_id, r.amount, r.code) for r in rows}


def test_a_clean_report_with_a_payout_books_it_once(recon: tuple[Settings, str]) -> None:
    """The day's net paid out is one `payout` transfer from the provider's account to the
    bank's; imported again, the report books nothing more, and the books stay sound."""
    s, sim = recon
    paid(s), paid(s, refund=500)
    payout = pay_out(sim)
    assert payout["amount"] == 2 * (2_000 - 58) - 500  # the charges net of fees, less a refund
    summary = run(s)
    assert summary["lines"] == 4  # two charges, a refund and the payout
    assert (summary["found"], summary["payouts"]) == (0, 1), open_exc(s)
    booked = transfers(s)
    assert booked[payouts.transfer_id(str(payout["id"]))] == (
        "payouts:USD", "provider:USD", payout["amount"], "payout",
    )  # fmt: skip
    again = run(s)
    assert (again["found"], again["recorded"], again["payouts"]) == (0, 0, 0)
    assert transfers(s) == booked
    with transaction(s) as session:
        assert ledger.balance(session, "payouts:USD").debits_posted == payout["amount"]
        assert ledger.imbalance(session) == {}
    verified = cli(s, "verify")
    assert verified.returncode == 0, verified.stderr
    assert "accounts match their transfers" in verified.stdout


def test_a_payout_mismatch_is_typed(recon: tuple[Settings, str]) -> None:
    """A payout reported again with another amount is a `duplicate`, one in a currency we
    never took money in a `currency_mismatch`; neither is booked. One larger than the
    provider owes is the provider's word: booked, the provider's account below zero."""
    s, sim = recon
    paid(s)
    first = pay_out(sim)
    amount = int(str(first["amount"]))
    assert amount == 1_942 and run(s)["payouts"] == 1
    body = {"inject": [{"kind": "payout", "payout": first["id"], "delta": 100}]}
    httpx.post(f"{sim}/_sim/settlement", json=body, timeout=5).raise_for_status()
    foreign = pay_out(sim, currency="eur", amount=500)
    beyond = pay_out(sim, amount=10_000)
    before = transfers(s)
    summary = run(s)
    assert (summary["found"], summary["recorded"], summary["payouts"]) == (2, 2, 1)
    assert sorted(open_exc(s)) == sorted([
        ("duplicate", first["id"], amount, amount + 100, "payout, two amounts"),
        ("currency_mismatch", foreign["id"], None, None, "payout in EUR: no provider account"),
    ])  # fmt: skip
    after = transfers(s)
    assert set(after) - set(before) == {payouts.transfer_id(str(beyond["id"]))}
    with transaction(s) as session:
        owed = ledger.balance(session, "provider:USD")
        assert owed.debits_posted - owed.credits_posted == 2_000 - 1_942 - 10_000
        assert ledger.imbalance(session) == {}


def test_a_payout_that_changes_or_pays_nothing_is_typed(recon: tuple[Settings, str]) -> None:
    """Reports given as lines: a payout booked at 500 then reported at 700 is a `duplicate`
    (booked, reported); one in two currencies a `currency_mismatch`; one paying nothing out
    `unexpected`. Only the first report's payout is booked."""
    s, _ = recon
    paid(s)  # provider:USD exists (its charge, in no report here, is `missing`)

    def report(*lines: tuple[str, int, str]) -> dict[str, int]:
        got = [SettlementLine(f"txn_{n}", "payout", ref, amount, 0, cur)
               for n, (ref, amount, cur) in enumerate(lines)]  # fmt: skip
        with transaction(s) as session:
            summary = reconciliation.reconcile(session, got, overrides={}, settle_after=0)
            return asdict(summary)

    assert report(("po_a", -500, "USD"))["payouts"] == 1
    summary = report(("po_a", -700, "USD"), ("po_b", -10, "USD"), ("po_b", -10, "EUR"),
                     ("po_c", 0, "USD"))  # fmt: skip
    assert (summary["found"], summary["payouts"]) == (1 + 3, 0)  # the charge is `missing`
    assert sorted(e for e in open_exc(s) if e[1].startswith("po_")) == [
        ("currency_mismatch", "po_b", None, None, "payout in [EUR, USD]"),
        ("duplicate", "po_a", 500, 700, "payout booked, now another"),
        ("unexpected", "po_c", None, 0, "payout of nothing out"),
    ]
    assert [t for t in transfers(s) if t.startswith("payout:")] == ["payout:po_a"]
