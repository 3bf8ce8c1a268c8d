"""Many rows in one fixed-shape INSERT: `INSERT … SELECT … FROM unnest(<one array per column>)`.

The statement text does not depend on the number of rows, so the driver parses it once; a
multi-row VALUES list (or SQLAlchemy's insertmanyvalues) is new text for every batch size and
costs the intake more CPU than everything else it does per job. Column types come from the
models, so the statement stays true to the schema.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from store.models import Job, OutboxMessage

JOB_COLUMNS = (
    "id", "type", "queue", "state", "payload", "priority", "max_attempts", "producer",
    "idempotency_key", "request_hash", "run_at", "attempts", "lost_count", "callback_url",
    "callback_secret",
)  # fmt: skip
OUTBOX_COLUMNS = ("job_id", "job_type", "queue", "priority", "available_at")


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


def _arrays(table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> dict:
    jsonb = {c for c in columns if isinstance(table.c[c].type, postgresql.JSONB)}
    return {
        c: [Jsonb(r[c]) if c in jsonb and r[c] is not None else r[c] for r in rows] for c in columns
    }


def insert_job_rows(session: Session, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert jobs (`run_at` None means now); returns the ids inserted, not those whose
    (producer, idempotency_key) already existed."""
    table = Job.__table__
    sql = _statement(
        table, JOB_COLUMNS, "run_at",
        "ON CONFLICT (producer, idempotency_key) WHERE idempotency_key IS NOT NULL "
        "DO NOTHING RETURNING id",
    )  # fmt: skip
    result = session.connection().exec_driver_sql(sql, _arrays(table, JOB_COLUMNS, rows))
    return {row[0] for row in result}


def insert_outbox_rows(session: Session, rows: Sequence[dict[str, Any]], *, notify: str) -> None:
    """Insert outbox rows (`available_at` None means now) and NOTIFY `notify`, one round trip."""
    table = OutboxMessage.__table__
    insert = _statement(table, OUTBOX_COLUMNS, "available_at", "RETURNING 1")
    sql = f"WITH queued AS ({insert}) SELECT pg_notify('{notify}', '')"
    session.connection().exec_driver_sql(sql, _arrays(table, OUTBOX_COLUMNS, rows))
