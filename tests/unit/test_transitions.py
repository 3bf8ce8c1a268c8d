"""Job state transitions: the rule (which states each may start from) and the SQL built from it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ClauseElement

from store.job_actions import cancel_job, replay_job
from store.jobs import (
    ClaimedJob,
    LeaseLostError,
    claim_jobs,
    mark_dead,
    mark_retrying,
    mark_succeeded,
    reap_expired_leases,
    release_jobs,
)
from store.models import Job
from store.outbox import DueMessage, mark_sent
from store.states import TERMINAL_STATES, JobState
from store.transitions import ALLOWED_FROM, Transition
from tests.support.recording_session import RecordingSession

pytestmark = pytest.mark.usefixtures("no_io")

JOB = ClaimedJob(uuid.uuid4(), "system.echo", "maintenance", {}, 0, 1, 5, "svc", uuid.uuid4())
RUNS: dict[Transition, Callable[[Session], Any]] = {
    Transition.PUBLISH: lambda s: mark_sent(s, [DueMessage(1, JOB.id, JOB.type, JOB.queue, 0)]),
    Transition.CLAIM: lambda s: claim_jobs(
        s, [JOB.id], job_type="system.echo", worker="w", lease_seconds=30
    ),
    Transition.RELEASE: lambda s: release_jobs(s, [JOB]),
    Transition.SUCCEED: lambda s: mark_succeeded(s, JOB, result=None),
    Transition.RETRY: lambda s: mark_retrying(s, JOB, error={}, delay_seconds=1),
    Transition.FAIL: lambda s: mark_dead(s, JOB, error={}),
    Transition.CANCEL: lambda s: cancel_job(s, JOB.id),
    Transition.REPLAY: lambda s: replay_job(s, JOB.id, extra_attempts=1),
    Transition.REAP: lambda s: reap_expired_leases(s, quarantine_after=3),
}


def accepting(state: JobState) -> set[Transition]:
    """The transitions that may move a job out of `state`."""
    return {t for t, sources in ALLOWED_FROM.items() if state in sources}


def guarded_states(statements: Iterable[Executable]) -> set[str]:
    """Every state a `jobs.state = …` / `jobs.state IN (…)` term of these statements admits."""
    jobs = Job.__table__
    found: set[str] = set()
    for statement in statements:
        for node in visitors.iterate(cast(ClauseElement, statement)):
            if not isinstance(node, BinaryExpression):
                continue
            left, right = node.left, node.right
            if getattr(left, "table", None) is jobs and getattr(left, "key", None) == "state":
                assert isinstance(right, BindParameter), f"a state guard not built as data: {node}"
                value: Any = right.value
                found.update(value if isinstance(value, list | tuple) else [value])
    return found


def test_succeeded_and_cancelled_are_final() -> None:
    assert accepting(JobState.SUCCEEDED) == set()
    assert accepting(JobState.CANCELLED) == set()


def test_a_dead_job_moves_only_when_replayed() -> None:
    assert accepting(JobState.DEAD) == {Transition.REPLAY}


def test_a_running_job_is_moved_only_by_its_attempt_ending_or_being_taken_back() -> None:
    # Never claimed twice, cancelled, published or replayed while its worker holds it.
    ends = {Transition.SUCCEED, Transition.RETRY, Transition.FAIL}
    assert accepting(JobState.RUNNING) == ends | {Transition.RELEASE, Transition.REAP}


def test_a_job_can_be_cancelled_exactly_while_it_could_still_be_claimed() -> None:
    assert set(ALLOWED_FROM[Transition.CANCEL]) == set(ALLOWED_FROM[Transition.CLAIM])
    # The worker may receive a message before the relay's commit marks the job queued.
    assert JobState.ACCEPTED in ALLOWED_FROM[Transition.CLAIM]


def test_publishing_never_moves_a_job_a_worker_already_has() -> None:
    assert JobState.RUNNING not in ALLOWED_FROM[Transition.PUBLISH]
    assert JobState.QUEUED not in ALLOWED_FROM[Transition.PUBLISH]


def test_every_state_but_the_terminal_ones_has_a_way_out() -> None:
    stuck = {s for s in JobState if not accepting(s)}
    assert stuck == TERMINAL_STATES - {JobState.DEAD}


@pytest.mark.parametrize("transition", list(Transition))
def test_each_statement_admits_exactly_the_states_its_transition_allows(
    transition: Transition,
) -> None:
    fake = RecordingSession()
    with suppress(LeaseLostError):  # the fake matches no row, so a finish finds its lease gone
        RUNS[transition](fake.as_session())
    assert fake.statements, "the transition ran no statement"
    assert guarded_states(fake.statements) == set(ALLOWED_FROM[transition])
