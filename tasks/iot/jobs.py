"""The IoT domain's handlers: parse the message, call the service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tasks.context import JobContext
from tasks.iot import device_accounts, offline, partitions, retention, rollups, service
from tasks.iot.parsing import extra_parsers
from tasks.iot.schemas import (
    INGEST,
    MQTT_REVOKE,
    OFFLINE,
    PARTITIONS,
    RETENTION,
    ROLLUP,
    DevicePayload,
    IngestPayload,
)
from tasks.iot.settings import IotSettings
from tasks.registry import NoArguments, handles


@handles(INGEST.name)
def ingest(ctx: JobContext, payload: IngestPayload) -> dict[str, Any]:
    """Store one batch; its readings, counts and `succeeded` commit together."""
    return service.ingest(
        ctx.session,
        payload.batch_id,
        extra_parsers=extra_parsers(ctx.settings),
        settings=ctx.settings,
        now=datetime.now(UTC),
    )


@handles(PARTITIONS.name)
def upkeep(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Make the partitions ingestion will need; drop those past retention."""
    return partitions.upkeep(
        ctx.session,
        ctx.autocommit,
        settings=ctx.settings.section(IotSettings),
        now=datetime.now(UTC),
    )


@handles(ROLLUP.name)
def rollup(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Fold touched minute buckets into every roll-up tier."""
    return {"folded": rollups.fold(ctx.session)}


@handles(OFFLINE.name)
def offline_sweep(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Fire the offline alerts of silent devices, with their notifications."""
    return {"fired": offline.sweep(ctx.session, settings=ctx.settings, now=datetime.now(UTC))}


@handles(RETENTION.name)
def purge(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Delete roll-up buckets and finished batches past their retention."""
    return retention.upkeep(
        ctx.autocommit, settings=ctx.settings.section(IotSettings), now=datetime.now(UTC)
    )


@handles(MQTT_REVOKE.name)
def mqtt_revoke(ctx: JobContext, payload: DevicePayload) -> dict[str, Any]:
    """Delete a revoked device's client on the broker (its connection closes with it)."""
    return device_accounts.withdraw(ctx.session, payload.device_id, settings=ctx.settings)
