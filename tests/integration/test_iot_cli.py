"""`switchyard iot devices|lag|alerts` against the run's ledger, as subprocesses."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from config import Settings
from devstack.processes import settings_env, switchyard
from store.db import transaction
from tasks.iot import devices, service
from tests.support.iot import MEDIA_TYPE, PROFILE, batch, ingest, make_rule, reading
from tests.support.ledger import clean_tables


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        switchyard("iot", *args), env=settings_env(settings), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture
def fleet(settings: Settings, clean_ledger: None) -> Iterator[datetime]:
    """Two devices: one with a stored batch, one with a batch waiting; revoked one credential."""
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    with transaction(settings) as s:
        devices.create_profile(
            s,
            profile_id="thermo",
            metrics=PROFILE["metrics"],
            future_policy="refuse",
            late_window=None,
            future_skew=None,
        )
        for name in ("a-1", "b-2"):
            devices.create_device(s, device_id=name, profile_id="thermo")
        devices.revoke(s, "b-2")
        stored, _ = (
            service.receive(
                s,
                device_id=d,
                content_type=MEDIA_TYPE,
                body=batch(reading("temp", ts, 1.0)),
                received_at=ts,
                settings=settings,
            )
            for d in ("a-1", "b-2")
        )
    with transaction(settings) as s:
        service.ingest(s, stored.id, extra_parsers={}, settings=settings, now=ts)
    yield ts
    clean_tables(settings, domain="iot")


def test_devices_lists_the_fleet_and_lag_the_waiting_batches(
    settings: Settings, fleet: datetime
) -> None:
    shown = cli(settings, "devices", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["device"]: r for r in json.loads(shown.stdout)}
    assert (rows["a-1"]["credential"], rows["a-1"]["waiting_batches"]) == ("active", 0)
    assert datetime.fromisoformat(rows["a-1"]["last_reading"]) == fleet
    assert (rows["b-2"]["credential"], rows["b-2"]["waiting_batches"]) == ("revoked", 1)
    assert rows["b-2"]["last_reading"] is None
    lag = json.loads(cli(settings, "lag", "--json").stdout)
    assert lag["waiting_batches"] == 1 and lag["oldest_waiting_seconds"] >= 50
    people = cli(settings, "devices")
    assert people.returncode == 0 and "a-1" in people.stdout


def test_alerts_lists_what_fires_and_the_recent_transitions(
    settings: Settings, fleet: datetime
) -> None:
    make_rule(settings, id="warm", profile="thermo", metric="temp", set_at=30, clear_at=25)
    t = fleet - timedelta(minutes=5)
    temps = ((0, 31.0), (10, 24.0), (20, 35.0))  # fires, resolves after 10 s, fires again
    body = batch(*(reading("temp", t + timedelta(seconds=s), v) for s, v in temps))
    ingest(settings, "a-1", body, now=fleet)
    shown = cli(settings, "alerts", "--json", "--recent", "2")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert [(r["rule"], r["device"], r["kind"], r["metric"]) for r in report["firing"]] == [
        ("warm", "a-1", "threshold", "temp")
    ]
    assert datetime.fromisoformat(report["firing"][0]["since"]) == t + timedelta(seconds=20)
    assert [(r["transition"], r["value"], r["duration"]) for r in report["recent"]] == [
        ("firing", 35.0, None),
        ("resolved", 24.0, 10.0),
    ]
    people = cli(settings, "alerts")
    assert people.returncode == 0, people.stderr
    assert "firing" in people.stdout and "recent transitions" in people.stdout
    assert "warm" in people.stdout and "resolved" in people.stdout
