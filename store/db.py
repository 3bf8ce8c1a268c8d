"""Engines and sessions for the ledger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, inspect
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, get_settings

_engines: dict[tuple[int, str], Engine] = {}


def sqlalchemy_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def get_engine(settings: Settings | None = None) -> Engine:
    """One engine per process and database URL (a forked worker child gets its own)."""
    settings = settings or get_settings()
    url = sqlalchemy_url(settings.database.url)
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        timeout = settings.database.statement_timeout_ms
        engine = create_engine(
            url,
            pool_size=settings.database.pool_size,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 5, "options": f"-c statement_timeout={timeout}"},
        )
        _engines[key] = engine
    return engine


def dispose_engines() -> None:
    """Close every pooled connection this process holds (before dropping a database, say)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    factory = sessionmaker(get_engine(settings), expire_on_commit=False)
    with factory.begin() as session:
        yield session


class NotMigratedError(RuntimeError):
    """The database lacks the schema this code needs."""


def require_migrated(settings: Settings | None = None) -> None:
    """Refuse to run against a database that `switchyard migrate` has not brought up to date."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    with get_engine(settings).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        has_jobs = inspect(conn).has_table("jobs")
    if current != head or not has_jobs:
        raise NotMigratedError(
            f"database is at revision {current or 'none'}, code needs {head}: "
            "run `switchyard migrate` first"
        )
