"""Drain benchmark: no-op jobs/s through Switchyard against Celery and PostgreSQL job queues.

Every contender gets the same jobs per round and the same number of worker processes
(`--concurrency`), and is timed from the start of its enqueue to its own record of the last
completion; rounds interleave all of them and medians are compared. Machine CPU per job is the
kernel's busy time over the round (every process on the machine, so it includes other users'
load on a shared machine) divided by the jobs.
- switchyard: `system.echo` jobs drafted and enqueued with `enqueue_many` in one commit (the
  bulk path, like the peers' batch enqueues; the intake is not measured), then relay → Redis →
  `switchyard worker` → ledger `succeeded`; to the last `finished_at`;
- Celery stock, tuned, and batched the same way as Switchyard's relay (`chunks` of its batch
  size): see `bench.drain_celery`;
- pgqueuer and procrastinate with their defaults, each in a database of its own: see
  `bench.peers`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

from sqlalchemy import func, select

from bench.common import (
    BenchEnv,
    Process,
    Series,
    bench_env,
    machine,
    progress,
    switchyard,
    wait_ready,
)
from bench.cpu import machine_cpu
from bench.drain_celery import run_celery, start_worker
from bench.peers import pgqueuer_queue, procrastinate_queue, run_pgqueuer, run_procrastinate
from store.db import transaction
from store.models import Job, JobAttempt
from store.states import JobState
from tasks.enqueue import draft_job, enqueue_many

# Issue 13's targets for ours ÷ them (stock Celery: the target before it).
TARGETS = {"stock": 1.0, "chunks": 0.5, "pgqueuer": 1.0}
NAMES = {
    "ours": "switchyard system.echo (ledger)",
    "stock": "stock Celery no-op (result backend)",
    "tuned": "tuned Celery no-op (no result, pf 64)",
    "chunks": "Celery chunks of the relay's batch",
    "pgqueuer": "pgqueuer no-op (defaults)",
    "procrastinate": "procrastinate no-op (defaults)",
}
Runner = Callable[[int], float]


def _timeout(jobs: int) -> float:
    return 60 + jobs / 50


def run_ours(env: BenchEnv, *, jobs: int, tag: str) -> float:
    """`enqueue_many` of `jobs` echo jobs, one commit; jobs/s from its start to the last success."""
    settings = env.settings
    start = time.time()
    drafts = [
        draft_job("system.echo", {"i": i}, producer=tag, settings=settings) for i in range(jobs)
    ]
    with transaction(settings) as session:
        enqueue_many(session, drafts)
    count = select(
        func.count().filter(Job.state == JobState.SUCCEEDED),
        func.count().filter(Job.state == JobState.DEAD),
    ).where(Job.producer == tag)
    deadline = time.monotonic() + _timeout(jobs)
    while True:
        with transaction(settings) as session:
            done, dead = session.execute(count).one()
        if dead:
            raise RuntimeError(f"{dead} benchmark jobs went dead")
        if done == jobs:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done}/{jobs} jobs succeeded before the deadline")
        time.sleep(0.05)
    with transaction(settings) as session:
        last = session.execute(
            select(func.extract("epoch", func.max(Job.finished_at))).where(Job.producer == tag)
        ).scalar_one()
        attempts = session.execute(
            select(func.count()).select_from(JobAttempt).join(Job).where(Job.producer == tag)
        ).scalar_one()
    if attempts != jobs:
        raise RuntimeError(f"{jobs} jobs took {attempts} attempts (expected exactly one each)")
    return jobs / (float(last) - start)


def _start_workers(env: BenchEnv, concurrency: int) -> list[Process]:
    c = str(concurrency)
    procs = [
        env.start(
            *switchyard("worker", "--concurrency", c, "--hostname", "bench-ours@%h"),
            name="worker-ours",
        ),
        env.start(*switchyard("relay"), name="relay"),
    ]
    procs += [start_worker(env, variant, concurrency) for variant in ("stock", "tuned")]
    for proc, what in zip(procs, ("our worker", None, "stock worker", "tuned worker"), strict=True):
        if what:
            wait_ready(proc, "ready.", what=what)
    return procs


def _celery(env: BenchEnv, contender: str, batch: int, jobs: int) -> float:
    return run_celery(env, contender, jobs=jobs, batch=batch, timeout=_timeout(jobs))


def _rounds(runners: dict[str, Runner], *, jobs: int, rounds: int) -> dict[str, Series]:
    """A warm-up, then `rounds` interleaved rounds of every runner, with machine CPU."""
    found = {key: Series(NAMES[key]) for key in runners}
    warm = max(100, jobs // 20)
    progress(f"warming up ({warm} jobs each)")
    for run in runners.values():
        run(warm)
    for n in range(1, rounds + 1):
        for key, run in runners.items():
            with machine_cpu() as cpu:
                found[key].values.append(run(jobs))
            found[key].cpu_ms.append(cpu.per_job_ms(jobs))
        summary = ", ".join(f"{key} {s.values[-1]:.0f}/s" for key, s in found.items())
        progress(f"round {n}/{rounds}: {summary}")
    return found


def measure(*, jobs: int, concurrency: int, rounds: int) -> dict[str, Series]:
    """Run interleaved rounds of every contender; their jobs/s and CPU, keyed as in NAMES."""
    with bench_env("drain", concurrency=concurrency) as env:
        batch = env.settings.relay.batch_size
        with (
            pgqueuer_queue(env, concurrency=concurrency) as pgq,
            procrastinate_queue(env, concurrency=concurrency) as procrastinate,
        ):
            procs = _start_workers(env, concurrency)
            tags = iter(range(1_000_000))
            runners: dict[str, Runner] = {
                "ours": lambda n: run_ours(env, jobs=n, tag=f"round-{next(tags)}"),
                **{key: partial(_celery, env, key, batch) for key in ("stock", "tuned", "chunks")},
                "pgqueuer": lambda n: run_pgqueuer(pgq, jobs=n, timeout=_timeout(n)),
                "procrastinate": lambda n: run_procrastinate(
                    procrastinate, jobs=n, timeout=_timeout(n)
                ),
            }
            try:
                return _rounds(runners, jobs=jobs, rounds=rounds)
            finally:
                for proc in procs:
                    proc.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the drain benchmark and print every contender's figures and the ratios to ours."""
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__)
    parser.add_argument("--jobs", type=int, default=3_000, help="jobs per round and contender")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, each side")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (median)")
    args = parser.parse_args(argv)
    print(
        f"drain: {args.rounds} rounds x {args.jobs} jobs, {args.concurrency} worker processes "
        f"per contender ({machine()})",
        flush=True,
    )
    found = measure(jobs=args.jobs, concurrency=args.concurrency, rounds=args.rounds)
    ours = found.pop("ours")
    for series in found.values():
        print(series.row())
    print(ours.row(found["stock"]))
    for key, series in found.items():
        ratio = ours.median / series.median if series.median else 0.0
        verdict = ""
        if key in TARGETS:
            met = "meets" if ratio >= TARGETS[key] else "MISSES"
            verdict = f" — {met} the target of {TARGETS[key]}x"
        print(f"  drain ratio {ratio:.2f}x {NAMES[key]}{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
