"""Roll-up tier and batch retention against the real PostgreSQL: each tier keeps its own
span, finished batches go after theirs (waiting ones stay), and a row someone holds is
skipped rather than waited for, so the fold and ingestion never queue behind retention."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from config import Settings, SettingsRefusedError
from store.db import autocommit, transaction
from tasks.iot import devices, retention
from tasks.iot.aggregate import Planner
from tasks.iot.settings import IotSettings
from tests.support.iot import make_profile
from tests.support.ledger import clean_tables

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
# 1 m kept 2 days, 1 h kept 5 days, 1 d kept 20 days, finished batches 2 days.
OWN = IotSettings(
    late_window=3_600, rollup_1m_days=2, rollup_1h_days=5, rollup_1d_days=20, batch_days=2
)
AGES = (1, 3, 6, 30)  # days
ROLLUP = text(
    "INSERT INTO iot_rollups (tier, device_id, metric, bucket, count, min, max, sum, last_ts,"
    " last) VALUES (:tier, 'a-1', 'temp', :bucket, 1, 1, 1, 1, :bucket, 1)"
)
BATCH = text(
    "INSERT INTO iot_batches (id, device_id, content_type, received_at, status, job_id)"
    " VALUES (:id, 'a-1', 'application/json', :at, :status, :id)"
)


@pytest.fixture
def aged(settings: Settings, clean_ledger: None) -> Iterator[None]:
    """A bucket of every tier, and a stored and a waiting batch, 1, 3, 6 and 30 days old."""
    make_profile(settings)
    with transaction(settings) as s:
        devices.create_device(s, device_id="a-1", profile_id="thermo")
        for days in AGES:
            at = NOW - timedelta(days=days)
            for tier in ("1m", "1h", "1d"):
                s.execute(ROLLUP, {"tier": tier, "bucket": at})
            for status in ("stored", "received"):
                s.execute(BATCH, {"id": uuid.uuid4(), "at": at, "status": status})
    yield
    clean_tables(settings, domain="iot")


def _left(settings: Settings) -> dict[str, list[int]]:
    with transaction(settings) as s:
        rows = s.execute(
            text(
                "SELECT tier, round(extract(epoch FROM now() - bucket) / 86400)::int AS days"
                " FROM iot_rollups UNION ALL SELECT status, round(extract(epoch FROM now()"
                " - received_at) / 86400)::int FROM iot_batches ORDER BY 1, 2"
            )
        ).all()
    left: dict[str, list[int]] = {}
    for kind, days in rows:
        left.setdefault(kind, []).append(days)
    return left


def test_each_tier_and_finished_batches_keep_their_own_span(settings: Settings, aged: None) -> None:
    with autocommit(settings) as s:
        removed = retention.upkeep(s, settings=OWN, now=NOW, limit=1)  # one row a statement
    assert removed == {"1m": 3, "1h": 2, "1d": 1, "batches": 3}
    assert _left(settings) == {
        "1m": [1],
        "1h": [1, 3],
        "1d": [1, 3, 6],
        "stored": [1],
        "received": [1, 3, 6, 30],  # still to be stored: never purged
    }


def test_a_held_row_is_skipped_not_waited_for(settings: Settings, aged: None) -> None:
    with transaction(settings) as holder:  # e.g. a fold that has the old bucket locked
        holder.execute(
            text("SELECT 1 FROM iot_rollups WHERE tier = '1m' AND bucket = :b FOR UPDATE"),
            {"b": NOW - timedelta(days=30)},
        )
        with autocommit(settings) as s:
            s.execute(text("SET lock_timeout = '2s'"))  # a wait would fail the test
            removed = retention.upkeep(s, settings=OWN, now=NOW)
        assert removed["1m"] == 2  # 3 and 6 days old; the held one waits for the next run
    assert _left(settings)["1m"] == [1, 30]
    with autocommit(settings) as s:
        assert retention.upkeep(s, settings=OWN, now=NOW)["1m"] == 1
    assert _left(settings)["1m"] == [1]


def test_a_tier_shorter_than_the_late_window_is_refused(settings: Settings) -> None:
    with pytest.raises(SettingsRefusedError, match="rollup_1m_days"):
        OWN.model_copy(update={"late_window": 2 * 86_400}).check(settings)
    with pytest.raises(SettingsRefusedError, match="rollup_1h_days"):
        OWN.model_copy(update={"late_window": 4.5 * 86_400, "rollup_1m_days": 5}).check(settings)


def test_aggregates_plan_around_what_retention_took() -> None:
    day = datetime(2026, 1, 10, tzinfo=UTC)
    start, end = day - timedelta(minutes=30), day + timedelta(days=1, minutes=30)
    full = list(Planner([]).cover(start, end))
    assert [p[0] for p in full] == ["1m", "1d", "1m"]
    # 1 m rows kept from 10 min past the day's end: the head's minutes come from raw.
    kept = {"1m": day + timedelta(days=1, minutes=10), "1h": day - timedelta(days=1)}
    cut = list(Planner([], kept).cover(start, end))
    assert cut == [
        ("raw", start, day),
        ("1d", day, day + timedelta(days=1)),
        ("raw", day + timedelta(days=1), day + timedelta(days=1, minutes=10)),
        ("1m", day + timedelta(days=1, minutes=10), end),
    ]
    assert retention.kept(OWN, now=NOW)["1h"] == NOW - timedelta(days=5)
