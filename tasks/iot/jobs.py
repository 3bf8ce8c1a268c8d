"""The IoT domain's handlers: parse the message, call the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tasks.context import JobContext
from tasks.iot import partitions, service
from tasks.iot.parsing import parsers
from tasks.iot.schemas import INGEST, PARTITIONS, IngestPayload, PartitionsPayload
from tasks.iot.settings import IotSettings
from tasks.registry import handles


@handles(INGEST.name)
def ingest(ctx: JobContext, payload: IngestPayload) -> dict[str, Any]:
    """Store one batch; its readings, counts and `succeeded` commit together."""
    return service.ingest(
        ctx.session,
        payload.batch_id,
        parsers=parsers(ctx.settings),
        settings=ctx.settings,
        now=datetime.now(UTC),
    )


@handles(PARTITIONS.name)
def upkeep(ctx: JobContext, payload: PartitionsPayload) -> dict[str, Any]:
    """Make the partitions from the late window's start to a few days ahead; drop the expired."""
    own = ctx.settings.section(IotSettings)
    today = datetime.now(UTC).date()
    first = (datetime.now(UTC) - timedelta(seconds=own.late_window)).date()
    span = (today - first).days + own.partitions_ahead + 1
    days = [first + timedelta(days=n) for n in range(span)]
    dropped = partitions.drop_expired(
        ctx.autocommit, before=today - timedelta(days=own.retention_days)
    )
    created = partitions.ensure(ctx.session, days)
    return {
        "created": [d.isoformat() for d in created],
        "dropped": [d.isoformat() for d in dropped],
    }
