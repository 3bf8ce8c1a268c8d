"""Alembic environment: online migrations on a ledger connection made by store.db."""

from __future__ import annotations

from alembic import context

from config import get_settings
from store.db import get_engine
from tasks.registry import domains

# The ledger's tables and every loaded domain's, so autogenerate sees them all.
target_metadata = domains(context.config.attributes.get("settings") or get_settings()).metadata


def run_migrations_online() -> None:
    """Apply migrations over one connection made by store.db, like every other."""
    with get_engine(context.config.attributes.get("settings")).connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
