"""B-iot-derived, its aggregate part: one metric's count, min, max, sum, avg and last over a
day, answered by `tasks.iot.aggregate` (from the folded roll-ups) against the same aggregate
computed straight from the raw readings. Each round, interleaved, runs both `--queries` times;
every answer must be identical. Medians are compared; the target is 20x.

The day holds `--series` device metrics of one reading every `--every` seconds; the one asked
about (`b-1`) has each of its minutes folded into the roll-ups by `rollups.fold`, as beat does.

    python -m bench.iot_aggregate [--series 10] [--every 1] [--rounds 5] [--queries 20]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench.common import Series, bench_env, machine, progress
from config import Settings
from store.db import snapshot, transaction
from tasks.iot import devices, partitions, rollups
from tasks.iot.aggregate import aggregate

TARGET = 20.0
DAY = datetime.combine(datetime.now(UTC).date() - timedelta(days=2), datetime.min.time(), UTC)
SEED = text("""
INSERT INTO iot_readings (device_id, metric, ts, received_at, value_num, batch_id, idx)
SELECT 'b-' || d, 'temp', ts, ts,
  round((20 + 5 * sin(extract(epoch FROM ts) / 3600 + d))::numeric, 3), gen_random_uuid(), 0
FROM generate_series(1, :series) AS d,
  generate_series(CAST(:day AS timestamptz), CAST(:day AS timestamptz) + interval '1 day'
                  - interval '1 microsecond', make_interval(secs => :every)) AS ts
""")
DIRTY = text("""
INSERT INTO iot_rollup_dirty (device_id, metric, bucket)
SELECT DISTINCT device_id, metric, date_trunc('minute', ts, 'UTC') FROM iot_readings
WHERE device_id = 'b-1'
""")
RAW = text("""
SELECT count(*) AS count, min(value_num) AS min, max(value_num) AS max,
  sum(value_num::numeric)::float8 AS sum, avg(value_num::numeric)::float8 AS avg,
  (array_agg(value_num ORDER BY ts DESC))[1] AS last, max(ts) AS last_ts
FROM iot_readings WHERE device_id = 'b-1' AND metric = 'temp'
  AND ts >= :since AND ts < :until AND value_num IS NOT NULL
""")


def _seed(settings: Settings, series: int, every: float) -> int:
    with transaction(settings) as s:
        devices.create_profile(
            s, profile_id="bench", metrics={"temp": {"type": "number"}}, future_policy="refuse",
            late_window=None, future_skew=None,
        )  # fmt: skip
        for d in range(1, series + 1):
            devices.create_device(s, device_id=f"b-{d}", profile_id="bench")
        partitions.ensure(s, {DAY.date()})
        s.execute(SEED, {"series": series, "day": DAY, "every": every})
        rows = int(s.execute(text("SELECT count(*) FROM iot_readings")).scalar_one())
        s.execute(DIRTY)
    while True:
        with transaction(settings) as s:
            if rollups.fold(s) == 0:
                return rows


def _raw(settings: Settings) -> tuple[Any, ...]:
    with transaction(settings) as s:
        return tuple(s.execute(RAW, {"since": DAY, "until": DAY + timedelta(days=1)}).one())


def _rolled(settings: Settings) -> tuple[Any, ...]:
    with snapshot(settings) as s:
        (bucket,) = aggregate(
            s, "b-1", metric="temp", since=DAY, until=DAY + timedelta(days=1), every=None,
            fill="none",
        )  # fmt: skip
    return (bucket.count, bucket.min, bucket.max, bucket.sum, bucket.avg, bucket.last,
            bucket.last_ts)  # fmt: skip


def _timed(answer: Any, settings: Settings, queries: int, expected: tuple[Any, ...]) -> float:
    start = time.perf_counter()
    for _ in range(queries):
        assert answer(settings) == expected
    return queries / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print medians and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot_aggregate", description=__doc__)
    parser.add_argument("--series", type=int, default=10, help="device metrics in the day")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between readings")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--queries", type=int, default=20, help="answers per contender per round")
    args = parser.parse_args(argv)
    raw = Series("a day's aggregate from raw")
    ours = Series("tasks.iot.aggregate (roll-ups)")
    with bench_env("iotagg") as env:
        rows = _seed(env.settings, args.series, args.every)
        progress(f"seeded and folded {rows} readings")
        expected = _raw(env.settings)
        assert _rolled(env.settings) == expected, (_rolled(env.settings), expected)
        for n in range(1, args.rounds + 1):
            raw.values.append(_timed(_raw, env.settings, args.queries, expected))
            ours.values.append(_timed(_rolled, env.settings, args.queries, expected))
            progress(f"round {n}/{args.rounds}: raw {raw.values[-1]:.1f}/s, "
                     f"ours {ours.values[-1]:.1f}/s")  # fmt: skip
    per_series = rows // args.series
    print(f"B-iot-derived (aggregate): a day of {per_series} readings of one series among "
          f"{args.series}, {args.rounds} rounds ({machine()})")  # fmt: skip
    print(raw.row())
    print(ours.row(raw))
    ratio = ours.median / raw.median if raw.median else 0.0
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  answers identical; ratio {ratio:.1f}x — {verdict} the target of {TARGET:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
