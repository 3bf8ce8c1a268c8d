"""Latency: submit → handler start at a steady open-loop rate, Switchyard against its peers.

Each contender is sent `--rate` jobs per second for `--seconds`, on a fixed schedule (a job's
latency runs from its *scheduled* send time, so a sender that falls behind is not forgiven),
in interleaved rounds; p50/p95/p99 are over every job of every round:
- switchyard `enqueue`: one `enqueue` and commit per job (the library path);
- switchyard HTTP: one `POST /v1/jobs` per job (202 after commit), on keep-alive connections;
  both `system.echo`, from the ledger's commit through relay → Redis → worker, to the
  attempt's `started_at` (its claim, just before the handler runs);
- stock Celery: `send_task("bench.stamp")` to a plain Celery worker on the same Redis, to the
  start time the task returns through its result backend;
- pgqueuer: one `Queries.enqueue("bench.stamp")` per job on an autocommit psycopg connection,
  to two `bench.pgqueuer_app` workers (defaults, a database of their own), to the start time
  the handler prints.
Each contender first runs one unmeasured second at the same rate (warm-up: connections,
prepared statements, the API's first requests).

    python -m bench.latency [--rate 100] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable

import httpx
import psycopg
from pgqueuer.queries import Queries
from sqlalchemy import text

from bench.celery_baseline import create_baseline
from bench.common import (
    BenchEnv,
    Process,
    bench_env,
    machine,
    progress,
    serve,
    switchyard,
    wait_ready,
)
from bench.peers import pgqueuer_queue
from bench.pgqueuer_app import STAMP
from store.api_keys import create_key
from store.db import transaction
from tasks.enqueue import enqueue

STARTS = text(
    "SELECT extract(epoch FROM a.started_at) - (j.payload->>'t')::float8"
    " FROM job_attempts a JOIN jobs j ON j.id = a.job_id"
    " WHERE j.producer = :tag AND a.number = 1 AND (j.payload->>'t')::float8 >= :since"
)


def _schedule(rate: float, seconds: float) -> list[float]:
    start = time.time() + 0.2
    return [start + i / rate for i in range(int(rate * seconds))]


def _sleep_until(at: float) -> None:
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def _ledger_latencies(env: BenchEnv, tag: str, slots: list[float]) -> list[float]:
    """The latencies of `tag`'s jobs scheduled in `slots`, once every one has started."""
    deadline = time.monotonic() + 60
    expected, params = len(slots), {"tag": tag, "since": slots[0]}
    while True:
        with transaction(env.settings) as session:
            found = [float(v) for v in session.execute(STARTS, params).scalars()]
        if len(found) == expected:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(found)}/{expected} {tag} jobs started in time")
        time.sleep(0.2)


def run_enqueue(env: BenchEnv, *, rate: float, seconds: float, tag: str) -> list[float]:
    """One `enqueue` + commit per scheduled slot; latencies from the ledger."""
    slots = _schedule(rate, seconds)
    for at in slots:
        _sleep_until(at)
        with transaction(env.settings) as session:
            enqueue(session, "system.echo", {"t": at}, producer=tag, settings=env.settings)
    return _ledger_latencies(env, tag, slots)


def run_http(port: int, token: str, env: BenchEnv, *, rate: float, seconds: float) -> list[float]:
    """One POST per scheduled slot, each on its own task; latencies from the ledger."""
    slots = _schedule(rate, seconds)

    async def send() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=30
        ) as client:

            async def one(at: float) -> None:
                body = {"type": "system.echo", "payload": {"t": at}}
                resp = await client.post("/v1/jobs", json=body)
                if resp.status_code != 202:
                    raise RuntimeError(f"POST /v1/jobs answered {resp.status_code}: {resp.text}")

            tasks = []
            for at in slots:
                delay = at - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(at)))
            await asyncio.gather(*tasks)

    asyncio.run(send())
    return _ledger_latencies(env, "bench-http", slots)


def run_celery(env: BenchEnv, *, rate: float, seconds: float) -> list[float]:
    """`send_task` per scheduled slot; latencies from the start times the tasks return."""
    app = create_baseline("stock", redis_url=env.settings.redis.url, prefix=env.redis_prefix)
    slots = _schedule(rate, seconds)
    results = []
    try:
        for at in slots:
            _sleep_until(at)
            results.append((at, app.send_task("bench.stamp")))
        return [float(r.get(timeout=60)) - at for at, r in results]
    finally:
        app.close()


def _stamps(env: BenchEnv, slots: list[float]) -> list[float]:
    """The latencies the pgqueuer workers printed for `slots`, once every one has started."""
    deadline, wanted = time.monotonic() + 60, set(slots)
    while True:
        found = {}
        for log in env.logs.glob("pgqueuer-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(STAMP):
                    _, sent, started = line.split()
                    if float(sent) in wanted:
                        found[float(sent)] = float(started) - float(sent)
        if len(found) == len(slots):
            return list(found.values())
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(found)}/{len(slots)} pgqueuer jobs started in time")
        time.sleep(0.2)


def run_pgqueuer(env: BenchEnv, url: str, *, rate: float, seconds: float) -> list[float]:
    """One `Queries.enqueue` per scheduled slot; latencies from the workers' output."""
    slots = _schedule(rate, seconds)

    async def send() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            queries = Queries.from_psycopg_connection(conn)
            for at in slots:
                delay = at - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await queries.enqueue("bench.stamp", json.dumps({"t": at}).encode())

    asyncio.run(send())
    return _stamps(env, slots)


def _start(env: BenchEnv) -> list[Process]:
    procs = [
        env.start(*switchyard("worker", "--concurrency", "2"), name="worker"),
        env.start(*switchyard("relay"), name="relay"),
        env.start(
            sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker",
            "--concurrency", "2", "--loglevel", "INFO", "--hostname", "bench-stock@%h",
            name="worker-stock",
            env={
                **env.env(),
                "BENCH_CELERY_VARIANT": "stock",
                "BENCH_CELERY_REDIS_URL": env.settings.redis.url,
                "BENCH_CELERY_PREFIX": env.redis_prefix,
            },
        ),
    ]  # fmt: skip
    wait_ready(procs[0], "ready.", what="our worker")
    wait_ready(procs[2], "ready.", what="the stock worker")
    return procs


def _ms(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print p50/p95/p99 per contender."""
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="jobs per second (default 100)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    names = ("switchyard enqueue", "switchyard HTTP", "stock Celery", "pgqueuer")
    found: dict[str, list[float]] = {name: [] for name in names}
    with bench_env("latency") as env, pgqueuer_queue(env, concurrency=2) as pgq:
        with transaction(env.settings) as session:
            _, token = create_key(
                session, name="bench-http", scopes=["jobs:write"], known=frozenset({"jobs:write"})
            )
        procs = _start(env)
        api, port = serve(env, switchyard("api"), "api")
        try:
            warm = {"rate": args.rate, "seconds": 1.0}
            run_enqueue(env, tag="warmup", **warm)
            run_http(port, token, env, **warm)
            run_celery(env, **warm)
            run_pgqueuer(env, pgq, **warm)
            contenders: dict[str, Callable[[int], list[float]]] = {
                "switchyard enqueue": lambda n: run_enqueue(
                    env, rate=args.rate, seconds=args.seconds, tag=f"bench-enqueue-{n}"
                ),
                "switchyard HTTP": lambda n: run_http(
                    port, token, env, rate=args.rate, seconds=args.seconds
                ),
                "stock Celery": lambda n: run_celery(env, rate=args.rate, seconds=args.seconds),
                "pgqueuer": lambda n: run_pgqueuer(env, pgq, rate=args.rate, seconds=args.seconds),
            }
            for n in range(1, args.rounds + 1):
                for name, run in contenders.items():
                    found[name] += run(n)
                progress(f"round {n}/{args.rounds}")
        finally:
            api.stop()
            for proc in procs:
                proc.stop()
    print(
        f"latency, submit -> handler start, {args.rate:.0f} jobs/s open loop, "
        f"{args.rounds} x {args.seconds:.0f} s ({machine()})"
    )
    for name, values in found.items():
        print(
            f"  {name:<22} p50 {_ms(values, 50):7.1f} ms   p95 {_ms(values, 95):7.1f} ms"
            f"   p99 {_ms(values, 99):7.1f} ms   ({len(values)} jobs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
