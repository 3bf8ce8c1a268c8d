"""Which task events an attempt sends, under which uuid, when they are published, and that a
lost one fails nothing."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kombu.exceptions import OperationalError

from errors import PermanentError, RetryableError
from store.jobs import ClaimedJob, ReapedJob
from store.states import JobState, WorkerOutcome
from workers.task_events import NO_EVENTS, AttemptEvents, attempt_uuid

JOB = ClaimedJob(
    id=uuid.UUID("0b4a6c52-41f4-4a53-a25c-0c1b5f0bd2a1"),
    type="system.fail",
    queue="maintenance",
    payload={},
    priority=5,
    attempt=2,
    max_attempts=3,
    producer="tests",
    claim=uuid.UUID("5f0e3c1a-9d7b-4e2a-8c61-2b7d9e4f0a13"),
)


class RecordingDispatcher:
    """Keeps what it is asked to send and when it is flushed; fails both while `down`."""

    def __init__(self, *, down: bool = False) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.flushed_after: list[int] = []  # how many events had been sent at each flush
        self.down = down

    def send(self, kind: str, **fields: Any) -> None:
        if self.down:
            raise OperationalError("Redis went away")
        self.sent.append((kind, fields))

    def flush(self, *, errors: bool) -> None:
        if self.down:
            raise OperationalError("Redis went away")
        self.flushed_after.append(len(self.sent))


def test_an_attempt_is_received_and_started_under_its_own_uuid() -> None:
    dispatcher = RecordingDispatcher()
    AttemptEvents(dispatcher).started(JOB)
    [(received, fields), (started, started_fields)] = dispatcher.sent
    assert (received, started) == ("task-received", "task-started")
    assert fields["uuid"] == started_fields["uuid"] == f"{JOB.id}:2" == attempt_uuid(JOB.id, 2)
    assert fields["name"] == "system.fail"
    assert f"'job_id': '{JOB.id}'" in fields["kwargs"]
    assert fields["retries"] == 1


def test_a_start_is_published_while_the_attempt_runs_without_a_call_from_it() -> None:
    dispatcher = RecordingDispatcher()
    events = AttemptEvents(dispatcher, flush_after=0.05)
    events.started(JOB)  # the handler now runs for as long as it likes
    deadline = time.monotonic() + 10
    while not dispatcher.flushed_after and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dispatcher.flushed_after == [2]  # received and started, by the delayed flush
    events.close()


def test_fast_attempts_share_one_publish_and_nothing_is_sent_after_close() -> None:
    dispatcher = RecordingDispatcher()
    events = AttemptEvents(dispatcher, flush_after=60.0)
    for _ in range(3):
        events.started(JOB)
        events.finished(JOB, WorkerOutcome.SUCCEEDED, result=None, seconds=0.0)
    assert dispatcher.flushed_after == []  # no publish per start
    events.close()
    assert dispatcher.flushed_after == [9]  # the batch's end publishes all of them at once
    events.started(JOB)
    events.flush()
    assert len(dispatcher.sent) == 9
    assert dispatcher.flushed_after == [9]


def test_each_outcome_is_the_task_state_an_operator_expects() -> None:
    cases = [
        (WorkerOutcome.SUCCEEDED, None, "task-succeeded"),
        (WorkerOutcome.RETRYING, RetryableError("smtp down"), "task-retried"),
        (WorkerOutcome.DEAD, PermanentError("bad address"), "task-failed"),
        (WorkerOutcome.LEASE_LOST, None, "task-revoked"),
    ]
    for outcome, error, kind in cases:
        dispatcher = RecordingDispatcher()
        AttemptEvents(dispatcher).finished(
            JOB, outcome, result={"ok": True}, error=error, seconds=0.1
        )
        [(sent, fields)] = dispatcher.sent
        assert sent == kind
        assert fields["uuid"] == f"{JOB.id}:2"
        if error is not None:
            assert str(error) in fields["exception"]


def test_unrun_outcomes_send_nothing_and_a_lost_event_raises_nothing() -> None:
    dispatcher = RecordingDispatcher()
    for outcome in (WorkerOutcome.RELEASED, WorkerOutcome.DROPPED):
        AttemptEvents(dispatcher).finished(JOB, outcome, seconds=0.0)
    assert dispatcher.sent == []
    AttemptEvents(RecordingDispatcher(down=True)).started(JOB)
    AttemptEvents(RecordingDispatcher(down=True)).flush()
    NO_EVENTS.finished(JOB, WorkerOutcome.SUCCEEDED, seconds=0.0)


def test_a_lost_attempt_is_retried_or_failed_as_the_reaper_left_its_job() -> None:
    for state, kind in ((JobState.RETRYING, "task-retried"), (JobState.DEAD, "task-failed")):
        dispatcher = RecordingDispatcher()
        AttemptEvents(dispatcher).lost(ReapedJob(id=JOB.id, type=JOB.type, state=state, attempt=3))
        [(sent, fields)] = dispatcher.sent
        assert (sent, fields["uuid"]) == (kind, f"{JOB.id}:3")
        assert "WorkerLost" in fields["exception"]


class BrokenOnce(RecordingDispatcher):
    """Fails its first flush with an error nobody expected."""

    def flush(self, *, errors: bool) -> None:
        if not self.flushed_after and not getattr(self, "failed", False):
            self.failed = True
            raise ValueError("a bug in a dispatcher")
        super().flush(errors=errors)


def test_the_delayed_flush_outlives_an_unexpected_error() -> None:
    broken, fine = BrokenOnce(), RecordingDispatcher()
    first, second = AttemptEvents(broken, flush_after=0.01), AttemptEvents(fine, flush_after=0.01)
    first.started(JOB)
    deadline = time.monotonic() + 10
    while not getattr(broken, "failed", False) and time.monotonic() < deadline:
        time.sleep(0.01)
    second.started(JOB)
    while not fine.flushed_after and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fine.flushed_after == [2]  # the thread survived the first one's error
    first.close()
    second.close()
