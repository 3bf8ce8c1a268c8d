"""Intake benchmark: durable accepted jobs/s through `switchyard api` vs a bare 202 endpoint.

Both servers are one uvicorn process with the same options; the load is N keep-alive
connections (default 32) posting `system.echo` jobs back to back. Rounds alternate between
the two servers and the medians are compared. Every 202 from the real API is checked
against the ledger afterwards: a job counts only if its row is committed.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import func, select

from bench.common import (
    BenchEnv,
    Series,
    bench_env,
    machine,
    progress,
    serve,
    switchyard,
)
from bench.load import post_request, run_load
from store.api_keys import create_key
from store.db import transaction
from store.models import Job

TARGET = 0.5
BODY = {"type": "system.echo", "payload": {"n": 1, "text": "benchmark"}}


def _round(port: int, request: bytes, *, total: int, concurrency: int) -> float:
    result = run_load("127.0.0.1", port, request, total=total, concurrency=concurrency)
    others = {s: n for s, n in result.statuses.items() if s != 202}
    if others:
        raise RuntimeError(f"non-202 answers on port {port}: {others}")
    return result.rate(202)


def _committed(env: BenchEnv) -> int:
    with transaction(env.settings) as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


def measure(*, requests: int, concurrency: int, rounds: int, warmup: int) -> tuple[Series, Series]:
    """Run the rounds; returns (ours, bare) in accepted jobs/s."""
    ours, bare = Series("switchyard api (202 after commit)"), Series("bare FastAPI 202, no I/O")
    with bench_env("intake") as env:
        with transaction(env.settings) as session:
            _, token = create_key(
                session, name="bench", scopes=["jobs:write"], known=frozenset({"jobs:write"})
            )
        api, api_port = serve(env, switchyard("api"), "api")
        plain, bare_port = serve(env, [sys.executable, "-m", "bench.bare_api"], "bare")
        try:
            headers = {"Authorization": f"Bearer {token}"}
            req_api = post_request("127.0.0.1", api_port, "/v1/jobs", BODY, headers)
            req_bare = post_request("127.0.0.1", bare_port, "/v1/jobs", BODY, headers)
            progress(f"warming up ({warmup} requests each)")
            _round(api_port, req_api, total=warmup, concurrency=concurrency)
            _round(bare_port, req_bare, total=warmup, concurrency=concurrency)
            accepted = warmup
            for n in range(1, rounds + 1):
                bare.values.append(
                    _round(bare_port, req_bare, total=requests, concurrency=concurrency)
                )
                ours.values.append(
                    _round(api_port, req_api, total=requests, concurrency=concurrency)
                )
                accepted += requests
                last = f"ours {ours.values[-1]:.0f}/s, bare {bare.values[-1]:.0f}/s"
                progress(f"round {n}/{rounds}: {last}")
            committed = _committed(env)
            if committed != accepted:
                raise RuntimeError(f"{accepted} jobs answered 202 but {committed} rows committed")
            progress(f"ledger check: all {committed} accepted jobs are committed rows")
        finally:
            api.stop()
            plain.stop()
    return ours, bare


def main(argv: list[str] | None = None) -> int:
    """Run the intake benchmark and print both figures and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--requests", type=int, default=4_000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (median)")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring")
    args = parser.parse_args(argv)
    print(
        f"intake: {args.rounds} rounds x {args.requests} POST /v1/jobs at concurrency "
        f"{args.concurrency} ({machine()})",
        flush=True,
    )
    ours, bare = measure(
        requests=args.requests,
        concurrency=args.concurrency,
        rounds=args.rounds,
        warmup=args.warmup,
    )
    ratio = ours.median / bare.median if bare.median else 0.0
    print(bare.row())
    print(ours.row(bare))
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  intake ratio {ratio:.2f}x — {verdict} the target of {TARGET}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
