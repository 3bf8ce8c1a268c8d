"""Helpers for payments tests: a provider that loses answers, and running operations."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from config import Settings
from devstack.processes import Process, free_port, wait_until
from store.db import autocommit, transaction
from tasks.payments import operations
from tasks.payments.gateway import Outcome, OutcomeUnknownError, TokenGateway
from tasks.payments.models import Operation


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


def run_operations(settings: Settings, gateway: TokenGateway) -> list[dict[str, Any]]:
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
