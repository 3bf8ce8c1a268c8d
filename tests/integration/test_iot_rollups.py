"""Roll-ups against the real PostgreSQL: after any mix of late, resent and conflicting
readings, folded at any points in between, every 1 min, 1 h and 1 d row equals a recompute
from raw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from config import Settings
from store.db import transaction
from tasks.iot import devices, rollups, service
from tests.support.iot import MEDIA_TYPE, batch, reading
from tests.support.ledger import clean_tables

NOW = datetime.now(UTC).replace(microsecond=0)
# Ninety minutes either side of yesterday's midnight: minutes, hours and days all have edges.
BASE = datetime.combine(NOW.date() - timedelta(days=1), datetime.min.time(), UTC) - timedelta(
    minutes=90
)
METRICS = {"temp": {"type": "number"}, "hum": {"type": "number"}}

RECOMPUTE = text("""
SELECT t.tier, device_id, metric, date_trunc(t.unit, ts, 'UTC') AS bucket, count(*),
  min(value_num), max(value_num), sum(value_num::numeric), max(ts),
  (array_agg(value_num ORDER BY ts DESC))[1]
FROM iot_readings,
  (VALUES ('1m', 'minute'), ('1h', 'hour'), ('1d', 'day')) AS t (tier, unit)
WHERE value_num IS NOT NULL
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
""")
STORED = text(
    "SELECT tier, device_id, metric, bucket, count, min, max, sum, last_ts, last"
    " FROM iot_rollups ORDER BY 1, 2, 3, 4"
)

reading_at = st.tuples(
    st.sampled_from(sorted(METRICS)),
    st.integers(0, 180 * 60 - 1),  # seconds after BASE
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
step = st.tuples(st.lists(reading_at, min_size=1, max_size=30), st.booleans())


def _fresh(settings: Settings) -> None:
    clean_tables(settings, domain="iot")
    with transaction(settings) as s:
        devices.create_profile(
            s,
            profile_id="free",
            metrics=METRICS,
            future_policy="refuse",
            late_window=None,
            future_skew=None,
        )
        devices.create_device(s, device_id="r-1", profile_id="free")


def _store(settings: Settings, readings: list[tuple[str, int, float]]) -> None:
    body = batch(*(reading(m, BASE + timedelta(seconds=t), v) for m, t, v in readings))
    with transaction(settings) as s:
        batch_id = service.receive(
            s, device_id="r-1", content_type=MEDIA_TYPE, body=body, received_at=NOW,
            settings=settings,
        ).id  # fmt: skip
    with transaction(settings) as s:
        service.ingest(s, batch_id, extra_parsers={}, settings=settings, now=NOW)


def _fold_all(settings: Settings) -> None:
    while True:
        with transaction(settings) as s:
            if rollups.fold(s, limit=7) == 0:
                return


def _rows(settings: Settings, query: Any) -> list[tuple[Any, ...]]:
    with transaction(settings) as s:
        return [tuple(r) for r in s.execute(query).all()]


@hsettings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=8))
def test_rollups_equal_a_recompute_from_raw_after_any_late_data(
    settings: Settings, clean_ledger: None, steps: list[tuple[list[tuple[str, int, float]], bool]]
) -> None:
    _fresh(settings)
    for readings, fold_now in steps:
        _store(settings, readings)
        if fold_now:
            with transaction(settings) as s:
                rollups.fold(s, limit=5)  # part of the log: the rest waits for the next fold
    _fold_all(settings)
    assert _rows(settings, STORED) == _rows(settings, RECOMPUTE)


def test_a_late_reading_refolds_its_minute_hour_and_day(
    settings: Settings, clean_ledger: None
) -> None:
    _fresh(settings)
    _store(settings, [("temp", 30, 1.0), ("temp", 90, 2.0)])
    _fold_all(settings)
    before = {r[0]: r[4:] for r in _rows(settings, STORED)}
    assert before["1d"] == (2, 1.0, 2.0, 3, BASE + timedelta(seconds=90), 2.0)
    _store(settings, [("temp", 31, 5.0), ("temp", 90, 9.0)])  # late, and a conflict
    _fold_all(settings)
    after = {(r[0], r[3]): r[4:] for r in _rows(settings, STORED)}
    minute = BASE.replace(second=0)
    assert after[("1m", minute)] == (2, 1.0, 5.0, 6, BASE + timedelta(seconds=31), 5.0)
    assert after[("1h", minute.replace(minute=0))][0] == 3
    assert _rows(settings, STORED) == _rows(settings, RECOMPUTE)
