"""B-iot-ingest: unique readings stored per second through the whole pipeline (HTTP → ledger →
relay → worker → partitioned store) against a raw psycopg binary COPY of the same unique
readings into an identical partitioned table.

The workload is the simulator's generator (`ops.fleet`): `--devices` devices x 10 metrics,
batches of `--size` readings, 10 % resent (3 % of those with a changed value), 5 % late by
1-72 h, 0.5 % in the future. Each round, interleaved: the baseline COPYs the round's unique
rows in one transaction; ours POSTs the round's batches on `--concurrency` connections (429 and
503 waited out, counted) and is timed from the first POST until a poll (every 20 ms) first
sees every batch stored. Every round checks that the store gained exactly the round's unique
keys and counted its duplicates, conflicts and refused future readings as sent.

    python -m bench.iot_ingest [--devices 1000] [--batches 40] [--size 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from bench.common import (
    BenchEnv,
    Process,
    Series,
    bench_env,
    machine,
    progress,
    serve,
    switchyard,
    wait_ready,
)
from config import Settings
from ops.fleet import PROFILE_ID, Counts, Fleet, FleetBatch, Mix, profile_body
from ops.fleet_http import Delivery, http_client, post_batch
from store.db import transaction
from tasks.iot import devices

TARGET = 0.5
BASELINE = "bench_copy_readings"
COPY = (
    f"COPY {BASELINE} (device_id, metric, ts, received_at, value_num, unit, batch_id, idx) "
    "FROM STDIN (FORMAT BINARY)"
)
COPY_TYPES = ["text", "text", "timestamptz", "timestamptz", "float8", "text", "uuid", "int4"]
DONE = text("""
SELECT count(*) FILTER (WHERE status = 'stored') AS stored,
  coalesce(sum(duplicates), 0) AS duplicates, coalesce(sum(conflicts), 0) AS conflicts,
  coalesce(sum(jsonb_array_length(refusals)), 0) AS refused
FROM iot_batches WHERE id = ANY(CAST(:ids AS uuid[]))
""")


def _provision(settings: Settings, fleet: Fleet, profile: str = PROFILE_ID) -> dict[str, str]:
    body = profile_body(profile)
    with transaction(settings) as session:
        devices.create_profile(
            session,
            profile_id=profile,
            metrics=body["metrics"],
            future_policy="refuse",
            late_window=None,
            future_skew=None,
        )
        return {
            d: devices.create_device(session, device_id=d, profile_id=profile)[1] for d in fleet.ids
        }


def _baseline_table(settings: Settings, today: date) -> None:
    with transaction(settings) as session:
        like = f"CREATE TABLE {BASELINE} (LIKE iot_readings INCLUDING ALL)"
        session.execute(text(f"{like} PARTITION BY RANGE (ts)"))
        for n in range(-4, 2):  # late readings go back 72 h
            day = today + timedelta(days=n)
            session.execute(text(
                f"CREATE TABLE {BASELINE}_{day:%Y%m%d} PARTITION OF {BASELINE} "
                f"FOR VALUES FROM ('{day} 00:00+00') TO ('{day + timedelta(days=1)} 00:00+00')"
            ))  # fmt: skip


def _plan(fleet: Fleet, *, batches: int, size: int, start: int) -> list[FleetBatch]:
    now = datetime.now(UTC)
    ids = fleet.ids
    return [fleet.batch(ids[(start + n) % len(ids)], size=size, now=now) for n in range(batches)]


def run_copy(settings: Settings, plan: list[FleetBatch]) -> float:
    """COPY the plan's unique rows into the baseline table in one transaction: rows/s."""
    received, batch_id = datetime.now(UTC), uuid.uuid4()
    rows = [(b.device, m, ts, received, v, u, batch_id, i)
            for b in plan for i, (m, ts, v, u) in enumerate(b.new)]  # fmt: skip
    with transaction(settings) as session:
        session.execute(text(f"TRUNCATE {BASELINE}"))
    start = time.perf_counter()
    with transaction(settings) as session:
        raw = session.connection().connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(COPY) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
    return len(rows) / (time.perf_counter() - start)


def _stored_rows(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(session.execute(text("SELECT count(*) FROM iot_readings")).scalar_one())


async def _send(api: str, tokens: dict[str, str], plan: list[FleetBatch], connections: int,
                delivery: Delivery) -> None:  # fmt: skip
    slots = asyncio.Semaphore(connections)
    async with http_client(api, connections=connections) as client:

        async def one(batch: FleetBatch) -> None:
            async with slots:
                await post_batch(client, tokens[batch.device], batch, delivery)

        await asyncio.gather(*(one(b) for b in plan))


def run_ours(env: BenchEnv, api: str, tokens: dict[str, str], plan: list[FleetBatch], *,
             connections: int) -> tuple[float, Delivery]:  # fmt: skip
    """POST the plan and wait until every batch is stored: unique readings stored per second."""
    before = _stored_rows(env.settings)
    delivery = Delivery()
    start = time.time()
    asyncio.run(_send(api, tokens, plan, connections, delivery))
    deadline = time.monotonic() + 120 + len(plan)
    while True:
        with transaction(env.settings) as session:
            done = session.execute(DONE, {"ids": delivery.batch_ids}).one()
        if done.stored == len(plan):
            end = time.time()  # a job's finished_at is its transaction's start, not its commit
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {done.stored}/{len(plan)} batches stored in time")
        time.sleep(0.02)
    _check(delivery.counts, stored=_stored_rows(env.settings) - before, done=done)
    return delivery.counts.unique / (end - start), delivery


def _check(sent: Counts, *, stored: int, done: object) -> None:
    seen = (stored, done.duplicates, done.conflicts, done.refused)  # type: ignore[attr-defined]
    expected = (sent.unique, sent.duplicates, sent.conflicts, sent.future)
    if seen != expected:
        raise RuntimeError(f"store (rows, dup, conflicts, refused) {seen} != sent {expected}")


def _start(env: BenchEnv, concurrency: int, *queues: str) -> tuple[list[Process], str]:
    """API, relay and a worker (on `queues`, default every queue); the API's base URL."""
    api, port = serve(env, switchyard("api"), "api")
    relay = env.start(*switchyard("relay"), name="relay")
    only = ("--queues", ",".join(queues)) if queues else ()
    worker = env.start(
        *switchyard("worker", "--concurrency", str(concurrency), "--hostname", "bench-iot@%h",
                    *only),
        name="worker",
    )  # fmt: skip
    wait_ready(worker, "ready.", what="the worker")
    return [api, relay, worker], f"http://127.0.0.1:{port}"


def measure(args: argparse.Namespace) -> tuple[Series, Series]:
    """Run the interleaved rounds; returns (ours, copy) in unique readings/s."""
    ours = Series("switchyard HTTP → worker → store")
    copy = Series("raw binary COPY, partitioned table")
    fleet = Fleet(args.devices, mix=Mix(), prefix="bench", seed=7)
    with bench_env("iot", concurrency=args.workers) as env:
        tokens = _provision(env.settings, fleet)
        _baseline_table(env.settings, datetime.now(UTC).date())
        procs, api = _start(env, args.workers)
        try:
            sent = 0
            warm = _plan(fleet, batches=args.warmup, size=args.size, start=sent)
            sent += len(warm)
            progress(f"warming up ({len(warm)} batches)")
            run_ours(env, api, tokens, warm, connections=args.concurrency)
            for n in range(1, args.rounds + 1):
                plan = _plan(fleet, batches=args.batches, size=args.size, start=sent)
                sent += len(plan)
                copy.values.append(run_copy(env.settings, plan))
                rate, delivery = run_ours(env, api, tokens, plan, connections=args.concurrency)
                ours.values.append(rate)
                progress(
                    f"round {n}/{args.rounds}: ours {rate:.0f}/s, copy {copy.values[-1]:.0f}/s "
                    f"({delivery.counts.unique} unique of {delivery.counts.readings}; waited "
                    f"out {delivery.throttled} x 429, {delivery.unavailable} x 503; store check ok)"
                )
        finally:
            for proc in procs:
                proc.stop()
    return ours, copy


def main(argv: list[str] | None = None) -> int:
    """Run B-iot-ingest and print both medians and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.iot_ingest", description=__doc__)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=40, help="batches per round")
    parser.add_argument("--size", type=int, default=1_000, help="readings per batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5, help="batches before measuring")
    parser.add_argument("--concurrency", type=int, default=8, help="connections posting")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    args = parser.parse_args(argv)
    ours, copy = measure(args)
    print(
        f"B-iot-ingest: {args.rounds} rounds x {args.batches} batches of {args.size} readings, "
        f"{args.devices} devices ({machine()})"
    )
    print(copy.row())
    print(ours.row(copy))
    ratio = ours.median / copy.median if copy.median else 0.0
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  B-iot-ingest ratio {ratio:.2f}x — {verdict} the target of {TARGET}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
