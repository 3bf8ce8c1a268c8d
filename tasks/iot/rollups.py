"""Roll-ups that stay right under late data: every stored batch records, in its own
transaction, the minute buckets it touched; beat folds them, recomputing each touched minute
from raw, then its hour from the minutes and its day from the hours. So after any mix of late
readings, once the log is folded, every roll-up row equals a recompute from raw.

Sums are `numeric` (each value as PostgreSQL casts a float8), so a sum of sums is exactly the
sum of the values, in any order.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

TIERS = (("1m", "minute"), ("1h", "hour"), ("1d", "day"))
FOLD_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('iot rollups fold'))")

# A part of the store's insert (`tasks.iot.store`): the minutes its new rows (the CTE
# `stored`) fall in. `DO UPDATE` locks an existing entry, so a fold (which skips locked
# entries) cannot take it until this batch commits and its readings are visible.
MARK_DIRTY = """
  INSERT INTO iot_rollup_dirty (device_id, metric, bucket)
  SELECT DISTINCT device_id, metric, date_trunc('minute', ts, 'UTC') FROM stored
  WHERE value_num IS NOT NULL
  ORDER BY 1, 2, 3
  ON CONFLICT (device_id, metric, bucket) DO UPDATE SET touched = iot_rollup_dirty.touched + 1
"""

FOLDING = text(
    "CREATE TEMP TABLE IF NOT EXISTS iot_folding ("
    " device_id text, metric text, bucket timestamptz) ON COMMIT DELETE ROWS"
)
TAKE = text("""
WITH taken AS (
  DELETE FROM iot_rollup_dirty WHERE ctid IN (
    SELECT ctid FROM iot_rollup_dirty ORDER BY bucket LIMIT :limit FOR UPDATE SKIP LOCKED)
  RETURNING device_id, metric, bucket
)
INSERT INTO iot_folding SELECT * FROM taken
""")

# Recompute a tier's touched buckets from the tier below (raw for minutes); a bucket left with
# no rows below it is deleted.
_SOURCE = {
    "1m": (
        "SELECT t.device_id, t.metric, t.bucket, count(*) AS count,"
        " min(r.value_num) AS min, max(r.value_num) AS max, sum(r.value_num::numeric) AS sum,"
        " max(r.ts) AS last_ts, (array_agg(r.value_num ORDER BY r.ts DESC))[1] AS last"
        " FROM touched t JOIN iot_readings r ON r.device_id = t.device_id"
        " AND r.metric = t.metric AND r.ts >= t.bucket AND r.ts < t.bucket + interval '1 minute'"
        " WHERE r.value_num IS NOT NULL"
        " GROUP BY 1, 2, 3"
    ),
}


def _from_tier(below: str, unit: str) -> str:
    return (
        f"SELECT device_id, metric, date_trunc('{unit}', bucket, 'UTC') AS bucket,"
        " sum(count) AS count, min(min) AS min, max(max) AS max, sum(sum) AS sum,"
        " max(last_ts) AS last_ts, (array_agg(last ORDER BY last_ts DESC))[1] AS last"
        f" FROM iot_rollups u WHERE tier = '{below}' AND EXISTS (SELECT 1 FROM touched t"
        " WHERE t.device_id = u.device_id AND t.metric = u.metric"
        f" AND date_trunc('{unit}', u.bucket, 'UTC') = t.bucket)"
        " GROUP BY 1, 2, 3"
    )


def _refold(tier: str, unit: str, below: str | None) -> str:
    source = _SOURCE["1m"] if below is None else _from_tier(below, unit)
    return f"""
WITH touched AS (
  SELECT DISTINCT device_id, metric, date_trunc('{unit}', bucket, 'UTC') AS bucket
  FROM iot_folding
), fresh AS ({source}),
gone AS (
  DELETE FROM iot_rollups u USING touched t
  WHERE u.tier = '{tier}' AND (u.device_id, u.metric, u.bucket) = (t.device_id, t.metric, t.bucket)
    AND NOT EXISTS (SELECT 1 FROM fresh f
      WHERE (f.device_id, f.metric, f.bucket) = (u.device_id, u.metric, u.bucket))
)
INSERT INTO iot_rollups (tier, device_id, metric, bucket, count, min, max, sum, last_ts, last)
SELECT '{tier}', * FROM fresh
ON CONFLICT (tier, device_id, metric, bucket) DO UPDATE SET
  count = excluded.count, min = excluded.min, max = excluded.max, sum = excluded.sum,
  last_ts = excluded.last_ts, last = excluded.last
"""


REFOLDS = [
    text(_refold(tier, unit, below))
    for (tier, unit), below in zip(TIERS, (None, "1m", "1h"), strict=True)
]


def fold(session: Session, *, limit: int = 10_000) -> int:
    """Fold up to `limit` touched minutes into every tier; returns how many were folded."""
    session.execute(FOLD_LOCK)
    session.execute(FOLDING)
    session.execute(TAKE, {"limit": limit})
    taken = int(session.execute(text("SELECT count(*) FROM iot_folding")).scalar_one())
    if taken:
        for statement in REFOLDS:
            session.execute(statement)
    session.execute(text("TRUNCATE iot_folding"))
    return taken
