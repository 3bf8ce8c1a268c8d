"""Storing accepted readings exactly once: binary COPY into a staging table, then one bulk
insert of new keys (the latest values updated and the roll-ups' touched minutes marked in the
same statement, the latest value only if newer), and one statement that sorts the offers the
insert did not store into duplicates and conflicts.

Everything runs in the caller's transaction (the job's), so a crash stores nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.iot import rollups
from tasks.iot.readings import Reading

STAGING = """
CREATE TEMP TABLE IF NOT EXISTS iot_staging (
  idx integer, device_id text, metric text, ts timestamptz,
  value_num double precision, value_text text, value_bool boolean, unit text
) ON COMMIT DELETE ROWS
"""
COPY = (
    "COPY iot_staging (idx, device_id, metric, ts, value_num, value_text, value_bool, unit) "
    "FROM STDIN (FORMAT BINARY)"
)
COPY_TYPES = ["int4", "text", "text", "timestamptz", "float8", "text", "bool", "text"]
VALUE_COLUMNS = "value_num, value_text, value_bool, unit"

# The first offer of each new key is stored; the latest value moves only forward in time; the
# minutes the new numeric rows fall in are marked for the roll-ups' fold.
# (Every part of the statement sees the latest values as they were before it: a new row older
# than its metric's latest value arrived late.)
INSERT_NEW = text(f"""
WITH stored AS (
  INSERT INTO iot_readings (device_id, metric, ts, received_at, {VALUE_COLUMNS}, batch_id, idx)
  SELECT DISTINCT ON (device_id, metric, ts)
    device_id, metric, ts, :received_at, {VALUE_COLUMNS}, :batch_id, idx
  FROM iot_staging ORDER BY device_id, metric, ts, idx
  ON CONFLICT DO NOTHING
  RETURNING device_id, metric, ts, {VALUE_COLUMNS}, idx
), dirty AS ({rollups.MARK_DIRTY}), latest AS (
  INSERT INTO iot_latest (device_id, metric, ts, received_at, {VALUE_COLUMNS})
  SELECT DISTINCT ON (device_id, metric) device_id, metric, ts, :received_at, {VALUE_COLUMNS}
  FROM stored ORDER BY device_id, metric, ts DESC
  ON CONFLICT (device_id, metric) DO UPDATE SET
    ts = excluded.ts, received_at = excluded.received_at, value_num = excluded.value_num,
    value_text = excluded.value_text, value_bool = excluded.value_bool, unit = excluded.unit
  WHERE excluded.ts > iot_latest.ts
)
SELECT s.idx, s.metric, s.ts, s.value_num, s.ts < l.ts AS late FROM stored s
LEFT JOIN iot_latest l ON (l.device_id, l.metric) = (s.device_id, s.metric)
""")

_VALUE = "coalesce(to_jsonb({0}.value_num), to_jsonb({0}.value_text), to_jsonb({0}.value_bool))"
# Every other offer of a stored key (`:rest`, the staged indexes the insert did not store, so
# only those are looked up): the same value is a duplicate, another is a conflict (recorded
# once per offer, so a re-run of the batch records nothing new). Each offer looks its key up in
# the primary key (`LIMIT 1` keeps the lateral join a nested loop, whatever the statistics
# say): a hash join would read the whole store to find a batch's few resends.
SORT_REST = text(f"""
WITH offers AS (
  SELECT s.idx, s.device_id, s.metric, s.ts,
    jsonb_build_object('value', {_VALUE.format("r")}, 'unit', r.unit,
                       'batch_id', r.batch_id, 'index', r.idx) AS stored,
    jsonb_build_object('value', {_VALUE.format("s")}, 'unit', s.unit) AS offered,
    (r.value_num IS NOT DISTINCT FROM s.value_num AND r.value_text IS NOT DISTINCT FROM s.value_text
     AND r.value_bool IS NOT DISTINCT FROM s.value_bool) AS same
  FROM iot_staging s
  JOIN unnest(CAST(:rest AS integer[])) AS rest (idx) USING (idx)
  CROSS JOIN LATERAL (
    SELECT {VALUE_COLUMNS}, batch_id, idx FROM iot_readings
    WHERE (device_id, metric, ts) = (s.device_id, s.metric, s.ts) LIMIT 1
  ) r
  WHERE NOT (r.batch_id = :batch_id AND r.idx = s.idx)
), noted AS (
  INSERT INTO iot_conflicts (device_id, metric, ts, batch_id, idx, stored, offered)
  SELECT device_id, metric, ts, :batch_id, idx, stored, offered FROM offers WHERE NOT same
  ON CONFLICT (batch_id, idx) DO NOTHING
)
SELECT count(*) FILTER (WHERE same) AS duplicates, count(*) FILTER (WHERE NOT same) AS conflicts
FROM offers
""")


@dataclass(frozen=True)
class Stored:
    """How the accepted readings of a batch fared."""

    stored: int
    duplicates: int
    conflicts: int
    # The new rows' metric, event time and numeric value (None for other kinds).
    new: list[tuple[str, datetime, float | None]]
    # How many new rows are older than their metric's latest value was.
    late: int = 0


def _row(index: int, reading: Reading) -> tuple[Any, ...]:
    value = reading.value
    number = float(value) if not isinstance(value, bool | str) else None
    return (
        index,
        reading.device,
        reading.metric,
        reading.ts,
        number,
        value if isinstance(value, str) else None,
        value if isinstance(value, bool) else None,
        reading.unit,
    )


def store(
    session: Session,
    readings: list[tuple[int, Reading]],
    *,
    batch_id: uuid.UUID,
    received_at: datetime,
) -> Stored:
    """Store the readings whose key is new; count the resent and the conflicting."""
    if not readings:
        return Stored(0, 0, 0, [])
    session.execute(text(STAGING))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(COPY) as copy:
        copy.set_types(COPY_TYPES)
        for index, reading in readings:
            copy.write_row(_row(index, reading))
    params = {"batch_id": batch_id, "received_at": received_at}
    rows = session.execute(INSERT_NEW, params).all()
    new = [(r.metric, r.ts, r.value_num) for r in rows]
    late = sum(1 for r in rows if r.late)
    stored = {r.idx for r in rows}
    rest = [index for index, _ in readings if index not in stored]
    duplicates = conflicts = 0
    if rest:
        sorted_rest = session.execute(SORT_REST, {**params, "rest": rest}).one()
        duplicates, conflicts = int(sorted_rest.duplicates), int(sorted_rest.conflicts)
    # Emptied for a later batch of the same transaction (a group commit); the commit empties
    # it anyway. A DELETE, not a TRUNCATE: that would give the table a new file every batch.
    session.execute(text("DELETE FROM iot_staging"))
    return Stored(len(new), duplicates, conflicts, new, late)
