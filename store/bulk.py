"""Many rows in one fixed-shape statement: `INSERT … SELECT … FROM <the rows as one parameter>`.

The statement text does not depend on the number of rows, so the driver parses (and then
prepares) it once; a multi-row VALUES list (or SQLAlchemy's insertmanyvalues) is new text for
every batch size and costs the intake more CPU than everything else it does per job. Jobs
travel as one JSON document read by `jsonb_populate_recordset` against the table's own row
type; outbox rows as `unnest(<one array per column>)`, typed from the models. Either way the
statement stays true to the schema.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from store.models import Job, OutboxMessage, table_of

JOB_COLUMNS = (
    "id", "type", "queue", "state", "payload", "priority", "max_attempts", "producer",
    "idempotency_key", "request_hash", "run_at", "attempts", "lost_count", "callback_url",
    "callback_secret",
)  # fmt: skip
OUTBOX_COLUMNS = ("job_id", "job_type", "queue", "priority", "available_at")

_BY_KEY = (
    f"SELECT j.producer, j.idempotency_key, j.id, j.request_hash FROM {Job.__tablename__} j "
    "JOIN unnest(%(producers)s::text[], %(keys)s::text[]) AS k(producer, key) "
    "ON j.producer = k.producer AND j.idempotency_key = k.key "
    "WHERE j.idempotency_key IS NOT NULL"
)
KeyedJobs = dict[tuple[str, str], tuple[uuid.UUID, str | None]]


@cache
def _statement(table: Table, columns: tuple[str, ...], default_now: str, suffix: str) -> str:
    dialect = postgresql.dialect()
    arrays = ", ".join(f"%({c})s::{table.c[c].type.compile(dialect=dialect)}[]" for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    picks = ", ".join(f'coalesce("{c}", now())' if c == default_now else f'"{c}"' for c in columns)
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {picks} "
        f"FROM unnest({arrays}) AS rows({names}) {suffix}"
    )


def _arrays(columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """One array per column; a column missing from a row is NULL."""
    return {c: [r.get(c) for r in rows] for c in columns}


@cache
def _jobs_statement() -> str:
    """INSERT the jobs, their outbox rows and a NOTIFY: one statement, so atomic on its own."""
    jobs, outbox = Job.__tablename__, OutboxMessage.__tablename__
    names = ", ".join(f'"{c}"' for c in JOB_COLUMNS)
    picks = ", ".join(
        'coalesce("run_at", now())' if c == "run_at" else f'"{c}"' for c in JOB_COLUMNS
    )
    return (
        f"WITH new_jobs AS (INSERT INTO {jobs} ({names}) SELECT {picks} "
        f"FROM jsonb_populate_recordset(NULL::{jobs}, %(rows)s::jsonb) "
        "ON CONFLICT (producer, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
        "RETURNING id, type, queue, priority, run_at), "
        f"queued AS (INSERT INTO {outbox} ({', '.join(OUTBOX_COLUMNS)}) "
        "SELECT id, type, queue, priority, run_at FROM new_jobs RETURNING job_id) "
        # PostgreSQL delivers a transaction's identical notifications once.
        "SELECT job_id, pg_notify(%(notify)s, '') FROM queued"
    )


def _jobs_params(rows: Sequence[dict[str, Any]], notify: str) -> dict[str, str]:
    # One JSON document for all rows (a column missing from a row is NULL): json.dumps runs in
    # C, where an array per column is dumped element by element in Python.
    return {"rows": json.dumps(list(rows), default=str), "notify": notify}


def insert_job_rows(
    session: Session, rows: Sequence[dict[str, Any]], *, notify: str
) -> set[uuid.UUID]:
    """Insert jobs (`run_at` None means now) with their outbox rows, and NOTIFY `notify`.

    Returns the ids inserted, not those whose (producer, idempotency_key) already existed
    (they get no outbox row).
    """
    result = session.connection().exec_driver_sql(_jobs_statement(), _jobs_params(rows, notify))
    return {row[0] for row in result}


async def insert_job_rows_async(
    conn: AsyncConnection[Any], rows: Sequence[dict[str, Any]], *, notify: str
) -> set[uuid.UUID]:
    """`insert_job_rows` on a raw psycopg connection; in autocommit it commits on its own."""
    cursor = await conn.execute(_jobs_statement(), _jobs_params(rows, notify))
    return {row[0] for row in await cursor.fetchall()}


def _by_key_params(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    pairs = list(keys)
    return {"producers": [p for p, _ in pairs], "keys": [k for _, k in pairs]}


def jobs_by_key(session: Session, keys: Iterable[tuple[str, str]]) -> KeyedJobs:
    """(id, request_hash) of the jobs with these (producer, idempotency_key) pairs."""
    result = session.connection().exec_driver_sql(_BY_KEY, _by_key_params(keys))
    return {(p, k): (job_id, fingerprint) for p, k, job_id, fingerprint in result}


async def jobs_by_key_async(
    conn: AsyncConnection[Any], keys: Iterable[tuple[str, str]]
) -> KeyedJobs:
    """`jobs_by_key` on a raw psycopg connection."""
    cursor = await conn.execute(_BY_KEY, _by_key_params(keys))
    return {(p, k): (job_id, fingerprint) for p, k, job_id, fingerprint in await cursor.fetchall()}


def insert_outbox_rows(session: Session, rows: Sequence[dict[str, Any]], *, notify: str) -> None:
    """Insert outbox rows (`available_at` None means now) and NOTIFY `notify`, one round trip."""
    table = table_of(OutboxMessage)
    insert = _statement(table, OUTBOX_COLUMNS, "available_at", "RETURNING 1")
    sql = f"WITH queued AS ({insert}) SELECT pg_notify('{notify}', '')"
    session.connection().exec_driver_sql(sql, _arrays(OUTBOX_COLUMNS, rows))
