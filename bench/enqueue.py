"""Bulk enqueue: jobs committed per second by `enqueue_many` against pgqueuer's batch enqueue.

Each round enqueues `--jobs` no-op jobs in one call and one commit per contender, in
interleaved rounds on one PostgreSQL (medians reported), timed from the first draft to the
commit:
- pgqueuer: `Queries.enqueue(entrypoints, payloads, priorities)` on an autocommit psycopg
  connection (its own schema, installed in the bench database);
- switchyard `enqueue_many`: `draft_job` (payload validated, the type's policy applied) for
  every job, then one `enqueue_many` (jobs, outbox rows and NOTIFY in one statement) and commit;
- switchyard `enqueue` loop: a tenth as many jobs, one `enqueue` call each and one commit (the
  path bulk work took before `enqueue_many`; for reference).

    python -m bench.enqueue [--jobs 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import psycopg
from pgqueuer.queries import Queries
from sqlalchemy import func, select

from bench import pgqueuer_app
from bench.common import Series, bench_env, machine, progress
from config import Settings
from store.db import transaction
from store.models import Job
from tasks.enqueue import draft_job, enqueue, enqueue_many

JOB_TYPE = "system.echo"


def _many(settings: Settings, jobs: int) -> float:
    start = time.perf_counter()
    drafts = [
        draft_job(JOB_TYPE, {"i": i}, producer="bench", settings=settings) for i in range(jobs)
    ]
    with transaction(settings) as session:
        enqueue_many(session, drafts)
    return jobs / (time.perf_counter() - start)


def _loop(settings: Settings, jobs: int) -> float:
    start = time.perf_counter()
    with transaction(settings) as session:
        for i in range(jobs):
            enqueue(session, JOB_TYPE, {"i": i}, producer="bench", settings=settings)
    return jobs / (time.perf_counter() - start)


async def _pgqueuer(url: str, jobs: int) -> float:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        queries = Queries.from_psycopg_connection(conn)
        start = time.perf_counter()
        payloads: list[bytes | None] = [json.dumps({"i": i}).encode() for i in range(jobs)]
        await queries.enqueue([JOB_TYPE] * jobs, payloads, [0] * jobs)
        return jobs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print medians and the ratio to pgqueuer."""
    parser = argparse.ArgumentParser(description="bulk enqueue against pgqueuer")
    parser.add_argument("--jobs", type=int, default=3_000, help="jobs per call (default 3000)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    pgq = Series("pgqueuer Queries.enqueue (batch)")
    many = Series("switchyard enqueue_many")
    loop = Series("switchyard enqueue, one call per job")  # a tenth of the jobs: it is slow
    with bench_env("enqueue") as env:
        url = env.settings.database.url.replace("+psycopg", "")
        asyncio.run(pgqueuer_app.install(url))
        for n in range(args.rounds):
            pgq.values.append(asyncio.run(_pgqueuer(url, args.jobs)))
            many.values.append(_many(env.settings, args.jobs))
            loop.values.append(_loop(env.settings, max(1, args.jobs // 10)))
            progress(
                f"round {n + 1}/{args.rounds}: pgqueuer {pgq.values[-1]:.0f}/s, "
                f"enqueue_many {many.values[-1]:.0f}/s, loop {loop.values[-1]:.0f}/s"
            )
        with transaction(env.settings) as session:
            stored = session.scalar(select(func.count()).select_from(Job))
        expected = (args.jobs + max(1, args.jobs // 10)) * args.rounds
        assert stored == expected, f"{stored} jobs committed, {expected} enqueued"
    print(f"bulk enqueue of {args.jobs} jobs per call, {args.rounds} rounds ({machine()})")
    for s in (pgq, many, loop):
        print(s.row(pgq))
    ratio = many.median / pgq.median
    verdict = "meets" if ratio >= 0.5 else "misses"
    print(f"  enqueue ratio {ratio:.2f}x pgqueuer — {verdict} the target of 0.5x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
