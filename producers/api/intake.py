"""Group commit for `POST /v1/jobs`: concurrent submissions share one transaction.

Each request is validated on the event loop (a 422 costs no I/O), then queued for a writer: a
task that takes every submission waiting, authenticates their keys with one query, inserts their
jobs and outbox rows with a few multi-row statements, and commits once. Only after that commit
does any of them get its 202. Under load the batch grows by itself (requests arriving during a
commit form the next batch), so the per-job cost of round trips and the fsync shrinks as
concurrency rises, without a timer adding latency when the intake is quiet. The writers run on
the event loop through SQLAlchemy's asyncio engine (no threads, so no contention for the GIL)
and reuse the synchronous `insert_jobs` through `run_sync`.
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


@dataclass
class Submission:
    """One request waiting for a writer: its job, or why the job was refused (told after auth)."""

    token: str
    draft: JobDraft | SwitchyardError
    future: asyncio.Future[Inserted]


class IntakeWriter:
    """Batches submissions into single transactions on a few writer tasks."""

    def __init__(self, engine: AsyncEngine, *, writers: int = 3, max_batch: int = 500) -> None:
        self._engine = engine
        self._writers = writers
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the writers on the running event loop."""
        # Several writers: some fill their batch while others wait for their commit.
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()) for _ in range(self._writers)]

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
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
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
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
