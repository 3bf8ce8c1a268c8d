"""B-payments: intents authorized and captured end to end per second vs stock Celery no-ops.

Ours: `--intents` intents, each `POST /v1/payment-intents` (manual capture), `POST …/confirm`
and, once a worker has authorized it at the provider (`requires_capture`), `POST …/capture`;
the API's jobs go through relay → Redis → `switchyard worker` → Stripe's API at the payment
provider simulator (zero latency, no faults) → ledger. Timed from the first request to the
last intent's `succeeded`; each round checks that every intent succeeded with its whole
amount received, one hold, its capture and its fee in the ledger, and the ledger balanced.
Baseline: stock Celery no-op drain, exactly as `bench.drain` runs it, on the same Redis with
the same worker concurrency. Rounds interleave the two; medians are compared.

    python -m bench.payments [--intents 300] [--rounds 3] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time

import httpx
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
from bench.drain_celery import run_celery, start_worker
from store.api_keys import create_key
from store.db import transaction
from tasks.payments import ledger
from tasks.payments.settings import PaymentSettings
from tasks.registry import domains

TARGET = 0.5
POLL = 0.02
CONNECTIONS = 16
AMOUNT = 2_000
READY = text("SELECT id FROM pay_intents WHERE producer = :tag AND status = 'requires_capture'")
STATUSES = text("SELECT status, count(*) FROM pay_intents WHERE producer = :tag GROUP BY status")
# Per intent: the whole amount received, and its hold, capture and fee in the ledger.
CHECK = text(
    "SELECT count(*) FILTER (WHERE i.status = 'succeeded' AND i.amount_captured = i.amount"
    "   AND (SELECT count(*) FROM pay_transfers t WHERE t.id LIKE i.id || ':hold:%') = 1"
    "   AND (SELECT count(*) FROM pay_transfers t WHERE t.id LIKE i.id || ':capture:%') = 1"
    "   AND (SELECT count(*) FROM pay_transfers t WHERE t.id LIKE i.id || ':fee:%') = 1),"
    " extract(epoch FROM max(i.updated_at))"
    " FROM pay_intents i WHERE i.producer = :tag"
)


def _statuses(env: BenchEnv, tag: str) -> dict[str, int]:
    with transaction(env.settings) as session:
        return {s: int(n) for s, n in session.execute(STATUSES, {"tag": tag}).all()}


def _deadline(intents: int) -> float:
    return time.monotonic() + 60 + intents / 10


async def _drive(env: BenchEnv, base: str, token: str, *, intents: int, tag: str) -> None:
    """Create and confirm every intent, and capture each as soon as it is authorized."""
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:

        async def post(path: str, body: dict[str, object], expect: int) -> str:
            resp = await client.post(f"/v1/payment-intents{path}", json=body)
            if resp.status_code != expect:
                raise RuntimeError(f"POST {path} answered {resp.status_code}: {resp.text}")
            return str(resp.json()["id"]) if expect == 201 else ""

        async def start() -> None:
            body = {"amount": AMOUNT, "currency": "USD", "capture_method": "manual"}
            pid = await post("", body, 201)
            await post(f"/{pid}/confirm", {"payment_method": "pm_card_visa"}, 202)

        async def capture(pid: str) -> None:
            await post(f"/{pid}/capture", {}, 202)

        pending = [asyncio.create_task(start()) for _ in range(intents)]
        captured: set[str] = set()
        deadline = _deadline(intents)
        try:
            while len(captured) < intents:
                for task in [t for t in pending if t.done()]:
                    task.result()  # a failed request ends the round
                with transaction(env.settings) as session:
                    ready = set(session.execute(READY, {"tag": tag}).scalars()) - captured
                pending += [asyncio.create_task(capture(pid)) for pid in ready]
                captured |= ready
                if time.monotonic() > deadline:
                    found = _statuses(env, tag)
                    raise RuntimeError(f"{len(captured)}/{intents} authorized: {found}")
                await asyncio.sleep(POLL)
            await asyncio.gather(*pending)
        finally:
            for task in pending:
                task.cancel()


def run_ours(env: BenchEnv, base: str, *, intents: int, tag: str) -> float:
    """Drive `intents` intents to `succeeded` as producer `tag`; intents/s, checked."""
    with transaction(env.settings) as session:
        _, token = create_key(
            session, name=tag, scopes=["payments:write"], known=domains(env.settings).scopes
        )
    start = time.time()
    asyncio.run(_drive(env, base, token, intents=intents, tag=tag))
    deadline = _deadline(intents)
    while (found := _statuses(env, tag)).get("succeeded", 0) < intents:
        if set(found) - {"processing", "requires_capture", "succeeded"}:
            raise RuntimeError(f"intents went astray: {found}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every intent succeeded before the deadline: {found}")
        time.sleep(POLL)
    with transaction(env.settings) as session:
        complete, last = session.execute(CHECK, {"tag": tag}).one()
        if complete != intents:
            raise RuntimeError(f"only {complete}/{intents} intents have their ledger transfers")
        if imbalance := ledger.imbalance(session):
            raise RuntimeError(f"the ledger is out of balance: {imbalance}")
    return intents / (float(last) - start)


def _stock(env: BenchEnv, jobs: int, batch: int) -> float:
    return run_celery(env, "stock", jobs=jobs, batch=batch, timeout=60 + jobs / 50)


def _start(env: BenchEnv, concurrency: int) -> list[Process]:
    c = str(concurrency)
    procs = [
        env.start(*switchyard("worker", "--concurrency", c, "--hostname", "bench-pay@%h"),
                  name="worker-ours"),
        env.start(*switchyard("relay"), name="relay"),
        start_worker(env, "stock", concurrency),
    ]  # fmt: skip
    wait_ready(procs[0], "ready.", what="our worker")
    wait_ready(procs[2], "ready.", what="the stock worker")
    return procs


def measure(*, intents: int, concurrency: int, rounds: int) -> tuple[Series, Series]:
    """Run interleaved rounds; returns (ours, stock)."""
    ours = Series("switchyard intents authorized+captured")
    stock = Series("stock Celery no-op (result backend)")
    with bench_env("payments", concurrency=concurrency) as plain:
        simulator, sim_port = serve(plain, [sys.executable, "-m", "devstack.payment_simulator"],
                                    "simulator")  # fmt: skip
        cfg = PaymentSettings(gateway="stripe", api_base=f"http://127.0.0.1:{sim_port}")
        env = dataclasses.replace(
            plain, settings=plain.settings.model_copy(update={"payments": cfg})
        )
        procs = [simulator, *_start(env, concurrency)]
        api, port = serve(env, switchyard("api"), "api")
        procs.append(api)
        base, batch = f"http://127.0.0.1:{port}", env.settings.relay.batch_size
        try:
            warm = max(20, intents // 10)
            progress(f"warming up ({warm} intents, {warm} no-ops)")
            run_ours(env, base, intents=warm, tag="bench-warmup")
            _stock(env, warm, batch)
            for n in range(1, rounds + 1):
                ours.values.append(run_ours(env, base, intents=intents, tag=f"bench-round-{n}"))
                stock.values.append(_stock(env, intents, batch))
                progress(
                    f"round {n}/{rounds}: ours {ours.values[-1]:.0f}/s, "
                    f"stock {stock.values[-1]:.0f}/s"
                )
        finally:
            for proc in reversed(procs):
                proc.stop()
    return ours, stock


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print medians and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.payments", description=__doc__)
    parser.add_argument("--intents", type=int, default=300, help="intents (and no-ops) per round")
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes, each side")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"B-payments: {args.rounds} rounds x {args.intents} intents, worker concurrency "
        f"{args.concurrency} ({machine()})",
        flush=True,
    )
    ours, stock = measure(intents=args.intents, concurrency=args.concurrency, rounds=args.rounds)
    print(stock.row())
    print(ours.row(stock))
    ratio = ours.median / stock.median if stock.median else 0.0
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  B-payments ratio {ratio:.2f}x stock Celery — {verdict} the target of {TARGET}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
