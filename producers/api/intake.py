"""Group commit for `POST /v1/jobs`: concurrent submissions share one transaction.

Each request is validated on the event loop (a 422 costs no I/O), then queued for the writer: a
task that takes every submission waiting, authenticates their keys with one query, inserts their
jobs and outbox rows with one fixed-shape statement each (`store.bulk`), and commits once. Only
after that commit does any of them get its 202. Under load the batch grows by itself (requests
arriving during a commit form the next one), so the per-job cost of round trips and the fsync
shrinks as concurrency rises; only while batches are forming does the writer wait, up to
GATHER_SECONDS, for requests already on their way — a quiet intake never waits. The writer runs
on the event loop through SQLAlchemy's asyncio engine (no threads, no contention for the GIL)
and reuses the synchronous `insert_jobs` through `run_sync`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from producers.api.auth import WRITE_SCOPE, invalid_key, missing_scope
from producers.enqueue import Inserted, JobDraft, insert_jobs
from store.api_keys import authenticate_many
from store.errors import SwitchyardError

Outcome = Inserted | Exception
GATHER_SECONDS = 0.002


@dataclass
class Submission:
    """One request waiting for a writer: its job, or why the job was refused (told after auth)."""

    token: str
    draft: JobDraft | SwitchyardError
    future: asyncio.Future[Inserted]


class IntakeWriter:
    """Batches submissions into single transactions on one writer task."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 500) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._under_load = False

    def start(self) -> None:
        """Start the writer on the running event loop."""
        # One writer: measured on 2 cores, more writers only split the batches (more commits
        # per job) without adding throughput; requests arriving during a commit wait for the next.
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
        await self._engine.dispose()

    async def submit(self, token: str, draft: JobDraft | SwitchyardError) -> Inserted:
        """Wait until the job is committed (or refused); returns its id and whether it is new.

        A request whose body was refused still comes here, so that a bad key is told 401
        before anything about the body.
        """
        submission = Submission(token, draft, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(submission)
        return await submission.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            if self._under_load:
                # Group commit: under load, give the requests already on their way up to
                # GATHER_SECONDS to join this batch; a quiet intake never waits.
                deadline = loop.time() + GATHER_SECONDS
                while self._queue.qsize() + 1 < self._max_batch and loop.time() < deadline:
                    await asyncio.sleep(GATHER_SECONDS / 8)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._under_load = len(batch) > 1
            outcomes = await self._settle(batch)
            for submission, outcome in zip(batch, outcomes, strict=True):
                if submission.future.done():  # the client went away; its job stands regardless
                    continue
                if isinstance(outcome, Exception):
                    submission.future.set_exception(outcome)
                else:
                    submission.future.set_result(outcome)

    async def _settle(self, batch: list[Submission]) -> list[Outcome]:
        try:
            async with self._engine.begin() as conn:
                return await conn.run_sync(_write, batch)
        except (OperationalError, InterfaceError) as exc:  # unreachable: every request learns why
            return [exc] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            # Something in the batch made PostgreSQL refuse it: retry each submission alone,
            # so that only the culprit fails and nobody else's request does.
            return [outcome for one in batch for outcome in await self._settle([one])]


def _write(conn: Connection, batch: list[Submission]) -> list[Outcome]:
    """Authenticate and insert one batch inside the caller's transaction."""
    outcomes: dict[int, Outcome] = {}
    session = Session(bind=conn)
    principals = authenticate_many(session, (s.token for s in batch))
    accepted: list[tuple[int, JobDraft]] = []
    for i, submission in enumerate(batch):
        principal = principals[submission.token]
        if principal is None:
            outcomes[i] = invalid_key()
        elif not principal.allows(WRITE_SCOPE):
            outcomes[i] = missing_scope(WRITE_SCOPE)
        elif isinstance(submission.draft, SwitchyardError):
            outcomes[i] = submission.draft
        else:
            accepted.append((i, submission.draft.for_producer(principal.producer)))
    if accepted:
        inserted = insert_jobs(session, [draft for _, draft in accepted])
        for (i, _), outcome in zip(accepted, inserted, strict=True):
            outcomes[i] = outcome
    return [outcomes[i] for i in range(len(batch))]
