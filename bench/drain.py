"""Drain benchmark: `system.echo` jobs/s through the whole pipeline vs bare Celery no-op tasks.

Ours: N jobs enqueued through `tasks.enqueue` in one transaction (the intake is not
measured), then relay → Redis → `switchyard worker` → ledger `succeeded`; timed from the commit
(just before the relay's first publish) to the last `finished_at`. Baselines, on the same Redis
with the same worker concurrency, each published in pipelined batches of the relay's size:
`stock` Celery (plain `@app.task`, Redis result backend, default prefetch), timed from the first
publish to the last result's `date_done`; `tuned` Celery (`ignore_result`, prefetch 64), timed
until its queue and unacked set are empty. Rounds interleave the three; medians are compared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime

import redis
from sqlalchemy import func, select

from bench.celery_baseline import create_baseline
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
from store.db import transaction
from store.models import Job, JobAttempt
from store.states import JobState
from tasks.enqueue import enqueue

TARGET = 1.0
POLL = 0.01


def _deadline(jobs: int) -> float:
    return time.monotonic() + 60 + jobs / 50


def run_ours(env: BenchEnv, *, jobs: int, tag: str) -> float:
    """Enqueue `jobs` echo jobs in one transaction; jobs/s from commit to the last success."""
    settings = env.settings
    with transaction(settings) as session:
        for i in range(jobs):
            enqueue(session, "system.echo", {"i": i}, producer=tag, settings=settings)
    start = time.time()
    count = select(
        func.count().filter(Job.state == JobState.SUCCEEDED),
        func.count().filter(Job.state == JobState.DEAD),
    ).where(Job.producer == tag)
    deadline = _deadline(jobs)
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


def _publish(app: object, jobs: int, batch: int) -> list[str]:
    ids: list[str] = []
    with app.producer_or_acquire() as producer:  # type: ignore[attr-defined]
        for first in range(0, jobs, batch):
            with producer.batch(max_size=batch):
                for _ in range(first, min(jobs, first + batch)):
                    result = app.send_task("bench.noop", producer=producer)  # type: ignore[attr-defined]
                    ids.append(result.id)
    return ids


def _wait_for_keys(client: redis.Redis, keys: list[str], deadline: float) -> None:
    """Wait until every key exists, checking a window at a time so polling stays cheap."""
    seen, window = 0, 200
    while seen < len(keys):
        chunk = keys[seen : seen + window]
        if client.exists(*chunk) == len(chunk):
            seen += len(chunk)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"stock Celery finished {seen}/{len(keys)} before the deadline")
        time.sleep(POLL)
    if client.exists(*keys) != len(keys):  # results land out of order near the end
        time.sleep(POLL)
        _wait_for_keys(client, keys, deadline)


def run_baseline(env: BenchEnv, variant: str, *, jobs: int, batch: int) -> float:
    """Publish `jobs` no-op tasks to the `variant` worker; jobs/s until the last one ran."""
    keyprefix = f"{env.redis_prefix}{variant}:"
    app = create_baseline(variant, redis_url=env.settings.redis.url, prefix=env.redis_prefix)
    client = redis.Redis.from_url(env.settings.redis.url)
    deadline = _deadline(jobs)
    try:
        start = time.time()
        ids = _publish(app, jobs, batch)
        if variant == "stock":
            keys = [f"{keyprefix}celery-task-meta-{i}" for i in ids]
            _wait_for_keys(client, keys, deadline)
            done = [json.loads(raw)["date_done"] for raw in client.mget(keys)]
            last = max(datetime.fromisoformat(d).timestamp() for d in done)
        else:
            while True:
                pipe = client.pipeline()
                pipe.llen(f"{keyprefix}celery")
                pipe.hlen(f"{keyprefix}unacked")
                if sum(pipe.execute()) == 0:
                    last = time.time()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("tuned Celery did not finish before the deadline")
                time.sleep(POLL)
    finally:
        client.close()
        app.close()
    return jobs / (last - start)


def _start_workers(env: BenchEnv, concurrency: int) -> list[Process]:
    c = str(concurrency)
    procs = [
        env.start(
            *switchyard("worker", "--concurrency", c, "--hostname", "bench-ours@%h"),
            name="worker-ours",
        ),
        env.start(*switchyard("relay"), name="relay"),
    ]
    for variant in ("stock", "tuned"):
        extra = {
            "BENCH_CELERY_VARIANT": variant,
            "BENCH_CELERY_REDIS_URL": env.settings.redis.url,
            "BENCH_CELERY_PREFIX": env.redis_prefix,
        }
        argv = [sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker"]
        argv += ["--concurrency", c, "--loglevel", "INFO", "--hostname", f"bench-{variant}@%h"]
        procs.append(env.start(*argv, name=f"worker-{variant}", env={**env.env(), **extra}))
    for proc, what in zip(procs, ("our worker", None, "stock worker", "tuned worker"), strict=True):
        if what:
            wait_ready(proc, "ready.", what=what)
    return procs


def measure(*, jobs: int, concurrency: int, rounds: int) -> tuple[Series, Series, Series]:
    """Run interleaved rounds; returns (ours, stock, tuned) in jobs/s."""
    ours = Series("switchyard system.echo (ledger)")
    stock = Series("stock Celery no-op (result backend)")
    tuned = Series("tuned Celery no-op (no result, pf 64)")
    with bench_env("drain", concurrency=concurrency) as env:
        procs = _start_workers(env, concurrency)
        batch = env.settings.relay.batch_size
        try:
            warm = max(100, jobs // 20)
            progress(f"warming up ({warm} jobs each)")
            run_ours(env, jobs=warm, tag="warmup")
            run_baseline(env, "stock", jobs=warm, batch=batch)
            run_baseline(env, "tuned", jobs=warm, batch=batch)
            for n in range(1, rounds + 1):
                ours.values.append(run_ours(env, jobs=jobs, tag=f"round-{n}"))
                stock.values.append(run_baseline(env, "stock", jobs=jobs, batch=batch))
                tuned.values.append(run_baseline(env, "tuned", jobs=jobs, batch=batch))
                progress(
                    f"round {n}/{rounds}: ours {ours.values[-1]:.0f}/s, stock "
                    f"{stock.values[-1]:.0f}/s, tuned {tuned.values[-1]:.0f}/s"
                )
        finally:
            for proc in procs:
                proc.stop()
    return ours, stock, tuned


def main(argv: list[str] | None = None) -> int:
    """Run the drain benchmark and print the three figures and the ratios."""
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__)
    parser.add_argument("--jobs", type=int, default=3_000, help="jobs per round and contender")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, each side")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (median)")
    args = parser.parse_args(argv)
    print(
        f"drain: {args.rounds} rounds x {args.jobs} jobs, worker concurrency "
        f"{args.concurrency} ({machine()})",
        flush=True,
    )
    ours, stock, tuned = measure(jobs=args.jobs, concurrency=args.concurrency, rounds=args.rounds)
    print(stock.row())
    print(tuned.row())
    print(ours.row(stock))
    ratio = ours.median / stock.median if stock.median else 0.0
    to_tuned = ours.median / tuned.median if tuned.median else 0.0
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  drain ratio {ratio:.2f}x stock Celery — {verdict} the target of {TARGET}x")
    print(f"  drain ratio {to_tuned:.2f}x tuned Celery (ignore_result, prefetch 64)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
