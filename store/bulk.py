"""Jobs in bulk: the intake's fixed-shape statements (`store.sql`), on a session or a raw
asyncio connection (the intake writer's). Each pair of twins shares its parameters and the
reading of its rows, and returns the same thing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy.orm import Session

from store.outbox import NOTIFY_CHANNEL
from store.sql import INSERT_JOBS, JOBS_BY_KEY

KeyedJobs = dict[tuple[str, str], tuple[uuid.UUID, str | None]]


def _jobs_params(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    # One JSON document for all rows (a column missing from a row is NULL): json.dumps runs in
    # C, where an array per column is dumped element by element in Python.
    return {"rows": json.dumps(list(rows), default=str), "notify": NOTIFY_CHANNEL}


def insert_job_rows(session: Session, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert jobs (`run_at` None: now) with their outbox rows and NOTIFY; returns the ids
    inserted (not those whose idempotency key already existed: they get no outbox row)."""
    result = session.connection().exec_driver_sql(INSERT_JOBS, _jobs_params(rows))
    return {row[0] for row in result}


async def insert_job_rows_async(
    conn: AsyncConnection[Any], rows: Sequence[dict[str, Any]]
) -> set[uuid.UUID]:
    """`insert_job_rows` on a raw psycopg connection; in autocommit it commits on its own."""
    cursor = await conn.execute(INSERT_JOBS, _jobs_params(rows))
    return {row[0] for row in await cursor.fetchall()}


def _by_key_params(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    pairs = list(keys)
    return {"producers": [p for p, _ in pairs], "keys": [k for _, k in pairs]}


def _keyed(rows: Iterable[Sequence[Any]]) -> KeyedJobs:
    return {(p, k): (job_id, fingerprint) for p, k, job_id, fingerprint in rows}


def jobs_by_key(session: Session, keys: Iterable[tuple[str, str]]) -> KeyedJobs:
    """(id, request_hash) of the jobs with these (producer, idempotency_key) pairs."""
    return _keyed(session.connection().exec_driver_sql(JOBS_BY_KEY, _by_key_params(keys)))


async def jobs_by_key_async(
    conn: AsyncConnection[Any], keys: Iterable[tuple[str, str]]
) -> KeyedJobs:
    """`jobs_by_key` on a raw psycopg connection."""
    cursor = await conn.execute(JOBS_BY_KEY, _by_key_params(keys))
    return _keyed(await cursor.fetchall())
