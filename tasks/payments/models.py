"""The payments domain's ORM metadata (the ledger's tables are SQL of their own)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

metadata = MetaData()


class Base(DeclarativeBase):
    """The payments domain's declarative base."""

    metadata = metadata
