"""The group-commit writer: one refused row must not fail the rest of its batch."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import IntegrityError

from config import Settings
from producers.api.intake import IntakeWriter
from producers.enqueue import Inserted, InvalidJobError, JobDraft, draft_job
from store.db import create_async
from tests.api_support import count_rows


def test_a_row_postgres_refuses_fails_alone(settings: Settings, make_key) -> None:
    token = make_key()
    good = draft_job("system.echo", {"n": 1}, producer="", settings=settings)
    # A draft that passed validation yet breaks a table constraint (priority 0 to 9).
    bad = JobDraft(
        {**draft_job("system.echo", {}, producer="", settings=settings).values, "priority": 42}
    )

    async def run() -> list[object]:
        writer = IntakeWriter(create_async(settings))
        both = asyncio.gather(
            writer.submit(token, good), writer.submit(token, bad), return_exceptions=True
        )
        await asyncio.sleep(0)  # both are queued before the writer starts: one batch
        writer.start()
        try:
            return await both
        finally:
            await writer.stop()

    first, second = asyncio.run(run())
    assert isinstance(first, Inserted) and first.created
    assert isinstance(second, IntegrityError)
    assert count_rows(settings, "jobs") == 1
    assert count_rows(settings, "outbox") == 1


def test_a_refused_body_waits_for_the_key_check(settings: Settings, make_key) -> None:
    refusal = InvalidJobError("bad", field="payload.x")

    async def run(token: str) -> object:
        writer = IntakeWriter(create_async(settings))
        writer.start()
        try:
            return await asyncio.gather(writer.submit(token, refusal), return_exceptions=True)
        finally:
            await writer.stop()

    (with_good_key,) = asyncio.run(run(make_key()))
    assert with_good_key is refusal
    (with_bad_key,) = asyncio.run(run("sy_000000000000_nope"))
    assert getattr(with_bad_key, "status", None) == 401


@pytest.fixture(autouse=True)
def _empty(clean_ledger: None) -> None:
    """Each test starts from empty tables."""
