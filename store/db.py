"""Engines and sessions for the ledger."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, get_settings

_engines: dict[tuple[int, str], Engine] = {}
_factories: dict[Engine, sessionmaker[Session]] = {}
# A pooled connection idle longer than this is pinged before use; a busy one is not, which
# saves a round trip per transaction under load (a connection broken since its last use
# then fails one statement, and SQLAlchemy invalidates the pool).
PING_IDLE_AFTER = 1.0


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
        engine = create_engine(url, **_engine_options(settings))
        _ping_idle_connections(engine)
        _engines[key] = engine
    return engine


def _engine_options(settings: Settings) -> dict[str, Any]:
    timeout = settings.database.statement_timeout_ms
    return {
        "pool_size": settings.database.pool_size,
        "connect_args": {"connect_timeout": 5, "options": f"-c statement_timeout={timeout}"},
    }


async def connect_async(settings: Settings, *, application_name: str) -> AsyncConnection[Any]:
    """A raw psycopg asyncio connection in autocommit, with the engines' timeouts.

    For a single task that owns its connection (the intake writer): no pool, no SQLAlchemy
    adapter between it and the driver. `application_name` names it in `pg_stat_activity`.
    """
    url = make_url(sqlalchemy_url(settings.database.url)).set(drivername="postgresql")
    return await AsyncConnection.connect(
        url.render_as_string(hide_password=False),
        autocommit=True,
        application_name=application_name,
        **_engine_options(settings)["connect_args"],
    )


def dispose_engines() -> None:
    """Close every pooled connection this process holds (before dropping a database, say)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, only for connections that sat idle in the pool."""

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_AFTER:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("pooled connection is gone") from exc  # the pool retries


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    engine = get_engine(settings)
    factory = _factories.get(engine)
    if factory is None:  # a sessionmaker builds a Session subclass: make it once per engine
        factory = _factories[engine] = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        yield session


@contextmanager
def autocommit(settings: Settings | None = None) -> Iterator[Session]:
    """A session whose statements each commit on their own: only for one-statement changes."""
    engine = get_engine(settings)
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        Session(conn, expire_on_commit=False) as session,
    ):
        yield session
