"""Group commit (workers.group_commit): a batch's outcomes in one transaction, each job's writes
isolated in its savepoint, and nothing reported before the commit. run_batch in process, on
the real ledger; the kill -9 cases are the worker crash tests', which run system.echo."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.exceptions import Reject
from sqlalchemy import Column, MetaData, String, Table, select, text, update
from sqlalchemy.dialects.postgresql import UUID

from config import Settings
from errors import PermanentError, RetryableError
from store.db import autocommit, get_engine, transaction
from store.jobs import ClaimedJob
from store.models import Job
from store.states import WorkerOutcome
from tasks.context import JobContext
from tasks.registry import JobSpec, domains
from tests.support.api import submit_all
from workers.runner import run_batch
from workers.task_events import AttemptEvents

NOTES = Table(
    "test_group_commit_notes",
    MetaData(),
    Column("job_id", UUID(as_uuid=True)),
    Column("kind", String),
)
NOTE = text("INSERT INTO test_group_commit_notes (job_id, kind) VALUES (:id, :kind)")


@pytest.fixture(autouse=True)
def notes_table(settings: Settings) -> Iterator[None]:
    NOTES.create(get_engine(settings))
    yield
    NOTES.drop(get_engine(settings))


@pytest.fixture
def grouped(settings: Settings) -> JobSpec:
    """system.echo's spec, which declares group commit."""
    spec = domains(settings).spec("system.echo")
    assert spec.group_commit
    return spec


def submit(settings: Settings, n: int) -> list[uuid.UUID]:
    return submit_all(settings, [("system.echo", {"n": i}) for i in range(n)])


def jobs(settings: Settings, ids: list[uuid.UUID]) -> list[Job]:
    with transaction(settings) as s:
        rows = s.scalars(select(Job).where(Job.id.in_(ids))).all()
        by_id = {j.id: j for j in rows}
        s.expunge_all()
    return [by_id[i] for i in ids]


def notes(settings: Settings) -> set[tuple[uuid.UUID, str]]:
    with transaction(settings) as s:
        return {(r.job_id, r.kind) for r in s.execute(select(NOTES))}


def test_a_batch_commits_every_outcome_in_one_transaction(
    settings: Settings, grouped: JobSpec, clean_ledger: None
) -> None:
    ids = submit(settings, 5)

    def handler(ctx: JobContext, payload: Any) -> dict[str, int]:
        ctx.session.execute(NOTE, {"id": ctx.job.id, "kind": "done"})
        return {"n": payload.n}

    outcomes = run_batch([str(i) for i in ids], spec=grouped, handler=handler, settings=settings)
    assert set(outcomes.values()) == {WorkerOutcome.SUCCEEDED}
    done = jobs(settings, ids)
    assert [(j.state, j.result) for j in done] == [("succeeded", {"n": n}) for n in range(5)]
    # now() is the transaction's start: one value for all five is one transaction.
    assert len({j.finished_at for j in done}) == 1
    assert notes(settings) == {(i, "done") for i in ids}


def test_each_commit_alone_without_group_commit(
    settings: Settings, grouped: JobSpec, clean_ledger: None
) -> None:
    ids = submit(settings, 3)
    alone = dataclasses.replace(grouped, group_commit=False)
    run_batch([str(i) for i in ids], spec=alone, handler=lambda ctx, p: None, settings=settings)
    assert len({j.finished_at for j in jobs(settings, ids)}) == 3


def test_a_failing_job_rolls_back_alone_and_its_failure_commits_with_the_batch(
    settings: Settings, grouped: JobSpec, clean_ledger: None
) -> None:
    ids = submit(settings, 4)

    def handler(ctx: JobContext, payload: Any) -> None:
        ctx.session.execute(NOTE, {"id": ctx.job.id, "kind": "written"})
        if payload.n == 1:
            raise RetryableError("the far side is down")
        if payload.n == 2:
            raise PermanentError("never")

    outcomes = run_batch([str(i) for i in ids], spec=grouped, handler=handler, settings=settings)
    assert [outcomes[str(i)] for i in ids] == [
        WorkerOutcome.SUCCEEDED,
        WorkerOutcome.RETRYING,
        WorkerOutcome.DEAD,
        WorkerOutcome.SUCCEEDED,
    ]
    done = jobs(settings, ids)
    assert [j.state for j in done] == ["succeeded", "retrying", "dead", "succeeded"]
    assert done[1].error is not None and "far side" in done[1].error["message"]
    # The failed jobs' writes rolled back to their savepoints; the others' stand.
    assert notes(settings) == {(ids[0], "written"), (ids[3], "written")}


def test_a_job_whose_lease_was_lost_rolls_back_alone(
    settings: Settings, grouped: JobSpec, clean_ledger: None
) -> None:
    ids = submit(settings, 3)

    def handler(ctx: JobContext, payload: Any) -> None:
        ctx.session.execute(NOTE, {"id": ctx.job.id, "kind": "written"})
        if payload.n == 0:
            # The reaper (another connection) takes the second job back while the first runs.
            with autocommit(settings) as other:
                other.execute(update(Job).where(Job.id == ids[1]).values(state="retrying"))

    # A claim not held to its end hands the message back, after the group committed.
    with pytest.raises(Reject):
        run_batch([str(i) for i in ids], spec=grouped, handler=handler, settings=settings)
    assert [j.state for j in jobs(settings, ids)] == ["succeeded", "retrying", "succeeded"]
    assert notes(settings) == {(ids[0], "written"), (ids[2], "written")}


class _Watching(AttemptEvents):
    """Task events that read, at each `finished`, what the ledger says from outside."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(None)
        self.settings = settings
        self.seen: list[tuple[uuid.UUID, WorkerOutcome, str]] = []

    def finished(self, job: ClaimedJob, outcome: WorkerOutcome, **kw: Any) -> None:
        with transaction(self.settings) as s:
            self.seen.append((job.id, outcome, s.get_one(Job, job.id).state))


def test_nothing_is_reported_finished_before_the_ledger_has_it(
    settings: Settings, grouped: JobSpec, clean_ledger: None
) -> None:
    ids = submit(settings, 3)
    events = _Watching(settings)

    def handler(ctx: JobContext, payload: Any) -> None:
        if payload.n == 1:
            raise PermanentError("never")

    run_batch(
        [str(i) for i in ids], spec=grouped, handler=handler, settings=settings, events=events
    )
    # Flower would have been told each outcome only once another connection could read it.
    assert events.seen == [
        (ids[0], WorkerOutcome.SUCCEEDED, "succeeded"),
        (ids[1], WorkerOutcome.DEAD, "dead"),
        (ids[2], WorkerOutcome.SUCCEEDED, "succeeded"),
    ]


def test_a_group_whose_commit_fails_records_nothing_and_hands_its_message_back(
    settings: Settings, grouped: JobSpec, clean_ledger: None
) -> None:
    ids = submit(settings, 3)
    with transaction(settings) as s:  # checked only at COMMIT, when both rows are in
        s.execute(
            text(
                "ALTER TABLE test_group_commit_notes ADD CONSTRAINT one_note_per_kind"
                " UNIQUE (kind) DEFERRABLE INITIALLY DEFERRED"
            )
        )

    def handler(ctx: JobContext, payload: Any) -> None:
        ctx.session.execute(NOTE, {"id": ctx.job.id, "kind": "same" if payload.n < 2 else "own"})

    with pytest.raises(Reject):
        run_batch([str(i) for i in ids], spec=grouped, handler=handler, settings=settings)
    # Nothing committed: every job is still running under its claim, for the reaper.
    assert [j.state for j in jobs(settings, ids)] == ["running"] * 3
    assert notes(settings) == set()
