"""The IoT domain's ORM tables: profiles, devices, batches, latest values, conflicts, alerts,
ingest counts and shadows.

Raw readings live in `iot_readings`, partitioned by day: SQL of its own (`store.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData()


class Base(DeclarativeBase):
    """The IoT domain's declarative base."""

    metadata = metadata


class Profile(Base):
    """What a kind of device reports: its metrics (type, unit, range, interval), time policy."""

    __tablename__ = "iot_profiles"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    future_policy: Mapped[str] = mapped_column(String(8))  # refuse | clamp
    late_window: Mapped[float | None] = mapped_column(Float)
    future_skew: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Device(Base):
    """A device and its one live credential (none once revoked)."""

    __tablename__ = "iot_devices"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("iot_profiles.id"))
    credential_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    credential_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Under maintenance, silence raises no offline alert.
    maintenance: Mapped[bool] = mapped_column(Boolean, default=False)


class Batch(Base):
    """A batch as received (its body is kept until stored), then what became of it."""

    __tablename__ = "iot_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("iot_devices.id"))
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(
        String(16)
    )  # received | stored | refused (not a batch at all)
    job_id: Mapped[uuid.UUID] = mapped_column()
    readings: Mapped[int] = mapped_column(Integer, default=0)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    clamped: Mapped[int] = mapped_column(Integer, default=0)
    refusals: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    stored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Latest(Base):
    """The newest reading (by event time) of one device's metric."""

    __tablename__ = "iot_latest"

    device_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    metric: Mapped[str] = mapped_column(String(200), primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    value_num: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(String)
    value_bool: Mapped[bool | None] = mapped_column(Boolean)
    unit: Mapped[str | None] = mapped_column(String(50))


class Conflict(Base):
    """A reading whose key was stored already with another value: kept here, not stored."""

    __tablename__ = "iot_conflicts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(200))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    batch_id: Mapped[uuid.UUID] = mapped_column()
    idx: Mapped[int] = mapped_column(Integer)
    stored: Mapped[dict[str, Any]] = mapped_column(JSONB)
    offered: Mapped[dict[str, Any]] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertRule(Base):
    """A rule of a profile. `threshold`: fire past `set_at` (`consecutive` readings in a row,
    or for `for_seconds` of event time), resolve only back past `clear_at` (hysteresis).
    `offline`: fire when a device of the profile has sent nothing for K expected intervals."""

    __tablename__ = "iot_alert_rules"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    profile_id: Mapped[str] = mapped_column(ForeignKey("iot_profiles.id"))
    kind: Mapped[str] = mapped_column(String(9), default="threshold")  # threshold | offline
    metric: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(5))  # above | below
    set_at: Mapped[float | None] = mapped_column(Float)
    clear_at: Mapped[float | None] = mapped_column(Float)
    consecutive: Mapped[int] = mapped_column(Integer, default=1)
    for_seconds: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertState(Base):
    """Where one device stands with one rule, as of the newest reading evaluated."""

    __tablename__ = "iot_alert_states"

    rule_id: Mapped[str] = mapped_column(ForeignKey("iot_alert_rules.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("iot_devices.id"), primary_key=True)
    firing: Mapped[bool] = mapped_column(Boolean, default=False)
    streak: Mapped[int] = mapped_column(Integer, default=0)
    last_ts: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Firing: since when (offline: the last reading). Not firing: when the breach began.
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    breach_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IngestCount(Base):
    """Readings of a profile by outcome, summed over a few shards so concurrent batches do not
    queue on one row; each batch adds its counts in its store transaction."""

    __tablename__ = "iot_ingest_counts"

    profile_id: Mapped[str] = mapped_column(ForeignKey("iot_profiles.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    accepted: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    conflicting: Mapped[int] = mapped_column(BigInteger, default=0)
    late: Mapped[int] = mapped_column(BigInteger, default=0)
    future: Mapped[int] = mapped_column(BigInteger, default=0)
    refused: Mapped[int] = mapped_column(BigInteger, default=0)


class AlertEvent(Base):
    """A transition (firing, resolved) and the notification it sent."""

    __tablename__ = "iot_alert_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("iot_alert_rules.id"))
    device_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    value: Mapped[float | None] = mapped_column(Float)  # None for offline alerts
    duration: Mapped[float | None] = mapped_column(Float)
    notification_id: Mapped[uuid.UUID] = mapped_column()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Shadow(Base):
    """A device's reported and desired state; `version` counts the writes of either."""

    __tablename__ = "iot_shadows"

    device_id: Mapped[str] = mapped_column(ForeignKey("iot_devices.id"), primary_key=True)
    reported: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    desired: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    desired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
