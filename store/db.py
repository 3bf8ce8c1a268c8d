"""Every kind of connection to the ledger, all with the same options.

ORM sessions (`transaction`, `autocommit`, `snapshot`, `new_session`) on one pooled engine per
process (Alembic's connection too: `get_engine`), the intake writer's raw asyncio connection
(`connect_async`) and the relay's LISTEN connection (`connect_listen`). Each gets the configured
`statement_timeout` (a migration that must outlast it raises it with `SET LOCAL`), a connect
timeout, and an `application_name` saying which process holds it in `pg_stat_activity`:
`switchyard-<role>`, the role set once at start before any connection (`set_role`), plus
`:<purpose>` for a connection of its own (`switchyard-api:intake`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, get_settings

CONNECT_TIMEOUT = 5  # seconds
# A pooled connection idle longer than this is pinged before use; a busy one is not, which
# saves a round trip per transaction under load (a connection broken since its last use
# then fails one statement, and SQLAlchemy invalidates the pool).
PING_IDLE_AFTER = 1.0

_role: str | None = None
_engines: dict[tuple[int, str], Engine] = {}
_factories: dict[Engine, sessionmaker[Session]] = {}


def set_role(role: str) -> None:
    """Name this process's connections after its role (api, worker, relay, beat, cli…)."""
    global _role
    _role = role


def application_name(purpose: str | None = None) -> str:
    """What `pg_stat_activity` shows for a connection of this process made for `purpose`."""
    name = "switchyard" if _role is None else f"switchyard-{_role}"
    return name if purpose is None else f"{name}:{purpose}"


def sqlalchemy_url(url: str) -> str:
    """Normalise a PostgreSQL URL to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _dsn(settings: Settings) -> str:
    """The configured URL as libpq takes it, for psycopg without SQLAlchemy."""
    url = make_url(sqlalchemy_url(settings.database.url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _connect_args(settings: Settings, *, purpose: str | None = None) -> dict[str, Any]:
    """The options every connection gets, whoever makes it."""
    timeout = settings.database.statement_timeout_ms
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "options": f"-c statement_timeout={timeout}",
        "application_name": application_name(purpose),
    }


def get_engine(settings: Settings | None = None) -> Engine:
    """One pooled engine per process and database URL (a forked worker child gets its own)."""
    settings = settings or get_settings()
    url = sqlalchemy_url(settings.database.url)
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        engine = create_engine(
            url, pool_size=settings.database.pool_size, connect_args=_connect_args(settings)
        )
        _ping_idle_connections(engine)
        _engines[key] = engine
    return engine


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


def _factory(engine: Engine) -> sessionmaker[Session]:
    factory = _factories.get(engine)
    if factory is None:  # a sessionmaker builds a Session subclass: make it once per engine
        factory = _factories[engine] = sessionmaker(engine, expire_on_commit=False)
    return factory


def new_session(settings: Settings | None = None) -> Session:
    """A session not yet begun, for a caller that commits what it keeps (one API request)."""
    return _factory(get_engine(settings))()


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with new_session(settings) as session, session.begin():
        yield session


@contextmanager
def autocommit(settings: Settings | None = None) -> Iterator[Session]:
    """A session whose statements each commit on their own: only for one-statement changes."""
    engine = get_engine(settings)
    with (
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        _factory(engine)(bind=conn) as session,
    ):
        yield session


@contextmanager
def snapshot(settings: Settings | None = None) -> Iterator[Session]:
    """A read-only REPEATABLE READ transaction: every statement in it sees one snapshot."""
    engine = get_engine(settings)
    with (
        engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        ) as conn,
        _factory(engine)(bind=conn) as session,
        session.begin(),
    ):
        yield session


async def connect_async(settings: Settings, *, purpose: str) -> psycopg.AsyncConnection[Any]:
    """A raw psycopg asyncio connection in autocommit, for one task that owns it (the intake
    writer): no pool, no SQLAlchemy adapter between it and the driver."""
    return await psycopg.AsyncConnection.connect(
        _dsn(settings), autocommit=True, **_connect_args(settings, purpose=purpose)
    )


def connect_listen(settings: Settings, *, channel: str) -> psycopg.Connection[Any]:
    """A raw psycopg connection in autocommit that LISTENs on `channel` (the relay's)."""
    conn = psycopg.connect(
        _dsn(settings), autocommit=True, **_connect_args(settings, purpose="listen")
    )
    try:
        conn.execute(f"LISTEN {channel}")
    except BaseException:
        conn.close()
        raise
    return conn
