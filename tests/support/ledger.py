"""Emptying the tables a test wrote: the ledger's and the domains' (each declares its own)."""

from __future__ import annotations

from sqlalchemy import text

from config import Settings
from store.db import transaction
from tasks.registry import domains


def clean_tables(settings: Settings, *, domain: str | None = None) -> None:
    """TRUNCATE every declared table, or only those of `domain`."""
    registry = domains(settings)
    if domain is None:
        tables = registry.tables
    else:
        (tables,) = [d.tables for d in registry.domains if d.name == domain]
    with transaction(settings) as session:
        session.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
