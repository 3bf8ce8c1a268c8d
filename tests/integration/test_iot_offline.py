"""Offline detection against the real PostgreSQL and the real API: a device silent for K
expected intervals fires its profile's offline rule once, its next reading resolves it with
the silence's duration, and the maintenance flag (set over HTTP) suppresses it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from config import Settings
from devstack.processes import isolated
from store.db import transaction
from tasks.iot import devices, offline
from tasks.iot.settings import IotSettings
from tasks.notifications.models import Notification
from tests.support.api import auth, count_rows
from tests.support.iot import alert_events, batch, ingest, make_profile, make_rule, reading
from tests.support.ledger import clean_tables

NOW = datetime.now(UTC).replace(microsecond=0)
# temp is expected every 60 s; K = 3: silent for more than 180 s is offline.
K = 3.0


@pytest.fixture
def fleet(settings: Settings, clean_ledger: None) -> Iterator[Settings]:
    """Devices a-1 (last seen 10 min ago), b-2 (likewise) and c-3 (seen 1 min ago)."""
    own = isolated(settings, iot=IotSettings(offline_after=K))
    make_profile(own)
    with transaction(own) as s:
        for name in ("a-1", "b-2", "c-3"):
            devices.create_device(s, device_id=name, profile_id="thermo")
    make_rule(own, id="silent", profile="thermo", kind="offline")
    for name, ago in (("a-1", 600), ("b-2", 600), ("c-3", 60)):
        seen = NOW - timedelta(seconds=ago)
        ingest(own, name, batch(reading("temp", seen, 20.0)), now=seen)
    yield own
    clean_tables(settings, domain="iot")


def _sweep(settings: Settings, *, at: datetime = NOW) -> int:
    with transaction(settings) as s:
        return offline.sweep(s, settings=settings, now=at)


def test_a_silent_device_goes_offline_once_and_its_next_reading_resolves_it(
    fleet: Settings,
) -> None:
    with transaction(fleet) as s:
        devices.set_maintenance(s, "b-2", on=True)
    assert _sweep(fleet) == 1
    assert _sweep(fleet, at=NOW + timedelta(seconds=30)) == 0  # firing already: not again
    assert alert_events(fleet) == [("silent", "a-1", "firing", None, None)]
    back = NOW + timedelta(seconds=60)
    ingest(fleet, "a-1", batch(reading("temp", back, 21.0)), now=back)
    ingest(fleet, "a-1", batch(reading("temp", back + timedelta(seconds=1), 21.0)), now=back)
    assert alert_events(fleet)[1:] == [("silent", "a-1", "resolved", None, 660.0)]
    assert count_rows(fleet, "notifications") == 2
    with transaction(fleet) as s:
        bodies = s.scalars(select(Notification.body_text).order_by(Notification.created_at)).all()
    assert "a-1 offline, no reading since" in (bodies[0] or "")
    assert "back online (after 660s)" in (bodies[1] or "")
    # c-3 is offline once 180 s have passed since it was last seen, 1 min before NOW.
    assert _sweep(fleet, at=NOW + timedelta(seconds=119)) == 0
    assert _sweep(fleet, at=NOW + timedelta(seconds=121)) == 1
    assert [e[1] for e in alert_events(fleet)] == ["a-1", "a-1", "c-3"]


def test_maintenance_set_over_http_suppresses_the_offline_alert(
    fleet: Settings, api: str, make_key: Callable[..., str]
) -> None:
    admin = make_key("ops", ("iot:admin", "iot:read"))
    url = f"{api}/v1/devices/b-2"
    bad = httpx.patch(url, json={"maintenance": "soon"}, headers=auth(admin), timeout=10)
    assert bad.status_code == 422 and bad.json()["field"] == "maintenance"
    missing = httpx.patch(f"{url}x", json={"maintenance": True}, headers=auth(admin), timeout=10)
    assert missing.status_code == 404
    reader = make_key("viewer", ("iot:read",))
    denied = httpx.patch(url, json={"maintenance": True}, headers=auth(reader), timeout=10)
    assert denied.status_code == 403
    on = httpx.patch(url, json={"maintenance": True}, headers=auth(admin), timeout=10)
    assert on.status_code == 200 and on.json()["maintenance"] is True
    assert _sweep(fleet) == 1  # a-1 only
    assert [e[1] for e in alert_events(fleet)] == ["a-1"]
    off = httpx.patch(url, json={"maintenance": False}, headers=auth(admin), timeout=10)
    assert off.json()["maintenance"] is False
    assert _sweep(fleet) == 1
    assert [e[1] for e in alert_events(fleet)] == ["a-1", "b-2"]
