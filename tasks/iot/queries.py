"""Reading stored telemetry: a device's readings (keyset-paged), latest values, batches,
conflicts, alert transitions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import cast, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH
from sqlalchemy.orm import Session, defer

from errors import InvalidFieldError
from tasks.iot.api_schemas import BatchView, ConflictView, LatestView, ReadingView, value_of
from tasks.iot.models import AlertEvent, Batch, Conflict, Latest
from tasks.web.paging import Page, decode_key, encode_key

READINGS = text("""
SELECT metric, ts, received_at, value_num, value_text, value_bool, unit FROM iot_readings
WHERE device_id = :device AND (CAST(:metric AS text) IS NULL OR metric = :metric)
  AND ts >= :since AND ts < :until AND (ts, metric) > (:after_ts, :after_metric)
ORDER BY ts, metric LIMIT :limit
""")
EPOCH = datetime.fromisoformat("0001-01-01T00:00:00+00:00")


def _after(cursor: str | None) -> tuple[datetime, str]:
    if cursor is None:
        return EPOCH, ""
    stamp, metric = decode_key(cursor, 2)
    try:
        return datetime.fromisoformat(stamp), metric
    except ValueError as exc:
        raise InvalidFieldError("not a cursor this API issued", field="cursor") from exc


def readings(
    session: Session,
    device: str,
    *,
    metric: str | None,
    since: datetime,
    until: datetime,
    limit: int,
    cursor: str | None,
) -> Page[ReadingView]:
    """The device's readings in `[since, until)`, in time order, `limit` at a time."""
    after_ts, after_metric = _after(cursor)
    rows = session.execute(
        READINGS,
        {
            "device": device,
            "metric": metric,
            "since": since,
            "until": until,
            "after_ts": after_ts,
            "after_metric": after_metric,
            "limit": limit + 1,
        },
    ).all()
    items = [
        ReadingView(
            metric=r.metric,
            ts=r.ts,
            received_at=r.received_at,
            value=value_of(r.value_num, r.value_text, r.value_bool),
            unit=r.unit,
        )
        for r in rows[:limit]
    ]
    more = len(rows) > limit
    last = items[-1] if more else None
    return Page(
        items=items,
        next_cursor=None if last is None else encode_key(last.ts.isoformat(), last.metric),
    )


def latest(session: Session, device: str) -> list[LatestView]:
    """The newest reading of each of the device's metrics."""
    rows = session.scalars(select(Latest).where(Latest.device_id == device).order_by(Latest.metric))
    return [LatestView.of(r) for r in rows]


LISTED_REFUSALS = 20  # a listed batch shows its first refusals; GET of the batch shows all


def batches(
    session: Session,
    *,
    device: str | None,
    status: str | None,
    with_refusals: bool,
    cursor: str | None,
    limit: int,
) -> Page[BatchView]:
    """Batches newest first, after `cursor`: of `device` (else every device's), in `status`,
    and only those with a refusal when `with_refusals`. Neither bodies nor whole refusal
    lists are read: a batch's first LISTED_REFUSALS refusals, and how many it has."""
    first = cast(f"$[0 to {LISTED_REFUSALS - 1}]", JSONPATH)
    head = func.jsonb_path_query_array(Batch.refusals, first, type_=JSONB)
    query = (
        select(Batch, head, func.jsonb_array_length(Batch.refusals))
        .options(defer(Batch.body), defer(Batch.refusals))
        .order_by(Batch.received_at.desc(), Batch.id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        stamp, last = decode_key(cursor, 2)
        try:
            after = (datetime.fromisoformat(stamp), uuid.UUID(last))
        except ValueError as exc:
            raise InvalidFieldError("not a cursor this API issued", field="cursor") from exc
        query = query.where(tuple_(Batch.received_at, Batch.id) < after)
    if device is not None:
        query = query.where(Batch.device_id == device)
    if status is not None:
        query = query.where(Batch.status == status)
    if with_refusals:
        query = query.where(func.jsonb_array_length(Batch.refusals) > 0)
    rows = session.execute(query).all()
    items = [BatchView.of(b, refusals=r, refusals_total=n) for b, r, n in rows[:limit]]
    more = len(rows) > limit
    return Page(
        items=items,
        next_cursor=encode_key(items[-1].received_at.isoformat(), items[-1].id) if more else None,
    )


def conflicts(session: Session, device: str, *, limit: int) -> list[ConflictView]:
    """The device's conflicting offers, newest first."""
    rows = session.scalars(
        select(Conflict)
        .where(Conflict.device_id == device)
        .order_by(Conflict.id.desc())
        .limit(limit)
    )
    return [
        ConflictView(
            id=c.id,
            metric=c.metric,
            ts=c.ts,
            batch_id=str(c.batch_id),
            index=c.idx,
            stored=c.stored,
            offered=c.offered,
            at=c.at,
        )
        for c in rows
    ]


def alert_events(session: Session, device: str, *, limit: int) -> list[dict[str, Any]]:
    """The device's alert transitions, newest first."""
    rows = session.scalars(
        select(AlertEvent)
        .where(AlertEvent.device_id == device)
        .order_by(AlertEvent.id.desc())
        .limit(limit)
    )
    return [
        {
            "rule": e.rule_id,
            "kind": e.kind,
            "ts": e.ts,
            "value": e.value,
            "duration": e.duration,
            "notification_id": str(e.notification_id),
            "at": e.at,
        }
        for e in rows
    ]
