"""IoT alerting across real processes: a `for` duration rule's state outlives the worker that
recorded it (a fresh worker neither forgets the breach nor fires twice), and beat's offline
sweep fires for a silent device and its next reading resolves it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from devstack.processes import Process, wait_until
from store.db import transaction
from tests.support.api import auth, count_rows
from tests.support.iot import batch, provision, reading, send
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.stack import start_worker

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
ONE_NOTIFICATION_EACH = (
    "SELECT count(*) FROM iot_alert_events e FULL JOIN notifications n"
    " ON n.id = e.notification_id WHERE e.id IS NULL OR n.id IS NULL"
)
PULSE = {"id": "pulse", "metrics": {"beat": {"type": "number", "interval": 1}}}


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path) -> Iterator[IotStack]:
    """API, relay and beat (offline sweeps every second, K = 2); tests start the workers."""
    yield from run_iot_stack(
        settings, logs_dir, name="iot-ops", worker=False, offline_after=2.0,
        offline_interval=1.0,
    )  # fmt: skip


@pytest.fixture
def admin(stack: IotStack) -> Iterator[str]:
    """A key with both IoT scopes; every table is emptied after the test."""
    yield stack.key("iot:admin", "iot:read")
    clean_tables(stack.settings)


def _rule(stack: IotStack, admin: str, **rule: Any) -> None:
    body = {"channel": "email", "to": "ops@example.com", **rule}
    made = httpx.post(f"{stack.base}/v1/alert-rules", json=body, headers=auth(admin), timeout=10)
    assert made.status_code == 201, made.text


def _store(stack: IotStack, token: str, *readings: dict[str, Any]) -> None:
    accepted = send(stack.base, token, batch(*readings))
    assert accepted.status_code == 202, accepted.text
    url = f"{stack.base}/v1/telemetry/batches/{accepted.json()['id']}"

    def stored() -> bool:
        return bool(httpx.get(url, headers=auth(token), timeout=5).json()["status"] == "stored")

    wait_until(stored, timeout=60, what="the batch to be stored")


def _alerts(stack: IotStack, admin: str, device: str) -> list[tuple[str, str, Any]]:
    url = f"{stack.base}/v1/devices/{device}/alerts"
    events = httpx.get(url, headers=auth(admin), timeout=10).json()
    return [(e["rule"], e["kind"], e["duration"]) for e in reversed(events)]


def _restart(worker: Process, stack: IotStack, logs_dir: Path, name: str) -> Process:
    worker.kill()  # SIGKILL: nothing of it survives but what it committed
    worker.popen.wait(10)
    return start_worker(stack.settings, logs_dir, name=name)


def test_a_duration_alert_outlives_worker_restarts(
    stack: IotStack, admin: str, logs_dir: Path
) -> None:
    token = provision(stack.base, admin, device="d-1")
    _rule(stack, admin, id="hot-for", profile="thermo", metric="temp", set_at=30, clear_at=25,
          for_seconds=60)  # fmt: skip
    worker = start_worker(stack.settings, logs_dir, name="iot-first")
    try:
        at = [T0 + timedelta(seconds=s) for s in range(0, 181, 30)]
        _store(stack, token, reading("temp", at[0], 31.0), reading("temp", at[1], 32.0))
        worker = _restart(worker, stack, logs_dir, "iot-second")
        _store(stack, token, reading("temp", at[2], 33.0))  # 60 s since the remembered start
        assert _alerts(stack, admin, "d-1") == [("hot-for", "firing", None)]
        worker = _restart(worker, stack, logs_dir, "iot-third")
        _store(stack, token, reading("temp", at[3], 34.0), reading("temp", at[4], 35.0))
        assert _alerts(stack, admin, "d-1") == [("hot-for", "firing", None)]  # not again
        _store(stack, token, reading("temp", at[5], 24.0))
        assert _alerts(stack, admin, "d-1") == [
            ("hot-for", "firing", None),
            ("hot-for", "resolved", 90.0),
        ]
        assert count_rows(stack.settings, "notifications") == 2
    finally:
        worker.stop()


def test_beat_finds_a_silent_device_and_its_next_reading_resolves_it(
    stack: IotStack, admin: str, logs_dir: Path
) -> None:
    token = provision(stack.base, admin, device="p-1", profile=PULSE)
    _rule(stack, admin, id="silent", profile="pulse", kind="offline")
    worker = start_worker(stack.settings, logs_dir, name="iot-offline")
    try:
        # Silent since registration (the worker took a while to start) or since this reading:
        # either way beat finds it silent within seconds.
        _store(stack, token, reading("beat", datetime.now(UTC), 1.0))
        wait_until(
            lambda: _alerts(stack, admin, "p-1")[-1:] == [("silent", "firing", None)],
            timeout=60, what="the offline alert to fire",
        )  # fmt: skip
        _store(stack, token, reading("beat", datetime.now(UTC), 2.0))
        events = _alerts(stack, admin, "p-1")  # beat may have found it silent again since
        kinds = [kind for _, kind, _ in events]
        assert kinds == (["firing", "resolved"] * len(kinds))[: len(kinds)]  # never twice
        last = max(i for i, kind in enumerate(kinds) if kind == "resolved")
        assert events[last][2] >= 2.0  # silent at least K x 1 s
        with transaction(stack.settings) as s:  # one notification per transition
            assert s.execute(text(ONE_NOTIFICATION_EACH)).scalar_one() == 0
    finally:
        worker.stop()
