"""The group-commit writer: one refused row fails alone; a lost connection fails no one else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg import OperationalError
from psycopg.errors import CheckViolation

from config import Settings
from errors import InvalidFieldError
from producers.api.intake import WRITER, IntakeWriter
from store.db import application_name, connect_async
from tasks.enqueue import Inserted, JobDraft, draft_job
from tests.support.api import count_rows
from tests.support.keys import MakeKey


def test_a_row_postgres_refuses_fails_alone(settings: Settings, make_key: MakeKey) -> None:
    token = make_key()
    good = draft_job("system.echo", {"n": 1}, producer="", settings=settings)
    # A draft that passed validation yet breaks a table constraint (priority 0 to 9).
    bad = JobDraft(
        {**draft_job("system.echo", {}, producer="", settings=settings).values, "priority": 42}
    )

    async def run() -> list[Inserted | BaseException]:
        writer = IntakeWriter(settings)
        both = asyncio.gather(
            writer.submit(token, good), writer.submit(token, bad), return_exceptions=True
        )
        await asyncio.sleep(0)  # both are queued before the writer starts: one batch
        writer.start()
        try:
            return list(await both)
        finally:
            await writer.stop()

    first, second = asyncio.run(run())
    assert isinstance(first, Inserted) and first.created
    assert isinstance(second, CheckViolation)
    assert count_rows(settings, "jobs") == 1
    assert count_rows(settings, "outbox") == 1


def test_a_refused_body_waits_for_the_key_check(settings: Settings, make_key: MakeKey) -> None:
    refusal = InvalidFieldError("bad", field="payload.x")

    async def run(token: str) -> list[Inserted | BaseException]:
        writer = IntakeWriter(settings)
        writer.start()
        try:
            return list(await asyncio.gather(writer.submit(token, refusal), return_exceptions=True))
        finally:
            await writer.stop()

    (with_good_key,) = asyncio.run(run(make_key()))
    assert with_good_key is refusal
    (with_bad_key,) = asyncio.run(run("sy_000000000000_nope"))
    assert getattr(with_bad_key, "status", None) == 401


@pytest.fixture(autouse=True)
def _empty(clean_ledger: None) -> None:
    """Each test starts from empty tables."""


def test_a_connection_broken_while_idle_is_replaced(settings: Settings, make_key: MakeKey) -> None:
    token = make_key()

    async def run() -> list[Inserted]:
        writer = IntakeWriter(settings)
        writer.start()
        try:
            first = await writer.submit(token, _draft(settings))
            await _terminate_intake_backends(settings)  # as a PostgreSQL restart would
            return [first, await writer.submit(token, _draft(settings))]
        finally:
            await writer.stop()

    outcomes = asyncio.run(run())
    assert all(o.created for o in outcomes)
    assert count_rows(settings, "jobs") == 2


def test_when_replays_cannot_be_looked_up_the_new_jobs_still_succeed(
    settings: Settings, make_key: MakeKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_key()
    earlier = _draft(settings, idempotency_key="k")

    async def lookup_fails(*_: object) -> object:
        raise OperationalError("connection lost after the commit")

    async def run() -> list[object]:
        writer = IntakeWriter(settings)
        writer.start()
        try:
            await writer.submit(token, earlier)
            monkeypatch.setattr("tasks.enqueue.jobs_by_key_async", lookup_fails)
            both = asyncio.gather(
                writer.submit(token, _draft(settings)),
                writer.submit(token, _draft(settings, idempotency_key="k")),
                return_exceptions=True,
            )
            return list(await both)
        finally:
            await writer.stop()

    fresh, replay = asyncio.run(run())
    assert isinstance(fresh, Inserted) and fresh.created
    assert isinstance(replay, OperationalError)
    assert count_rows(settings, "jobs") == 2
    assert count_rows(settings, "outbox") == 2


def _draft(settings: Settings, **options: Any) -> JobDraft:
    return draft_job("system.echo", {"n": 1}, producer="", settings=settings, **options)


async def _terminate_intake_backends(settings: Settings) -> None:
    """Close, server side, the intake writers' connections to the run's database."""
    async with await connect_async(settings, purpose="tests") as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [application_name(WRITER)],
        )
