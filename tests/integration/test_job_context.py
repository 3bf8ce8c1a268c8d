"""What a handler writes, and when it commits: run_batch in process on the real ledger, with
each job committing on its own and with a batch's outcomes committed together (group commit)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.exceptions import Reject
from sqlalchemy import CTE, Column, Insert, MetaData, String, Table, insert, literal, select, text
from sqlalchemy.dialects.postgresql import UUID

from config import Settings
from errors import RetryableError
from store.db import get_engine, transaction
from store.models import Job
from tasks.context import JobContext
from tasks.registry import JobSpec, domains
from tests.support.api import submit_all
from workers.runner import run_batch

# A table of this test's own (in the run's database) for what handlers write.
NOTES = Table(
    "test_job_context_notes",
    MetaData(),
    Column("job_id", UUID(as_uuid=True)),
    Column("kind", String),
)
NOTE = text("INSERT INTO test_job_context_notes (job_id, kind) VALUES (:id, :kind)")


@pytest.fixture(autouse=True)
def notes_table(settings: Settings) -> Iterator[None]:
    NOTES.create(get_engine(settings))
    yield
    NOTES.drop(get_engine(settings))


def _completion_note(moved: CTE) -> Insert:
    row = select(moved.c.id, literal("on_success")).select_from(moved)
    return insert(NOTES).from_select(["job_id", "kind"], row)


def notes(settings: Settings, job_id: uuid.UUID) -> list[str]:
    """The kinds of note the handler left for `job_id`."""
    with transaction(settings) as s:
        return sorted(s.scalars(select(NOTES.c.kind).where(NOTES.c.job_id == job_id)).all())


@pytest.fixture(params=[False, True], ids=["per-job-commit", "group-commit"])
def spec(request: pytest.FixtureRequest, settings: Settings) -> JobSpec:
    """system.echo's spec, committing each job on its own or the batch together."""
    echo = domains(settings).spec("system.echo")
    return dataclasses.replace(echo, group_commit=request.param)


def run(settings: Settings, spec: JobSpec, handler: Any) -> tuple[uuid.UUID, str, str]:
    """Run one system.echo job through `handler`: its id, outcome and final state."""
    [job_id] = submit_all(settings, [("system.echo", {"n": 1})])
    outcomes = run_batch([str(job_id)], spec=spec, handler=handler, settings=settings)
    with transaction(settings) as s:
        state = s.get_one(Job, job_id).state
    return job_id, outcomes[str(job_id)], state


def test_writes_in_the_job_transaction_commit_with_success(
    settings: Settings, spec: JobSpec, clean_ledger: None
) -> None:
    def handler(ctx: JobContext, payload: Any) -> dict[str, str]:
        ctx.session.execute(NOTE, {"id": ctx.job.id, "kind": "session"})
        ctx.on_success([_completion_note], {})
        return {"ok": "yes"}

    job_id, outcome, state = run(settings, spec, handler)
    assert (outcome, state) == ("succeeded", "succeeded")
    assert notes(settings, job_id) == ["on_success", "session"]


def test_a_failed_job_keeps_its_autocommit_writes_and_loses_the_rest(
    settings: Settings, spec: JobSpec, clean_ledger: None
) -> None:
    def handler(ctx: JobContext, payload: Any) -> None:
        ctx.autocommit.execute(NOTE, {"id": ctx.job.id, "kind": "autocommit"})
        ctx.session.execute(NOTE, {"id": ctx.job.id, "kind": "session"})
        ctx.on_success([_completion_note], {})
        raise RetryableError("the far side is down")

    job_id, outcome, state = run(settings, spec, handler)
    assert (outcome, state) == ("retrying", "retrying")
    assert notes(settings, job_id) == ["autocommit"]


def test_a_handler_that_never_opens_a_transaction_still_commits_its_success(
    settings: Settings, spec: JobSpec, clean_ledger: None
) -> None:
    def handler(ctx: JobContext, payload: Any) -> None:
        ctx.on_success([_completion_note], {})

    job_id, outcome, state = run(settings, spec, handler)
    assert (outcome, state) == ("succeeded", "succeeded")
    assert notes(settings, job_id) == ["on_success"]


FORGET = text(
    "UPDATE jobs SET state = 'queued', attempts = 0, lease_until = NULL, claim_token = NULL"
    " WHERE id = :id"
)


def test_a_batch_whose_claim_was_forgotten_hands_its_message_back(
    settings: Settings, clean_ledger: None
) -> None:
    def handler(ctx: JobContext, payload: Any) -> dict[str, str]:
        with transaction(settings) as s:  # what PostgreSQL holds after a crash forgot the claim
            s.execute(FORGET, {"id": ctx.job.id})
        ctx.on_success([_completion_note], {})
        return {"ran": "once"}

    [job_id] = submit_all(settings, [("system.echo", {"n": 1})])
    with pytest.raises(Reject) as handed_back:
        run_batch(
            [str(job_id)],
            spec=domains(settings).spec("system.echo"),
            handler=handler,
            settings=settings,
        )
    assert handed_back.value.requeue
    # The finish found no claim of its token: nothing recorded, the job claimable again.
    with transaction(settings) as s:
        job = s.get_one(Job, job_id)
        assert (job.state, job.attempts, job.result) == ("queued", 0, None)
    assert notes(settings, job_id) == []


def test_a_batch_whose_ledger_connection_died_hands_its_message_back(
    settings: Settings, spec: JobSpec, clean_ledger: None
) -> None:
    def handler(ctx: JobContext, payload: Any) -> None:
        # A PostgreSQL crash in mid-batch: it forgot the claim, and took the connections the
        # outcome was to be recorded on (the job's transaction, or the group's, and the batch's).
        pids = [
            c.execute(text("SELECT pg_backend_pid()")).scalar_one()
            for c in (ctx.session, ctx.autocommit)
        ]
        with transaction(settings) as s:
            s.execute(FORGET, {"id": ctx.job.id})
            s.execute(text("SELECT pg_terminate_backend(p) FROM unnest(:pids) p"), {"pids": pids})

    [job_id] = submit_all(settings, [("system.echo", {"n": 1})])
    # Acking the message instead would strand the job: claimable, and nothing left to claim it.
    with pytest.raises(Reject) as handed_back:
        run_batch([str(job_id)], spec=spec, handler=handler, settings=settings)
    assert handed_back.value.requeue
    with transaction(settings) as s:
        assert s.get_one(Job, job_id).state == "queued"
