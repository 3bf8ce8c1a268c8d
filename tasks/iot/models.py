"""The IoT domain's ORM tables: profiles, devices, batches, latest values and conflicts.

Raw readings live in `iot_readings`, partitioned by day: SQL of its own (`store.py`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, MetaData, String
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


class Batch(Base):
    """A batch as received (its body is kept until stored), then what became of it."""

    __tablename__ = "iot_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("iot_devices.id"))
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # received | stored
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
