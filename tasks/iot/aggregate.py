"""Aggregates of a numeric metric over any interval, in buckets of any width, each bucket
answered from the coarsest roll-up rows that cover it exactly and from raw readings for the
rest, so that every answer equals a recompute from raw.

A bucket `[start, end)` is cut into aligned runs: whole UTC days from `1d`, whole hours around
them from `1h`, whole minutes from `1m`, and the sub-minute edges from raw. A roll-up row is
only as fresh as the last fold: a minute in `iot_rollup_dirty` (a stored batch touched it, beat
has not folded it yet) makes its minute, hour and day stale, so those are cut finer, down to
raw for the dirty minute itself (the unrolled tail). The dirty minutes and the rows are read in
one snapshot, so no fold or batch can slip in between.

Empty buckets are left out (`fill="none"`), answered with nulls (`"null"`), or carry the last
value (and its time) forward from the bucket before, or from the last reading before `since`
(`"previous"`).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.orm import Session

Fill = Literal["none", "null", "previous"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Coarsest first: each tier's width and the name of its rows.
TIERS = (("1d", timedelta(days=1)), ("1h", timedelta(hours=1)), ("1m", timedelta(minutes=1)))

DIRTY = text("""
SELECT bucket FROM iot_rollup_dirty
WHERE device_id = :device AND metric = :metric AND bucket >= :since AND bucket < :until
ORDER BY bucket
""")
# Every piece is a run of one tier's rows (`bucket` in `[start_at, end_at)`) or of raw readings
# (`ts` in it); the pieces of one answer bucket are combined as the roll-ups combine tiers.
PIECES = text("""
WITH piece AS (
  SELECT * FROM unnest(CAST(:bucket AS int[]), CAST(:source AS text[]),
    CAST(:start_at AS timestamptz[]), CAST(:end_at AS timestamptz[]))
    AS p (bucket, source, start_at, end_at)
), part AS (
  SELECT p.bucket, u.count, u.min, u.max, u.sum, u.last, u.last_ts
  FROM piece p JOIN iot_rollups u ON u.tier = p.source AND u.device_id = :device
    AND u.metric = :metric AND u.bucket >= p.start_at AND u.bucket < p.end_at
  UNION ALL
  SELECT p.bucket, count(*), min(r.value_num), max(r.value_num), sum(r.value_num::numeric),
    (array_agg(r.value_num ORDER BY r.ts DESC))[1], max(r.ts)
  FROM piece p JOIN iot_readings r ON r.device_id = :device AND r.metric = :metric
    AND r.ts >= p.start_at AND r.ts < p.end_at AND r.value_num IS NOT NULL
  WHERE p.source = 'raw'
  GROUP BY p.bucket
)
SELECT bucket, sum(count)::bigint AS count, min(min) AS min, max(max) AS max,
  sum(sum)::float8 AS sum, (sum(sum) / sum(count))::float8 AS avg,
  (array_agg(last ORDER BY last_ts DESC))[1] AS last, max(last_ts) AS last_ts
FROM part GROUP BY bucket ORDER BY bucket
""")
BEFORE = text("""
SELECT value_num, ts FROM iot_readings
WHERE device_id = :device AND metric = :metric AND ts < :since AND value_num IS NOT NULL
ORDER BY ts DESC LIMIT 1
""")


class Bucket(BaseModel):
    """One bucket `[start, end)` of an aggregate; an empty one has count 0 and nulls (or, when
    carried forward, the last value before it)."""

    start: datetime
    end: datetime
    count: int
    min: float | None
    max: float | None
    sum: float | None
    avg: float | None
    last: float | None
    last_ts: datetime | None


def _floor(t: datetime, width: timedelta) -> datetime:
    return EPOCH + (t - EPOCH) // width * width


def _ceil(t: datetime, width: timedelta) -> datetime:
    down = _floor(t, width)
    return down if down == t else down + width


class Planner:
    """Cuts buckets into runs of roll-up tiers and raw, around the dirty minutes, and before
    the oldest bucket each tier still keeps (`kept`, from its retention)."""

    def __init__(self, dirty: list[datetime], kept: Mapping[str, datetime] | None = None) -> None:
        self.dirty = dirty  # sorted minute buckets not yet folded
        self.kept = kept or {}

    def _stale(self, start: datetime, end: datetime, width: timedelta) -> list[datetime]:
        low, high = bisect.bisect_left(self.dirty, start), bisect.bisect_left(self.dirty, end)
        return sorted({_floor(m, width) for m in self.dirty[low:high]})

    def cover(
        self, start: datetime, end: datetime, level: int = 0
    ) -> Iterator[tuple[str, datetime, datetime]]:
        """`(source, start, end)` runs that together cover `[start, end)` exactly once."""
        if start >= end:
            return
        if level == len(TIERS):
            yield "raw", start, end
            return
        tier, width = TIERS[level]
        horizon = self.kept.get(tier)
        if horizon is not None and start < horizon:  # retention took this tier's older rows
            cut = min(end, _ceil(horizon, width))
            yield from self.cover(start, cut, level + 1)
            if cut == end:
                return
            start = cut
        first, last = _ceil(start, width), _floor(end, width)
        if first >= last:
            yield from self.cover(start, end, level + 1)
            return
        yield from self.cover(start, first, level + 1)
        run = first
        for unit in self._stale(first, last, width):
            if run < unit:
                yield tier, run, unit
            yield from self.cover(unit, unit + width, level + 1)
            run = unit + width
        if run < last:
            yield tier, run, last
        yield from self.cover(last, end, level + 1)


def buckets(since: datetime, until: datetime, every: timedelta | None) -> list[datetime]:
    """The bucket starts: every `every` from `since` (one bucket if None), and `until`."""
    step = every or until - since
    count = -(-(until - since) // step)
    return [since + i * step for i in range(count)] + [until]


def aggregate(
    session: Session,
    device: str,
    *,
    metric: str,
    since: datetime,
    until: datetime,
    every: timedelta | None,
    fill: Fill,
    kept: Mapping[str, datetime] | None = None,
) -> list[Bucket]:
    """The metric's count, min, max, sum, avg and last in each bucket of `[since, until)`.

    `session` must see one snapshot throughout (`store.db.snapshot`); `kept` is each tier's
    oldest bucket retention leaves (`retention.kept`)."""
    key = {"device": device, "metric": metric}
    dirty = list(session.scalars(DIRTY, {**key, "since": since, "until": until}))
    plan = Planner(dirty, kept)
    edges = buckets(since, until, every)
    pieces = [
        (i, source, start, end)
        for i in range(len(edges) - 1)
        for source, start, end in plan.cover(edges[i], edges[i + 1])
    ]
    names = ("bucket", "source", "start_at", "end_at")
    columns = {name: [piece[n] for piece in pieces] for n, name in enumerate(names)}
    found = {r.bucket: r for r in session.execute(PIECES, {**key, **columns})}
    last: tuple[float | None, datetime | None] = (None, None)
    if fill == "previous":
        before = session.execute(BEFORE, {**key, "since": since}).first()
        last = (None, None) if before is None else (before.value_num, before.ts)
    out: list[Bucket] = []
    for i, (start, end) in enumerate(itertools.pairwise(edges)):
        row = found.get(i)
        if row is not None:
            out.append(
                Bucket(start=start, end=end, count=row.count, min=row.min, max=row.max,
                       sum=row.sum, avg=row.avg, last=row.last, last_ts=row.last_ts)
            )  # fmt: skip
            last = (row.last, row.last_ts)
        elif fill != "none":
            carried = last if fill == "previous" else (None, None)
            out.append(
                Bucket(start=start, end=end, count=0, min=None, max=None, sum=None, avg=None,
                       last=carried[0], last_ts=carried[1])
            )  # fmt: skip
    return out
