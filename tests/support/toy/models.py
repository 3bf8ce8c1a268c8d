"""The toy domain's one table, in metadata of its own."""

from __future__ import annotations

import uuid

from sqlalchemy import MetaData, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData()


class Base(DeclarativeBase):
    """The toy domain's declarative base."""

    metadata = metadata


class ToyNote(Base):
    """One note, written by the job that recorded it."""

    __tablename__ = "toy_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(String(200))
