"""Alembic environment: online migrations against the configured database."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from config import get_settings
from tasks.registry import domains

# The ledger's tables and every loaded domain's, so autogenerate sees them all.
target_metadata = domains(context.config.attributes.get("settings") or get_settings()).metadata


def run_migrations_online() -> None:
    """Apply migrations over one connection."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "ops.migrate.alembic_config sets sqlalchemy.url"
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
