"""Helpers for payments tests: a provider that loses answers, running operations, and a
whole stack against a simulator that sends webhooks."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from config import JobPolicy, Settings
from devstack.processes import Process, free_port, isolated, wait_until
from store.db import autocommit, transaction
from tasks.payments import operations, webhook_events, webhooks
from tasks.payments.gateway import Gateway, Outcome, OutcomeUnknownError, TokenGateway
from tasks.payments.models import Operation
from tasks.payments.settings import PaymentSettings
from tests.support.notifications import drop_redis_keys, start_beat
from tests.support.stack import start_api, start_process, start_worker


class LosingGateway(TokenGateway):
    """Applies every call, then loses the answer of the next `lose_next` calls (a timeout
    after the charge), and records the key of every call that reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next = 0
        self.calls: list[str] = []

    def authorize(self, **kw: Any) -> Outcome:
        """Authorize, perhaps losing the answer."""
        return self._maybe_lose(kw["key"], super().authorize(**kw))

    def capture(self, **kw: Any) -> Outcome:
        """Capture, perhaps losing the answer."""
        return self._maybe_lose(kw["key"], super().capture(**kw))

    def refund(self, **kw: Any) -> Outcome:
        """Refund, perhaps losing the answer."""
        return self._maybe_lose(kw["key"], super().refund(**kw))

    def _maybe_lose(self, key: str, outcome: Outcome) -> Outcome:
        self.calls.append(key)
        if self.lose_next:
            self.lose_next -= 1
            raise OutcomeUnknownError("timed out after the provider applied the call")
        return outcome


def run_operations(settings: Settings, gateway: Gateway) -> list[dict[str, Any]]:
    """Execute every open operation once, oldest first, as the worker would."""
    with transaction(settings) as s:
        ids = s.scalars(
            select(Operation.id)
            .where(Operation.status.in_(("pending", "unknown")))
            .order_by(Operation.id)
        ).all()
    results = []
    for op_id in ids:
        with autocommit(settings) as recorder, transaction(settings) as s:
            results.append(
                operations.execute(s, op_id, recorder=recorder, gateway=gateway, settings=settings)
            )
    return results


def apply_provider_events(
    settings: Settings, gateway: Gateway, simulator: str, payment_intent: str
) -> list[tuple[str, str]]:
    """Record and apply, as the webhook route and then the worker would, every event the
    simulator emitted about `payment_intent` (oldest first); each one's type and status."""
    found = httpx.get(f"{simulator}/_sim/events", timeout=10).json()["events"]
    done = []
    for raw in found:
        obj = raw["data"]["object"]
        if payment_intent not in (obj["id"], obj.get("payment_intent")):
            continue
        event = webhooks.StripeEvent.model_validate(raw)
        with transaction(settings) as s:
            webhooks.record_event(s, event, settings=settings)
        with autocommit(settings) as recorder, transaction(settings) as s:
            applied = webhook_events.process(
                s, event.id, recorder=recorder, gateway=gateway, settings=settings
            )
        done.append((event.type, str(applied["status"])))
    return done


def start_simulator(logs_dir: Path) -> tuple[Process, str]:
    """Run the payment provider simulator on a free port; returns it and its base URL."""
    port = free_port()
    proc = Process(
        [sys.executable, "-m", "devstack.payment_simulator", "--port", str(port)],
        env=dict(os.environ),
        log_path=logs_dir / f"payment-simulator-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"simulator exited:\n{proc.output()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=30, what="the payment simulator to answer")
    return proc, base


WEBHOOK_SECRETS = ("whsec_new_0c1d2e3f", "whsec_old_4a5b6c7d")  # rotating: both accepted
ALERTS_TO = "payments-ops@example.com"


@dataclass
class PaymentStack:
    """API, relay, beat and a worker speaking Stripe's API to a simulator of their own, which
    sends its webhooks to that API."""

    base: str
    simulator: str
    settings: Settings
    processes: dict[str, Process]
    logs_dir: Path

    def sim(self, path: str, body: dict[str, Any]) -> Any:
        """POST to the simulator's control API."""
        answer = httpx.post(f"{self.simulator}{path}", json=body, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def hooks(self, **controls: Any) -> None:
        """Send the simulator's webhooks to the API (signed with the new secret), with faults."""
        self.sim(
            "/_sim/webhooks",
            {
                "url": f"{self.base}/v1/payments/webhooks/stripe",
                "secrets": [WEBHOOK_SECRETS[0]],
                **controls,
            },
        )

    def events(self, payment_intent: str) -> list[dict[str, Any]]:
        """The simulator's events about one of its payment intents, oldest first."""
        found = httpx.get(f"{self.simulator}/_sim/events", timeout=10).json()["events"]
        return [
            e
            for e in found
            if payment_intent
            in (e["data"]["object"]["id"], e["data"]["object"].get("payment_intent"))
        ]


def run_payment_stack(settings: Settings, logs_dir: Path) -> Iterator[PaymentStack]:
    """Start the stack; an execute job that left an outcome unknown retries only after ten
    minutes, so that the tests' webhooks are what resolves it."""
    sim_proc, sim = start_simulator(logs_dir)
    cfg = PaymentSettings(
        gateway="stripe",
        api_base=sim,
        api_timeout=1.0,
        webhook_secrets=[SecretStr(s) for s in WEBHOOK_SECRETS],
        janitor_schedule=[3_600],
        alert_email=ALERTS_TO,
    )
    slow = JobPolicy(backoff_base=600, backoff_cap=600, jitter=False, lease_timeout=10)
    own = isolated(
        settings, payments=cfg, job_policies={**settings.job_policies, "payments.execute": slow}
    )
    api, base = start_api(own, logs_dir, name="api-payments")
    processes = {
        "api": api,
        "relay": start_process(own, logs_dir, "relay"),
        "beat": start_beat(own, logs_dir),
        "worker": start_worker(own, logs_dir, name="payments"),
    }
    stack = PaymentStack(base, sim, own, processes, logs_dir)
    stack.hooks()
    yield stack
    for proc in reversed(processes.values()):
        proc.stop()
    sim_proc.stop()
    drop_redis_keys(own)
