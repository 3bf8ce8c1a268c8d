"""The PostgreSQL job queues the benchmarks compare with: pgqueuer and procrastinate.

`pgqueuer_queue()` and `procrastinate_queue()` each create a database for their queue (named
for the run, dropped afterwards, nothing else touched), install its schema with the queue's own
tooling and start `concurrency` worker processes with its defaults. Each run is timed from the
start of its enqueue to the queue's own record of the last completion: `pgqueuer_log.created`
of the last `successful` row, `procrastinate_events.at` of the last `succeeded` event.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import psycopg
from pgqueuer.queries import Queries

from bench import pgqueuer_app
from bench.common import BenchEnv, Process, own_database
from bench.procrastinate_app import create_app

PGQ_DONE = (
    "SELECT count(*), extract(epoch FROM max(created))::float8 FROM pgqueuer_log"
    " WHERE status = 'successful' AND job_id = ANY(%s)"
)
PROCRASTINATE_DONE = (
    "SELECT count(*), extract(epoch FROM max(at))::float8 FROM procrastinate_events"
    " WHERE type = 'succeeded' AND job_id = ANY(%s)"
)


def _wait_done(url: str, query: str, ids: list[int], what: str, timeout: float) -> float:
    """Poll `query` until every id has completed; the epoch of the last completion."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(query, (ids,)).fetchone()
            assert row is not None
            done, last = row
            if done == len(ids):
                return float(last)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} finished {done}/{len(ids)} jobs before the deadline")
            time.sleep(0.01)


def run_pgqueuer(url: str, *, jobs: int, timeout: float) -> float:
    """Enqueue `jobs` no-op jobs in one batch call; jobs/s to the last `successful` log row."""

    async def enqueue() -> list[int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            ids = await Queries.from_psycopg_connection(conn).enqueue(
                ["bench.noop"] * jobs, [None] * jobs, [0] * jobs
            )
            return [int(i) for i in ids]

    start = time.time()
    ids = asyncio.run(enqueue())
    last = _wait_done(url, PGQ_DONE, ids, "pgqueuer", timeout)
    return jobs / (last - start)


def run_procrastinate(url: str, *, jobs: int, timeout: float) -> float:
    """`batch_defer` of `jobs` no-op jobs; jobs/s to the last `succeeded` event."""
    app = create_app(url)

    async def defer() -> list[int]:
        async with app.open_async():
            return await app.tasks["bench.noop"].batch_defer_async(*({} for _ in range(jobs)))

    start = time.time()
    ids = asyncio.run(defer())
    last = _wait_done(url, PROCRASTINATE_DONE, ids, "procrastinate", timeout)
    return jobs / (last - start)


def _install_pgqueuer(url: str) -> None:
    asyncio.run(pgqueuer_app.install(url))


def _install_procrastinate(url: str) -> None:
    app = create_app(url)

    async def apply() -> None:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    asyncio.run(apply())


@contextmanager
def _queue(
    env: BenchEnv,
    name: str,
    install: Callable[[str], None],
    argv: list[str],
    dsn_var: str,
    concurrency: int,
) -> Iterator[str]:
    with own_database(f"{env.database}_{name}") as url:
        install(url)
        env_vars = {**env.env(), dsn_var: url}
        procs = [
            Process(argv, env=env_vars, log_path=env.logs / f"{name}-{n}.log")
            for n in range(concurrency)
        ]
        try:
            yield url
        finally:
            for proc in procs:
                proc.stop()


def pgqueuer_queue(env: BenchEnv, *, concurrency: int) -> AbstractContextManager[str]:
    """pgqueuer in a database of its own (its URL), with `concurrency` worker processes."""
    argv = [sys.executable, "-m", "bench.pgqueuer_app"]
    return _queue(env, "pgqueuer", _install_pgqueuer, argv, "PGDSN", concurrency)


def procrastinate_queue(env: BenchEnv, *, concurrency: int) -> AbstractContextManager[str]:
    """procrastinate in a database of its own (its URL), with `concurrency` worker processes."""
    argv = [sys.executable, "-m", "procrastinate", "--app", "bench.procrastinate_app.app"]
    dsn_var = "BENCH_PROCRASTINATE_DSN"
    return _queue(
        env, "procrastinate", _install_procrastinate, [*argv, "worker"], dsn_var, concurrency
    )
