"""Celery task events per job attempt: each attempt's outcome as Flower shows it.

A broker message carries a batch of jobs, so the message's own events would report one
SUCCESS for the whole batch whatever its jobs did. Job tasks therefore send no events of their
own (`send_events=False`); the runner reports every attempt of every job as a task instead:
uuid `<job_id>:<attempt>`, name the job type, kwargs naming the job, and the outcome as
SUCCESS, RETRY, FAILURE (dead) or REVOKED (lease lost). An attempt whose worker vanished
is settled by the reaper, which reports it as RETRY, or FAILURE if the job is now dead.

Each event would be a broker publish of its own; they are buffered instead and sent as one
`task.multi` message at most START_FLUSH_SECONDS after an attempt starts (by a thread of the
worker process that waits for that, whatever the handler is doing), when the buffer fills, and
at the batch's end. So a running job shows as STARTED within that bound, and a batch of fast
jobs costs a publish per START_FLUSH_SECONDS or per BUFFER_LIMIT events, not one per job:
measured in `bench.drain`, a publish at every start cost a third of the worker's throughput
(docs/performance.md).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from celery import Celery
from celery.utils.saferepr import saferepr

from logs import get_logger
from store.jobs import ClaimedJob, ReapedJob
from store.states import JobState, WorkerOutcome
from workers.relay import BROKER_ERRORS

log = get_logger("switchyard.worker")
REPR_MAX = 1_024  # Celery's own bound on a result's repr in its events
TRACEBACK_MAX = 4_000
BUFFER_LIMIT = 64  # events buffered before a send publishes them whatever happens next
START_FLUSH_SECONDS = 0.1  # an attempt's start reaches Flower within this, however long it runs


def attempt_uuid(job_id: uuid.UUID | str, attempt: int) -> str:
    """The task uuid Flower lists one attempt of a job under."""
    return f"{job_id}:{attempt}"


class AttemptEvents:
    """Sends the task events of a batch's attempts through a dispatcher that buffers the
    `task` group; silent without one. A lost event is logged, never raised: monitoring must
    not change a job's outcome. Thread-safe: the delayed flush publishes from its own thread."""

    def __init__(self, dispatcher: Any | None, *, flush_after: float = START_FLUSH_SECONDS) -> None:
        self._dispatcher = dispatcher
        self._flush_after = flush_after
        self._lock = threading.Lock()

    def _send(self, kind: str, job: ClaimedJob | ReapedJob, **fields: Any) -> None:
        with self._lock:
            if self._dispatcher is None:
                return
            try:
                self._dispatcher.send(kind, uuid=attempt_uuid(job.id, job.attempt), **fields)
            except BROKER_ERRORS as exc:
                log.warning("task_event_lost", task_event=kind, error=str(exc))

    def flush(self) -> None:
        """Publish the buffered events (kept for the next flush if the broker refuses)."""
        with self._lock:
            if self._dispatcher is None:
                return
            try:
                self._dispatcher.flush(errors=False)
            except BROKER_ERRORS as exc:
                log.warning("task_events_delayed", error=str(exc))

    def close(self) -> None:
        """Publish what is buffered, then send nothing more (the dispatcher is the caller's)."""
        _DELAYED.cancel(self)
        self.flush()
        with self._lock:
            self._dispatcher = None

    def started(self, job: ClaimedJob) -> None:
        """The attempt begins: `task-received` (what it is) then `task-started`."""
        kwargs = {"job_id": str(job.id), "attempt": job.attempt, "max_attempts": job.max_attempts}
        self._send(
            "task-received",
            job,
            name=job.type,
            args="()",
            kwargs=saferepr(kwargs, REPR_MAX),
            retries=job.attempt - 1,
            root_id=None,
            parent_id=None,
            eta=None,
            expires=None,
        )
        self._send("task-started", job)
        if self._dispatcher is not None:
            _DELAYED.schedule(self, self._flush_after)

    def finished(
        self,
        job: ClaimedJob,
        outcome: WorkerOutcome,
        *,
        result: Any = None,
        error: BaseException | None = None,
        seconds: float,
    ) -> None:
        """The attempt's outcome: succeeded, retried, failed (dead) or revoked (lease lost)."""
        if outcome is WorkerOutcome.SUCCEEDED:
            self._send("task-succeeded", job, result=saferepr(result, REPR_MAX), runtime=seconds)
        elif outcome is WorkerOutcome.LEASE_LOST:
            self._send("task-revoked", job, terminated=False, signum=None, expired=True)
        elif error is not None and outcome in (WorkerOutcome.RETRYING, WorkerOutcome.DEAD):
            kind = "task-retried" if outcome is WorkerOutcome.RETRYING else "task-failed"
            trace = "".join(traceback.format_exception(error))[-TRACEBACK_MAX:]
            self._send(kind, job, exception=saferepr(error, REPR_MAX), traceback=trace)

    def lost(self, job: ReapedJob) -> None:
        """An attempt whose worker vanished, as the reaper settled it: retried, or failed if
        that left the job dead (quarantined, or its last attempt)."""
        kind = "task-failed" if job.state == JobState.DEAD else "task-retried"
        reason = f"WorkerLost('the lease expired: the worker vanished; the job is {job.state}')"
        self._send(kind, job, exception=reason, traceback=None)


NO_EVENTS = AttemptEvents(None)


class _DelayedFlush:
    """One daemon thread per process that flushes each scheduled `AttemptEvents` once its
    earliest pending deadline passes; started on first use in the process (a forked pool
    child does not inherit its parent's thread)."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: dict[AttemptEvents, float] = {}
        self._pid = 0

    def schedule(self, events: AttemptEvents, delay: float) -> None:
        """Flush `events` within `delay` (an earlier deadline already set stands)."""
        with self._wake:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="task-events", daemon=True).start()
            if events not in self._due:
                self._due[events] = time.monotonic() + delay
                self._wake.notify()

    def cancel(self, events: AttemptEvents) -> None:
        """Forget `events` (its batch ended and flushes them itself)."""
        with self._wake:
            self._due.pop(events, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                ready = [e for e, due in self._due.items() if due <= now]
                for events in ready:
                    del self._due[events]
                if not ready:
                    self._wake.wait(min(self._due.values(), default=now + 60.0) - now)
                    continue
            for events in ready:
                try:
                    events.flush()
                except Exception:  # the thread must outlive any one batch's failure
                    log.exception("task_events_flush_failed")


_DELAYED = _DelayedFlush()


@contextmanager
def attempt_events(app: Celery, *, hostname: str) -> Iterator[AttemptEvents]:
    """The events of one batch, sent as worker `hostname` (the name Flower counts them
    under) through one pooled broker connection, the rest flushed at the end; silent when
    task events are off."""
    if not app.conf.worker_send_task_events:
        yield NO_EVENTS
        return
    with ExitStack() as stack:
        try:
            producer = stack.enter_context(app.amqp.producer_pool.acquire(block=True))
            dispatcher = app.events.Dispatcher(
                producer.connection,
                hostname=hostname,
                channel=producer.channel,
                buffer_while_offline=False,
                buffer_group={"task"},
                buffer_limit=BUFFER_LIMIT,
            )
        except BROKER_ERRORS as exc:
            log.warning("task_events_unavailable", error=str(exc))
            dispatcher = None
        events = AttemptEvents(dispatcher)
        try:
            yield events
        finally:
            events.close()
            if dispatcher is not None:
                dispatcher.close()
