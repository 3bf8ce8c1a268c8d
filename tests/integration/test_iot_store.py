"""The IoT store against the real PostgreSQL: each key stored once, resends counted as
duplicates, other values as conflicts, the latest value only moving forward, the time policy,
and daily partitions made and dropped."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from config import Settings, SettingsRefusedError
from devstack.processes import wait_until
from store.db import autocommit, transaction
from tasks.iot import devices, partitions, service
from tasks.iot.models import Batch, Conflict, Latest
from tasks.iot.settings import IotSettings
from tests.support.iot import MEDIA_TYPE, PROFILE, batch, reading
from tests.support.ledger import clean_tables

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def device(settings: Settings, clean_ledger: None) -> Iterator[str]:
    """A device of the test profile (and one of a clamping profile: `<id>-clamp`)."""
    with transaction(settings) as session:
        for profile_id, policy in (("thermo", "refuse"), ("thermo-clamp", "clamp")):
            devices.create_profile(
                session,
                profile_id=profile_id,
                metrics=PROFILE["metrics"],
                future_policy=policy,
                late_window=3_600.0,
                future_skew=60.0,
            )
        devices.create_device(session, device_id="d1", profile_id="thermo")
        devices.create_device(session, device_id="d1-clamp", profile_id="thermo-clamp")
    yield "d1"
    clean_tables(settings, domain="iot")


def _received(settings: Settings, device: str, body: bytes) -> uuid.UUID:
    with transaction(settings) as session:
        return service.receive(
            session,
            device_id=device,
            content_type=MEDIA_TYPE,
            body=body,
            received_at=NOW,
            settings=settings,
        ).id


def _ingest(settings: Settings, device: str, body: bytes) -> dict[str, Any]:
    batch_id = _received(settings, device, body)
    with transaction(settings) as session:
        return service.ingest(session, batch_id, extra_parsers={}, settings=settings, now=NOW)


def _rows(settings: Settings, device: str) -> list[tuple[str, datetime, Any]]:
    with transaction(settings) as session:
        rows = session.execute(
            text(
                "SELECT metric, ts, coalesce(to_jsonb(value_num), to_jsonb(value_text), "
                "to_jsonb(value_bool)) AS v FROM iot_readings WHERE device_id = :d ORDER BY 1, 2"
            ),
            {"d": device},
        ).all()
    return [(r.metric, r.ts, r.v) for r in rows]


def _refusals(settings: Settings, batch_id: str) -> list[dict[str, Any]]:
    with transaction(settings) as session:
        return session.get_one(Batch, uuid.UUID(batch_id)).refusals


def test_invalid_readings_are_refused_one_by_one_and_the_rest_is_stored(
    settings: Settings, device: str
) -> None:
    t = NOW - timedelta(minutes=5)
    done = _ingest(
        settings,
        device,
        batch(
            reading("temp", t, 21.5, unit="Cel"),
            reading("temp", t + timedelta(seconds=1), 999),  # above max
            reading("humidity", t, 40),  # not in the profile
            {"metric": "temp"},  # no value: the parser refuses it
            reading("door", t, True),
            reading("door", t + timedelta(seconds=1), "open"),  # not a boolean
            reading("temp", t + timedelta(seconds=2), 20, unit="K"),
            reading("temp", t + timedelta(seconds=3), 20, device="d2"),
            reading("mode", t, "eco"),
            reading("mode", t + timedelta(seconds=1), "x" * 5_000),  # too long
        ),
    )
    assert done | {"batch_id": None} == {
        "batch_id": None,
        "status": "stored",
        "readings": 10,
        "stored": 3,
        "duplicates": 0,
        "conflicts": 0,
        "clamped": 0,
        "refused": 7,
    }
    codes = [(r["index"], r["code"], r["field"]) for r in _refusals(settings, done["batch_id"])]
    assert codes == [
        (1, "out_of_range", "value"),
        (2, "unknown_metric", "metric"),
        (3, "missing_field", "value"),
        (5, "wrong_type", "value"),
        (6, "wrong_unit", "unit"),
        (7, "foreign_device", "device"),
        (9, "invalid_value", "value"),
    ]
    assert _rows(settings, device) == [("door", t, True), ("mode", t, "eco"), ("temp", t, 21.5)]


def test_a_resend_is_a_duplicate_and_another_value_a_conflict_both_stored_once(
    settings: Settings, device: str
) -> None:
    t = NOW - timedelta(minutes=10)
    first = batch(reading("temp", t, 20.0), reading("temp", t + timedelta(seconds=60), 21.0))
    assert _ingest(settings, device, first)["stored"] == 2
    again = _ingest(settings, device, first)
    assert (again["stored"], again["duplicates"], again["conflicts"]) == (0, 2, 0)
    changed = _ingest(
        settings,
        device,
        batch(
            reading("temp", t, 20.0),
            reading("temp", t + timedelta(seconds=60), 25.0),
            reading("temp", t + timedelta(seconds=120), 22.0),
            reading("temp", t + timedelta(seconds=120), 22.0),  # twice in one batch
            reading("temp", t + timedelta(seconds=120), 23.0),  # and once otherwise
        ),
    )
    assert (changed["stored"], changed["duplicates"], changed["conflicts"]) == (1, 2, 2)
    assert [v for _, _, v in _rows(settings, device)] == [20.0, 21.0, 22.0]
    with transaction(settings) as session:
        conflicts = list(session.scalars(select(Conflict).order_by(Conflict.idx)))
    assert [(c.idx, c.stored["value"], c.offered["value"]) for c in conflicts] == [
        (1, 21.0, 25.0),
        (4, 22.0, 23.0),
    ]


def test_the_latest_value_only_moves_forward_in_event_time(settings: Settings, device: str) -> None:
    t = NOW - timedelta(minutes=30)
    _ingest(settings, device, batch(reading("temp", t, 1.0), reading("temp", t, 2.0)))
    _ingest(settings, device, batch(reading("temp", t + timedelta(minutes=5), 5.0)))
    _ingest(settings, device, batch(reading("temp", t - timedelta(minutes=5), 9.0)))  # late
    with transaction(settings) as session:
        latest = session.get_one(Latest, ("d1", "temp"))
    assert (latest.ts, latest.value_num, latest.received_at) == (t + timedelta(minutes=5), 5.0, NOW)


def test_the_time_policy_refuses_too_late_and_refuses_or_clamps_the_future(
    settings: Settings, device: str
) -> None:
    body = batch(
        reading("temp", NOW - timedelta(minutes=59), 1.0),  # late, inside the hour's window
        reading("temp", NOW - timedelta(minutes=61), 2.0),  # outside it
        reading("temp", NOW + timedelta(seconds=59), 3.0),  # inside the skew
        reading("temp", NOW + timedelta(minutes=5), 4.0),  # beyond it
    )
    refused = _ingest(settings, device, body)
    codes = [(r["index"], r["code"]) for r in _refusals(settings, refused["batch_id"])]
    assert codes == [(1, "too_late"), (3, "in_future")]
    clamped = _ingest(settings, "d1-clamp", body)
    assert (clamped["stored"], clamped["clamped"], clamped["refused"]) == (3, 1, 1)
    assert ("temp", NOW, 4.0) in _rows(settings, "d1-clamp")


def test_partitions_are_made_on_demand_and_dropped_whole(settings: Settings, device: str) -> None:
    old = date(2001, 2, 3)
    with transaction(settings) as session:
        assert partitions.ensure(session, {old, old + timedelta(days=1)}) == [
            old,
            old + timedelta(days=1),
        ]
        assert partitions.ensure(session, {old}) == []
    with autocommit(settings) as session:
        assert partitions.drop_expired(session, before=old + timedelta(days=1)) == [old]
        assert partitions.drop_expired(session, before=old + timedelta(days=2)) == [
            old + timedelta(days=1)
        ]
        left = partitions.attached(session).days
    assert old not in left and old + timedelta(days=1) not in left


def test_retention_shorter_than_the_late_window_is_refused(settings: Settings) -> None:
    own = settings.model_copy(update={"iot": IotSettings(retention_days=1)})
    with pytest.raises(SettingsRefusedError, match="retention_days"):
        own.section(IotSettings).check(own)


def _in_2031(days: list[str]) -> list[str]:
    # Other tests' partitions (today's) are past retention in 2031 too.
    return [d for d in days if d.startswith("2031")]


def test_upkeep_covers_the_late_window_and_days_ahead_and_drops_past_retention(
    settings: Settings, device: str
) -> None:
    own = IotSettings(late_window=2 * 86_400, retention_days=3, partitions_ahead=2)
    now = datetime(2031, 5, 10, 12, tzinfo=UTC)
    with transaction(settings) as session, autocommit(settings) as loose:
        first = partitions.upkeep(session, loose, settings=own, now=now)
    assert first["created"] == [f"2031-05-{d:02}" for d in range(8, 13)]
    with transaction(settings) as session, autocommit(settings) as loose:
        again = partitions.upkeep(session, loose, settings=own, now=now)
    assert again == {"created": [], "dropped": []}
    later = now + timedelta(days=2)  # keeps 05-09 (three days before) on
    with transaction(settings) as session, autocommit(settings) as loose:
        second = partitions.upkeep(session, loose, settings=own, now=later)
    with autocommit(settings) as loose:
        days = partitions.attached(loose).days
    assert second == {"created": ["2031-05-13", "2031-05-14"], "dropped": ["2031-05-08"]}
    assert {date(2031, 5, d) for d in range(9, 15)} <= days
    with transaction(settings) as session, autocommit(settings) as loose:
        third = partitions.upkeep(session, loose, settings=own, now=later + timedelta(days=1))
    assert _in_2031(third["dropped"]) == ["2031-05-09"]


def _detach_waiting(settings: Settings) -> bool:
    with transaction(settings) as session:
        return bool(
            session.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND state = 'active' AND wait_event_type IS NOT NULL"
                    " AND query LIKE 'ALTER TABLE iot_readings DETACH PARTITION%'"
                )
            ).scalar_one()
        )


def test_retention_drops_a_partition_while_ingestion_goes_on(
    settings: Settings, device: str
) -> None:
    """The detach waits for the ingestion in flight; ingestion never waits for the detach (a
    plain DETACH would lock the readings table and queue every batch behind it)."""
    old = date(2001, 2, 3)
    with transaction(settings) as session:  # today's too: a batch creating one waits for another
        partitions.ensure(session, {old, NOW.date()})
    # Another device in flight: batches of one device take turns on its latest-value rows.
    first = _received(settings, f"{device}-clamp", batch(reading("temp", NOW, 1.0)))
    second = _received(settings, device, batch(reading("temp", NOW - timedelta(minutes=2), 2.0)))
    in_flight, release = threading.Event(), threading.Event()
    dropped: list[date] = []

    def ingest(batch_id: uuid.UUID, *, hold: bool) -> None:
        with transaction(settings) as session:
            service.ingest(session, batch_id, extra_parsers={}, settings=settings, now=NOW)
            if hold:
                in_flight.set()
                release.wait(30)

    def retention() -> None:
        with autocommit(settings) as session:
            dropped.extend(partitions.drop_expired(session, before=old + timedelta(days=1)))

    holder = threading.Thread(target=ingest, args=(first,), kwargs={"hold": True})
    holder.start()
    assert in_flight.wait(10)
    dropper = threading.Thread(target=retention)
    dropper.start()
    try:
        wait_until(lambda: _detach_waiting(settings), timeout=10, what="the detach to wait")
        during = threading.Thread(target=ingest, args=(second,), kwargs={"hold": False})
        during.start()
        during.join(10)
        assert not during.is_alive(), "a batch waited for the retention's detach"
        assert dropper.is_alive()  # still waiting for the batch in flight
    finally:
        release.set()
        holder.join(10)
        dropper.join(30)
    assert dropped == [old]
    assert [v for _, _, v in _rows(settings, device)] == [2.0]
    assert [v for _, _, v in _rows(settings, f"{device}-clamp")] == [1.0]
    with autocommit(settings) as session:
        assert old not in partitions.attached(session).days | partitions.attached(session).pending
