"""Queries of a device's telemetry: raw readings (keyset-paged), latest values and aggregates
(both through the Redis cache), and streamed exports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError
from store.api_keys import Principal
from store.db import snapshot
from tasks.iot import aggregate, cache, devices, export, queries, retention
from tasks.iot.aggregate import Bucket, Fill
from tasks.iot.api_schemas import LatestView, ReadingView
from tasks.iot.settings import IotSettings
from tasks.iot.web import READ_SCOPE
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.fields import Instant
from tasks.web.paging import Page
from tasks.web.routing import StrictRoute

router = APIRouter(tags=["iot"], route_class=StrictRoute)
Reader = Annotated[Principal, Depends(require_scope(READ_SCOPE))]
Limit = Annotated[int, Query(ge=1, le=10_000)]
MAX_BUCKETS = 10_000
LATEST = TypeAdapter(list[LatestView])
BUCKETS = TypeAdapter(list[Bucket])


def _range(since: datetime, until: datetime | None) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC) + timedelta(days=1)
    if end <= since:
        raise InvalidFieldError("`until` must be later than `since`", field="until")
    return since, end


@router.get("/v1/devices/{device_id}/readings")
def readings(
    device_id: str,
    session: SessionDep,
    _: Reader,
    since: Instant,
    until: Instant | None = None,
    metric: str | None = None,
    limit: Limit = 1_000,
    cursor: Annotated[str | None, Query(max_length=1_000)] = None,
) -> Page[ReadingView]:
    """The device's readings in `[since, until)` by event time, keyset-paged."""
    devices.get_device(session, device_id)
    start, end = _range(since, until)
    return queries.readings(
        session, device_id, metric=metric, since=start, until=end, limit=limit, cursor=cursor
    )


@router.get("/v1/devices/{device_id}/latest")
def latest(
    device_id: str, session: SessionDep, settings: SettingsDep, _: Reader
) -> list[LatestView]:
    """The newest reading of each of the device's metrics."""
    devices.get_device(session, device_id)
    return answer_latest(settings, session, device_id)


def answer_latest(settings: Settings, session: Session, device_id: str) -> list[LatestView]:
    """The device's latest values, from the cache or from the store."""
    return cache.read_through(
        settings, (device_id,), "latest", LATEST, lambda: queries.latest(session, device_id)
    )


def _numeric_metric(session: SessionDep, device_id: str, metric: str) -> None:
    profile = devices.get_profile(session, devices.get_device(session, device_id).profile_id)
    spec: dict[str, Any] | None = profile.metrics.get(metric)
    if spec is None or spec.get("type", "number") != "number":
        raise InvalidFieldError(
            f"profile {profile.id!r} has no numeric metric {metric!r}", field="metric"
        )


def answer_aggregate(
    settings: Settings,
    device_id: str,
    *,
    metric: str,
    since: datetime,
    until: datetime,
    every: timedelta | None,
    fill: Fill,
) -> list[Bucket]:
    """The aggregate, from the cache or from one snapshot of the store."""
    own = settings.section(IotSettings)

    def compute() -> list[Bucket]:
        with snapshot(settings) as session:
            return aggregate.aggregate(
                session, device_id, metric=metric, since=since, until=until, every=every,
                fill=fill, kept=retention.kept(own, now=datetime.now(UTC)),
            )  # fmt: skip

    question = ["aggregate", since.isoformat(), until.isoformat(), every, fill]
    return cache.read_through(settings, (device_id, metric), question, BUCKETS, compute)


@router.get("/v1/devices/{device_id}/aggregates")
def aggregates(
    device_id: str,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    metric: str,
    since: Instant,
    until: Instant | None = None,
    every: Annotated[int | None, Query(ge=1, le=366 * 86_400, description="seconds")] = None,
    fill: Fill = "none",
) -> list[Bucket]:
    """Count, min, max, sum, avg and last of a numeric metric over `[since, until)`: one
    bucket, or one per `every` seconds from `since`; empty buckets left out (`fill=none`),
    null (`null`) or carrying the last value forward (`previous`). Answered from the roll-ups
    where they cover a bucket and from raw readings elsewhere: always what raw would say."""
    _numeric_metric(session, device_id, metric)
    start, end = _range(since, until)
    step = None if every is None else timedelta(seconds=every)
    if step is not None and (end - start) / step > MAX_BUCKETS:
        raise InvalidFieldError(f"more than {MAX_BUCKETS} buckets in the range", field="every")
    return answer_aggregate(
        settings, device_id, metric=metric, since=start, until=end, every=step, fill=fill
    )


@router.get("/v1/devices/{device_id}/export", response_class=StreamingResponse)
def export_readings(
    device_id: str,
    session: SessionDep,
    settings: SettingsDep,
    _: Reader,
    since: Instant,
    until: Instant | None = None,
    metric: str | None = None,
    kind: Annotated[export.Format, Query(alias="format")] = "ndjson",
) -> StreamingResponse:
    """The device's readings in `[since, until)` as CSV or NDJSON, streamed."""
    devices.get_device(session, device_id)
    start, end = _range(since, until)
    chunks = export.readings(
        settings, device_id, metric=metric, since=start, until=end,
        chunk=settings.section(IotSettings).export_chunk,
    )  # fmt: skip
    filename = f"{device_id}.{kind}"
    return StreamingResponse(
        export.lines(kind, device_id, chunks),
        media_type=export.MEDIA_TYPES[kind],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
