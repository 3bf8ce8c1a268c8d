"""The raw SQL: statements a benchmark showed the ORM and Core too slow for, in one place.

Each text is fixed whatever the number of rows (they travel as one JSON document, or as one
array per column), so the driver parses and then prepares it once; a multi-row VALUES list, or
SQLAlchemy's insertmanyvalues, is new text for every batch size and cost the intake more CPU
than everything else it does per job. Tables, columns and their types come from the models, so
the text stays true to the schema. Every statement here runs unchanged on a SQLAlchemy
session's connection (`exec_driver_sql`) and on a raw psycopg one: the parameters are psycopg's.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from store.models import ApiKey, Job, OutboxMessage, table_of

JOB_COLUMNS = (
    "id", "type", "queue", "state", "payload", "priority", "max_attempts", "producer",
    "idempotency_key", "request_hash", "run_at", "attempts", "lost_count", "callback_url",
    "callback_secret",
)  # fmt: skip
# What an outbox row is made of, whichever statement adds it.
OUTBOX_COLUMNS = ("job_id", "job_type", "queue", "priority", "available_at")


def _names(columns: tuple[str, ...]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _type(table: Table, column: str) -> str:
    return str(table.c[column].type.compile(dialect=postgresql.dialect()))


def _queue_outbox(rows: str) -> str:
    """The CTEs that add outbox rows — `rows` selects OUTBOX_COLUMNS — then the SELECT that
    wakes the relay at commit, returning each row's job id."""
    return (
        f"queued AS (INSERT INTO {OutboxMessage.__tablename__} ({_names(OUTBOX_COLUMNS)}) "
        f"{rows} RETURNING job_id) "
        # PostgreSQL delivers a transaction's identical notifications once.
        "SELECT job_id, pg_notify(%(notify)s, '') FROM queued"
    )


def _insert_jobs() -> str:
    jobs = Job.__tablename__
    picks = ", ".join(
        'coalesce("run_at", now())' if c == "run_at" else f'"{c}"' for c in JOB_COLUMNS
    )
    return (
        f"WITH new_jobs AS (INSERT INTO {jobs} ({_names(JOB_COLUMNS)}) SELECT {picks} "
        f"FROM jsonb_populate_recordset(NULL::{jobs}, %(rows)s::jsonb) "
        "ON CONFLICT (producer, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
        "RETURNING id, type, queue, priority, run_at), "
        + _queue_outbox("SELECT id, type, queue, priority, run_at FROM new_jobs")
    )


def _insert_outbox() -> str:
    table = table_of(OutboxMessage)
    columns = OUTBOX_COLUMNS[:-1]  # one `available_at` for all the rows: a parameter of its own
    arrays = ", ".join(f"%({c})s::{_type(table, c)}[]" for c in columns)
    due = f"coalesce(%(available_at)s::{_type(table, 'available_at')}, now())"
    names = _names(columns)
    return "WITH " + _queue_outbox(f"SELECT {names}, {due} FROM unnest({arrays}) AS rows({names})")


# Jobs (`rows`: one JSON array of JOB_COLUMNS objects, `run_at` null meaning now), their outbox
# rows and the NOTIFY in one statement, atomic on its own; a job whose (producer,
# idempotency_key) exists is skipped. Returns the job ids inserted.
INSERT_JOBS = _insert_jobs()
# Outbox rows (one array per column, all due at `available_at`, null meaning now) and the NOTIFY.
INSERT_OUTBOX = _insert_outbox()
# (producer, idempotency_key, id, request_hash) of the jobs holding these keys (`producers`,
# `keys`: two arrays of one pair each).
JOBS_BY_KEY = (
    f"SELECT j.producer, j.idempotency_key, j.id, j.request_hash FROM {Job.__tablename__} j "
    "JOIN unnest(%(producers)s::text[], %(keys)s::text[]) AS k(producer, key) "
    "ON j.producer = k.producer AND j.idempotency_key = k.key "
    "WHERE j.idempotency_key IS NOT NULL"
)
# The API keys whose ids are in `ids` (the intake writer's one query per batch).
KEYS_BY_ID = (
    f"SELECT id, name, secret_hash, scopes, revoked_at FROM {ApiKey.__tablename__} "
    "WHERE id = ANY(%(ids)s)"
)
