"""The payments part of a run: a provider simulator with every fault on, the payments load
beside the jobs load, then settling (janitor, sweep) and reconciliation with injected
mismatches.

The simulator declines, answers 500 before applying, hangs after applying (past the adapter's
timeout: the charge happened, its answer is lost), adds latency, and sends its webhooks twice,
late or not at all. It runs as a process of its own that the fault schedule leaves alone (its
state is the provider's truth).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import text

from chaos import payments_invariants, payments_ledger, payments_load
from chaos.invariants import Row
from chaos.payments_load import Burst, Flow
from config import Settings
from devstack.processes import Process, free_port, wait_until
from devstack.readiness import answers
from store.db import transaction
from tasks.payments import reconciliation, service
from tasks.payments.gateways import gateway_for
from tasks.payments.settings import PaymentSettings

WEBHOOK_SECRET = "whsec_" + "Y2hhb3MtcGF5bWVudHMtd2ViaG9vaw"
FAULTS = {"seed": 11, "decline_rate": 0.05, "error_rate": 0.1, "hang_rate": 0.08,
          "hang_seconds": 3.0, "latency": 0.02}  # fmt: skip
WEBHOOK_FAULTS = {"seed": 12, "duplicate_rate": 0.3, "drop_rate": 0.2, "delay": 1.0}
# (fault, delta): one of each kind the simulator can inject into its settlement report
INJECT = (("missing", 0), ("over", 1_000), ("under", 1_000), ("currency", 0), ("fee", 7),
          ("duplicate", 0), ("unexpected", 5_000))  # fmt: skip
OPEN_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_capture")


def settings_for(simulator: str) -> PaymentSettings:
    """Stripe's adapter at the simulator, with a short timeout (a hang is a lost answer), the
    janitor asking after 2 s, and reconciliation only when the run asks (never beat's)."""
    return PaymentSettings(
        gateway="stripe",
        api_base=simulator,
        api_timeout=2.0,
        janitor_schedule=[2.0],
        webhook_secrets=[SecretStr(WEBHOOK_SECRET)],
        ledger_interval=2.0,
        recon_interval=86_400.0,
    )


def start_simulator(logs: Path) -> tuple[Process, str]:
    """The simulator on a free port; its process and base URL."""
    port = free_port()
    proc = Process([sys.executable, "-m", "devstack.payment_simulator", "--port", str(port)],
                   env=dict(os.environ), log_path=logs / "payment-simulator.log")  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{url}/healthz", timeout=1), timeout=30, what="the simulator")
    return proc, url


def _control(simulator: str, path: str, body: dict[str, Any]) -> None:
    httpx.post(f"{simulator}{path}", json=body, timeout=30).raise_for_status()


@dataclass
class PaymentRun:
    """The payments load of a run and what settling it found."""

    simulator: str
    base: str
    token: str
    flows: list[Flow]
    burst: Burst = field(default_factory=Burst)
    swept: int = 0
    janitor_due: int = 0
    thread: threading.Thread | None = None

    def start(self, *, duration: float, deadline: float) -> None:
        """Faults on, webhooks to the API, and the load in a thread of its own."""
        _control(self.simulator, "/_sim/faults", FAULTS)
        _control(self.simulator, "/_sim/webhooks", {
            "url": f"{self.base}/v1/payments/webhooks/stripe", "secrets": [WEBHOOK_SECRET],
            **WEBHOOK_FAULTS,
        })  # fmt: skip

        def drive() -> None:
            payments_load.drive(self.base, self.token, self.flows, self.burst, duration=duration,
                                burst_at=0.45 * duration, deadline=deadline)  # fmt: skip

        self.thread = threading.Thread(target=drive, name="chaos-payments", daemon=True)
        self.thread.start()

    def settle(self, settings: Settings, converge: Callable[[], float | None]) -> None:
        """Wait for the load, faults off, the janitor asked now, orphans canceled; each step
        followed by `converge` (every job finished)."""
        if self.thread is not None:
            self.thread.join()
        _control(self.simulator, "/_sim/faults", {"seed": 0})
        converge()
        with transaction(settings) as s:
            self.janitor_due = service.ask_about_unknowns(s, settings=settings, now=True)
        converge()
        with transaction(settings) as s:
            left = list(s.scalars(text("SELECT id FROM pay_intents WHERE status = ANY(:s)"),
                                  {"s": list(OPEN_STATUSES)}))  # fmt: skip
        for intent_id in left:
            self.swept += self._cancel(intent_id)
        converge()

    def _cancel(self, intent_id: str, *, within: float = 60.0) -> bool:
        """Cancel one intent through the API (retried while the API is restarting)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                resp = httpx.post(f"{self.base}/v1/payment-intents/{intent_id}/cancel",
                                  headers=headers, timeout=30)  # fmt: skip
            except httpx.TransportError:
                time.sleep(1.0)
                continue
            if resp.status_code < 500:
                return resp.status_code in (200, 202)
            time.sleep(1.0)
        return False

    def rows(self, settings: Settings) -> list[Row]:
        """Every payments invariant, reconciliation with injected mismatches included."""
        snap = payments_ledger.snapshot(settings, payments_ledger.truth(self.simulator))
        baseline, injected, found = self._reconcile(settings, snap)
        return [
            *payments_invariants.flow_rows(self.flows, swept=self.swept),
            *payments_invariants.payment_rows(snap),
            *payments_invariants.burst_rows(self.burst, snap),
            *payments_invariants.recon_rows(injected, baseline, found),
        ]

    def _reconcile(
        self, settings: Settings, snap: payments_ledger.PaymentSnapshot
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
        """Reconcile the clean report (nothing may be found), inject one mismatch of each
        kind on distinct intents, reconcile again; (baseline, injected, found)."""
        cfg = settings.section(PaymentSettings)
        gateway = gateway_for(settings)

        def reconcile() -> list[tuple[str, str]]:
            with transaction(settings) as s:
                report = gateway.settlement() or []
                reconciliation.reconcile(
                    s, report, overrides=cfg.provider_exponents, settle_after=0.0
                )
            return payments_ledger.open_exceptions(settings)

        baseline = reconcile()
        charged = sorted(
            i.provider_ref for i in snap.intents.values()
            if i.provider_ref and i.amount_captured > 0 and i.status == "succeeded"
        )  # fmt: skip
        faults: list[dict[str, Any]] = []
        injected: list[tuple[str, str]] = []
        for kind, delta in INJECT:
            if kind == "unexpected":  # the simulator names it by its place in the list
                injected.append((kind, f"pi_unexpected_{len(faults)}"))
                faults.append({"kind": kind, "delta": delta})
            elif charged:
                ref = charged.pop(0)
                faults.append({"kind": kind, "payment_intent": ref, "delta": delta})
                injected.append((kind, ref))
        _control(self.simulator, "/_sim/settlement", {"inject": faults})
        found = reconcile()
        _control(self.simulator, "/_sim/settlement", {"inject": []})
        return baseline, injected, [f for f in found if f not in baseline]
