"""Group commit for `POST /v1/jobs`: concurrent submissions share one commit.

Each request is validated on the event loop (a 422 costs no I/O), then queued for the writer: a
task that takes every submission waiting, authenticates their keys with one query, then inserts
their jobs and outbox rows with one fixed-shape statement (`store.bulk`) which, run in
autocommit, commits on its own. Only after that commit does any of them get its 202. Under load
the batch grows by itself (requests arriving during a commit form the next one), so the per-job
cost of round trips and the fsync shrinks as concurrency rises. Only while batches are forming
does the writer wait for requests already on their way — until as many are queued as the last
batch held (its clients send their next requests once answered), GATHER_SECONDS at most; a quiet
intake never waits. The writer owns one raw psycopg asyncio connection: no threads, no pool, no
SQLAlchemy adapter (and its greenlet switches) between it and the driver.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, InterfaceError, OperationalError

from config import Settings
from errors import SwitchyardError
from store.api_keys import Principal, authenticate_many_async
from store.db import connect_async
from tasks.enqueue import Inserted, JobDraft, Outcome, enqueue_many_async
from tasks.web.auth import WRITE_SCOPE, InvalidApiKeyError, MissingScopeError

GATHER_SECONDS = 0.002
WRITER = "intake"  # its connection's purpose: `switchyard-api:intake` in pg_stat_activity


@dataclass
class Submission:
    """One request waiting for a writer: its job, or why the job was refused (told after auth)."""

    token: str
    draft: JobDraft | SwitchyardError
    future: asyncio.Future[Inserted]


class IntakeWriter:
    """Batches submissions into single commits on one writer task."""

    def __init__(self, settings: Settings, *, max_batch: int = 500) -> None:
        self._settings = settings
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last_batch = 1
        self._conn: AsyncConnection[Any] | None = None

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
        if self._conn is not None:
            await self._conn.close()

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
            if self._last_batch > 1:
                # Group commit: under load, the clients of the last batch are on their way back;
                # wait for as many (GATHER_SECONDS at most) rather than commit a fraction of
                # them and keep the rest waiting for the next commit. A quiet intake never waits.
                deadline = loop.time() + GATHER_SECONDS
                expected = min(self._last_batch, self._max_batch)
                while self._queue.qsize() + 1 < expected and loop.time() < deadline:
                    await asyncio.sleep(GATHER_SECONDS / 8)
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._last_batch = len(batch)
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
            conn, principals = await self._authenticate(batch)
            return await _write(conn, batch, principals)
        except (OperationalError, InterfaceError) as exc:  # unreachable: every request learns why
            return [exc] * len(batch)
        except Exception as exc:
            if len(batch) == 1:
                return [exc]
            # Something in the batch made PostgreSQL refuse it (nothing was committed: it is
            # one statement): retry each submission alone, so that only the culprit fails.
            return [outcome for one in batch for outcome in await self._settle([one])]

    async def _authenticate(
        self, batch: list[Submission]
    ) -> tuple[AsyncConnection[Any], dict[str, Principal | None]]:
        """The batch's principals, and the connection to write on."""
        tokens = [s.token for s in batch]
        conn = await self._connection()
        try:
            return conn, await authenticate_many_async(conn, tokens)
        except OperationalError:
            if not conn.closed:
                raise
        # The connection had broken since its last use (PostgreSQL restarted, say). Nothing
        # was written, so the read is repeated once on a new connection.
        conn = await self._connection()
        return conn, await authenticate_many_async(conn, tokens)

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await connect_async(self._settings, purpose=WRITER)
        return self._conn


async def _write(
    conn: AsyncConnection[Any], batch: list[Submission], principals: dict[str, Principal | None]
) -> list[Outcome]:
    """Insert the jobs of the batch whose keys check out; the rest learn why not."""
    outcomes: dict[int, Outcome] = {}
    accepted: list[tuple[int, JobDraft]] = []
    for i, submission in enumerate(batch):
        principal = principals[submission.token]
        if principal is None:
            outcomes[i] = InvalidApiKeyError()
        elif not principal.allows(WRITE_SCOPE):
            outcomes[i] = MissingScopeError(WRITE_SCOPE)
        elif isinstance(submission.draft, SwitchyardError):
            outcomes[i] = submission.draft
        else:
            accepted.append((i, submission.draft.for_producer(principal.producer)))
    if accepted:
        inserted = await enqueue_many_async(conn, [draft for _, draft in accepted])
        for (i, _), outcome in zip(accepted, inserted, strict=True):
            outcomes[i] = outcome
    return [outcomes[i] for i in range(len(batch))]
