"""Property (hypothesis, stateful): whatever callers, the provider, its webhooks and the clock
do, in any order, after every step only legal transitions happened, the ledger balances in
every currency, refunds and lost disputes stay within what was captured, and every amount is
an exact integer whose parts sum to their whole.

Against the real PostgreSQL and a simulator process of the test's own, through the `stripe`
package. What a worker or beat would run (an operation, a webhook's processing, the expiry
tick) is called in-process: the same functions the job handlers call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pydantic import SecretStr
from sqlalchemy import select, text

from config import Settings
from devstack.payment_webhooks import signature
from errors import RetryableError
from store.db import autocommit, transaction
from tasks.payments import operations, service, webhook_events, webhooks
from tasks.payments.errors import AmountExceededError, IllegalTransitionError
from tasks.payments.gateways import gateway_for
from tasks.payments.models import Intent, Operation
from tasks.payments.settings import PaymentSettings
from tests.support import payment_invariants as check
from tests.support.ledger import clean_tables
from tests.support.payments import start_simulator

SECRET = "whsec_machine_5e6f7a8b"
MAX_INTENTS = 3  # few enough that each sees many steps
RUN = st.sampled_from(["later", "now", "now", "timeout"])
REFUSED = (IllegalTransitionError, AmountExceededError)  # what a caller may be told: 409


class Payments(RuleBasedStateMachine):
    """One example: intents driven by random callers against one simulator."""

    settings: Settings
    sim: str

    def __init__(self) -> None:
        super().__init__()
        clean_tables(self.settings, domain="payments")
        with transaction(self.settings) as s:
            s.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))
        self.control("/_sim/faults", {})
        self.made = 0
        self.seen = len(httpx.get(f"{self.sim}/_sim/events", timeout=10).json()["events"])

    def control(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.sim}{path}", json=body, timeout=10)

    def intent(self, intent_id: str) -> Intent:
        with transaction(self.settings) as s:
            return s.get_one(Intent, intent_id)

    def work(self) -> None:
        """The worker: run every open operation once (an unknown outcome stays unknown)."""
        with transaction(self.settings) as s:
            due = s.scalars(
                select(Operation.id)
                .where(Operation.status.in_(service.OPEN))
                .order_by(Operation.id)
            ).all()
        for op_id in due:
            # An answer lost (RetryableError, rolled back) is asked about on a later step.
            with (
                contextlib.suppress(RetryableError),
                autocommit(self.settings) as recorder,
                transaction(self.settings) as s,
            ):
                operations.execute(
                    s, op_id, recorder=recorder, gateway=gateway_for(self.settings),
                    settings=self.settings,
                )  # fmt: skip

    def then(self, run: str) -> None:
        """After a request: its worker runs at once, or at once while the provider's answers
        time out (every call applied, none answered), or only on a later step."""
        if run == "now":
            self.work()
        elif run == "timeout":
            self.control("/_sim/faults", {"hang_rate": 1.0, "hang_seconds": 0.6})
            try:
                self.work()
            finally:
                self.control("/_sim/faults", {})

    def pick(self, data: st.DataObject, *statuses: str) -> str:
        """An intent for the next request: mostly one whose status allows it (when there is
        one), sometimes any (which must then be refused). The draws are the same whatever
        the state, as Hypothesis requires; intents are taken in the order they were made."""
        fits, n = data.draw(st.integers(0, 3), label="fits"), data.draw(st.integers(0, 99))
        with transaction(self.settings) as s:
            rows = s.execute(select(Intent.id, Intent.status).order_by(Intent.id)).all()
        fitting = [i for i, status in rows if status in statuses]
        pool = fitting if fitting and fits else [i for i, _ in rows]
        return pool[n % len(pool)]

    @precondition(lambda self: self.made < MAX_INTENTS)
    @rule(
        amount=st.integers(1, 100_000),
        currency=st.sampled_from(["USD", "JPY", "KWD"]),
        manual=st.booleans(),
        method=st.sampled_from(["pm_card_visa", "pm_card_visa", "pm_card_chargeDeclined", None]),
    )
    def create(self, amount: int, currency: str, manual: bool, method: str | None) -> None:
        self.made += 1
        with transaction(self.settings) as s:
            service.create_intent(
                s, producer="shop", amount=amount, currency=currency,
                capture_method="manual" if manual else "automatic", payment_method=method,
            )  # fmt: skip

    @precondition(lambda self: self.made)
    @rule(data=st.data(), method=st.sampled_from(["pm_card_visa", None]), run=RUN)
    def confirm(self, data: st.DataObject, method: str | None, run: str) -> None:
        intent = self.pick(data, "requires_confirmation", "requires_payment_method")
        before = self.intent(intent).status
        try:
            with transaction(self.settings) as s:
                service.confirm(
                    s, intent, producer="shop", payment_method=method, settings=self.settings
                )
        except IllegalTransitionError:
            attachable = method and before in ("requires_payment_method", "requires_confirmation")
            assert not attachable and before != "requires_confirmation", before
        self.then(run)

    @precondition(lambda self: self.made)
    @rule(data=st.data(), percent=st.integers(1, 120), final=st.booleans(), run=RUN)
    def capture(self, data: st.DataObject, percent: int, final: bool, run: str) -> None:
        intent = self.pick(data, "requires_capture")
        amount = max(1, self.intent(intent).amount_capturable * percent // 100)
        try:
            with transaction(self.settings) as s:
                service.request_capture(
                    s, intent, producer="shop", amount=amount, final=final, settings=self.settings
                )
        except REFUSED:
            pass
        self.then(run)

    @precondition(lambda self: self.made)
    @rule(data=st.data(), percent=st.integers(1, 120), run=RUN)
    def refund(self, data: st.DataObject, percent: int, run: str) -> None:
        intent = self.pick(data, "succeeded")
        amount = max(1, service.refundable(self.intent(intent)) * percent // 100)
        try:
            with transaction(self.settings) as s:
                service.request_refund(
                    s, intent, producer="shop", amount=amount, settings=self.settings
                )
        except REFUSED:
            pass
        self.then(run)

    @precondition(lambda self: self.made)
    @rule(data=st.data(), run=RUN)
    def cancel(self, data: st.DataObject, run: str) -> None:
        intent = self.pick(data, "requires_capture", "requires_confirmation")
        try:
            with transaction(self.settings) as s:
                service.cancel(s, intent, producer="shop", settings=self.settings)
        except REFUSED:
            pass
        self.then(run)

    @rule()
    def worker(self) -> None:
        self.work()

    @precondition(lambda self: self.made)
    @rule(data=st.data(), percent=st.integers(1, 100), close=st.sampled_from([None, "won", "lost"]))
    def dispute(self, data: st.DataObject, percent: int, close: str | None) -> None:
        intent = self.pick(data, "succeeded")
        ref = self.intent(intent).provider_ref
        truth = httpx.get(f"{self.sim}/_sim/truth", timeout=10).json()["payment_intents"]
        received = next((p["amount_received"] for p in truth if p["id"] == ref), 0)
        if not received:
            return
        body = {"payment_intent": ref, "amount": max(1, received * percent // 100), "fee": 15}
        opened = self.control("/_sim/disputes", body).json()
        if close:
            self.control(f"/_sim/disputes/{opened['id']}/close", {"status": close})

    @rule(pick=st.integers(0, 10_000))
    def deliver_webhook(self, pick: int) -> None:
        """Any event the provider sent so far, again or for the first time, in any order."""
        events = httpx.get(f"{self.sim}/_sim/events", timeout=10).json()["events"][self.seen :]
        if not events:
            return
        raw = json.dumps(events[pick % len(events)], separators=(",", ":")).encode()
        now = self.control("/_sim/clock", {"advance": 0}).json()["now"]
        header = signature(raw, timestamp=now, keys=[SECRET])
        cfg = self.settings.section(PaymentSettings)
        event = webhooks.verified_event(
            raw, header, secrets=[SECRET], tolerance=cfg.webhook_tolerance
        )
        with transaction(self.settings) as s:
            webhooks.record_event(s, event, settings=self.settings)
        # The provider could not say yet (RetryableError, rolled back): the job would retry.
        with (
            contextlib.suppress(RetryableError),
            autocommit(self.settings) as recorder,
            transaction(self.settings) as s,
        ):
            webhook_events.process(
                s, event.id, recorder=recorder, gateway=gateway_for(self.settings),
                settings=self.settings,
            )  # fmt: skip

    @rule(seconds=st.integers(1, 600))
    def advance_clock(self, seconds: int) -> None:
        """Both clocks move on: the provider's, and ours as far as authorizations see it
        (their expiry comes `seconds` nearer); then beat's expiry tick runs."""
        self.control("/_sim/clock", {"advance": seconds})
        with transaction(self.settings) as s:
            s.execute(
                text(
                    "UPDATE pay_intents SET expires_at = expires_at - make_interval(secs => :n)"
                    " WHERE expires_at IS NOT NULL"
                ),
                {"n": seconds},
            )
            service.expire_authorizations(s, settings=self.settings)

    @invariant()
    def books_are_sound(self) -> None:
        truth = httpx.get(f"{self.sim}/_sim/truth", timeout=10).json()
        with transaction(self.settings) as s:
            check.legal_histories(s)
            check.balanced(s)
            check.amounts_add_up(s)
            check.agrees_with_provider(s, truth)


@pytest.fixture
def machine(settings: Settings, logs_dir: Path) -> Iterator[type[Payments]]:
    proc, base = start_simulator(logs_dir)
    cfg = PaymentSettings(
        gateway="stripe", api_base=base, api_timeout=0.3, authorization_ttl=900.0,
        webhook_secrets=[SecretStr(SECRET)],
    )  # fmt: skip

    class Bound(Payments):
        pass

    Bound.settings = settings.model_copy(update={"payments": cfg})
    Bound.sim = base
    yield Bound
    proc.stop()
    clean_tables(settings, domain="payments")
    with transaction(settings) as s:
        s.execute(text("DELETE FROM jobs WHERE type LIKE 'payments.%'"))


def test_any_interleaving_keeps_the_books_sound(machine: type[Payments]) -> None:
    run_state_machine_as_test(
        machine,
        settings=hsettings(
            max_examples=10,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
