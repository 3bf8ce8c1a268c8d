"""Aggregates against the real PostgreSQL: over any interval and bucket width, folded or not,
the answer (roll-up tiers where they cover a bucket, raw elsewhere) equals a recompute from
raw; gap-fill leaves out, nulls or carries forward empty buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import text

from config import Settings
from store.db import snapshot, transaction
from tasks.iot import devices, rollups
from tasks.iot.aggregate import Bucket, Fill, Planner, aggregate, buckets
from tests.support.iot import batch, ingest, reading
from tests.support.ledger import clean_tables

NOW = datetime.now(UTC).replace(microsecond=0)
# Two hours before the midnight three days ago, for 52 h: two day edges, many hour edges.
BASE = datetime.combine(NOW.date() - timedelta(days=3), datetime.min.time(), UTC) - timedelta(
    hours=2
)
WINDOW_MS = 52 * 3_600_000

RECOMPUTE = text("""
SELECT b.i, count(r.ts) AS count, min(r.value_num) AS min, max(r.value_num) AS max,
  sum(r.value_num::numeric)::float8 AS sum, avg(r.value_num::numeric)::float8 AS avg,
  (array_agg(r.value_num ORDER BY r.ts DESC))[1] AS last, max(r.ts) AS last_ts
FROM unnest(CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
  WITH ORDINALITY AS b (start_at, end_at, i)
JOIN iot_readings r ON r.device_id = 'q-1' AND r.metric = 'temp'
  AND r.ts >= b.start_at AND r.ts < b.end_at AND r.value_num IS NOT NULL
GROUP BY b.i ORDER BY b.i
""")


def _fresh(settings: Settings) -> None:
    clean_tables(settings, domain="iot")
    with transaction(settings) as s:
        devices.create_profile(
            s,
            profile_id="free",
            metrics={"temp": {"type": "number"}, "hum": {"type": "number"}},
            future_policy="refuse",
            late_window=None,
            future_skew=None,
        )
        devices.create_device(s, device_id="q-1", profile_id="free")


def _at(ms: int) -> datetime:
    return BASE + timedelta(milliseconds=ms)


def _store(settings: Settings, readings: list[tuple[str, int, float]]) -> None:
    body = batch(*(reading(m, _at(ms), v) for m, ms, v in readings))
    assert ingest(settings, "q-1", body, now=NOW)["status"] == "stored"


def _answer(
    settings: Settings, since: datetime, until: datetime, every: timedelta | None, fill: Fill
) -> list[Bucket]:
    with snapshot(settings) as s:
        return aggregate(s, "q-1", metric="temp", since=since, until=until, every=every, fill=fill)


def _recompute(
    settings: Settings, since: datetime, until: datetime, every: timedelta | None
) -> list[tuple[Any, ...]]:
    edges = buckets(since, until, every)
    with transaction(settings) as s:
        rows = s.execute(RECOMPUTE, {"starts": edges[:-1], "ends": edges[1:]}).all()
    return [(edges[r.i - 1], edges[r.i], *tuple(r)[1:]) for r in rows]


def _seen(answer: list[Bucket]) -> list[tuple[Any, ...]]:
    return [
        (b.start, b.end, b.count, b.min, b.max, b.sum, b.avg, b.last, b.last_ts) for b in answer
    ]


offset = st.one_of(
    st.integers(0, WINDOW_MS),  # anywhere
    st.integers(0, 52).map(lambda h: h * 3_600_000 + 999),  # just past an hour's start
    st.integers(0, 52).map(lambda h: h * 3_600_000 - 1),  # an hour's last millisecond
)
reading_at = st.tuples(
    st.sampled_from(["temp", "hum"]), offset, st.floats(-1e6, 1e6, allow_nan=False)
)
step = st.tuples(st.lists(reading_at, min_size=1, max_size=30), st.integers(0, 3))
question = st.tuples(
    offset,
    st.integers(1, WINDOW_MS),
    st.one_of(st.none(), st.sampled_from([1, 59, 60, 61, 3_600, 5_400, 86_400, 90_000])),
)


@hsettings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=6), questions=st.lists(question, max_size=4))
def test_an_aggregate_equals_a_recompute_from_raw_folded_or_not(
    settings: Settings,
    clean_ledger: None,
    steps: list[tuple[list[tuple[str, int, float]], int]],
    questions: list[tuple[int, int, int | None]],
) -> None:
    _fresh(settings)
    for readings, folds in steps:
        _store(settings, readings)
        for _ in range(folds):  # some of the log, or all of it, or none: dirty minutes stay
            with transaction(settings) as s:
                rollups.fold(s, limit=3)
    day = datetime.combine(NOW.date() - timedelta(days=1), datetime.min.time(), UTC)
    whole = [(0, WINDOW_MS, None), (0, WINDOW_MS, 3_600)]
    for start, length, every in [*questions, *whole]:
        since, until = _at(start), _at(start + length)
        step_ = None if every is None else timedelta(seconds=every)
        if step_ is not None and (until - since) / step_ > 2_000:
            continue  # a bigger answer than this test needs
        expected = _recompute(settings, since, until, step_)
        assert _seen(_answer(settings, since, until, step_, "none")) == expected
    # The whole day before today, answered again once every minute is folded (from `1d`).
    while True:
        with transaction(settings) as s:
            if rollups.fold(s) == 0:
                break
    expected = _recompute(settings, day - timedelta(days=1), day, None)
    assert _seen(_answer(settings, day - timedelta(days=1), day, None, "none")) == expected


def test_a_folded_day_comes_from_its_day_row_and_a_dirty_minute_from_raw() -> None:
    day = datetime(2026, 1, 2, tzinfo=UTC)
    clean = list(Planner([]).cover(day - timedelta(seconds=30), day + timedelta(days=1)))
    assert clean == [
        ("raw", day - timedelta(seconds=30), day),
        ("1d", day, day + timedelta(days=1)),
    ]
    dirty = day + timedelta(hours=5, minutes=7)
    cut = list(Planner([dirty]).cover(day, day + timedelta(days=1)))
    assert cut == [
        ("1h", day, day + timedelta(hours=5)),
        ("1m", day + timedelta(hours=5), dirty),
        ("raw", dirty, dirty + timedelta(minutes=1)),
        ("1m", dirty + timedelta(minutes=1), day + timedelta(hours=6)),
        ("1h", day + timedelta(hours=6), day + timedelta(days=1)),
    ]


def test_gap_fill_leaves_out_nulls_or_carries_the_last_value_forward(
    settings: Settings, clean_ledger: None
) -> None:
    _fresh(settings)
    minute = 60_000
    _store(settings, [("temp", 0, 1.0), ("temp", 2 * minute + 5, 3.0), ("temp", 5 * minute, 9.0)])
    since, until, every = _at(minute), _at(5 * minute), timedelta(minutes=1)
    kept = _answer(settings, since, until, every, "none")
    assert [(b.start, b.count, b.last) for b in kept] == [(_at(2 * minute), 1, 3.0)]
    nulls = _answer(settings, since, until, every, "null")
    assert [(b.count, b.avg, b.last) for b in nulls] == [
        (0, None, None), (1, 3.0, 3.0), (0, None, None), (0, None, None),
    ]  # fmt: skip
    carried = _answer(settings, since, until, every, "previous")
    assert [(b.count, b.avg, b.last, b.last_ts) for b in carried] == [
        (0, None, 1.0, _at(0)),  # from the reading before `since`
        (1, 3.0, 3.0, _at(2 * minute + 5)),
        (0, None, 3.0, _at(2 * minute + 5)),
        (0, None, 3.0, _at(2 * minute + 5)),
    ]
