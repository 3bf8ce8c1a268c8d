"""B-recon: settlement lines reconciled per second against a raw COPY of the same lines.

`--intents` captured intents are seeded (1 % of the report's lines then disagree with them: an
amount off by one); each round, interleaved, either reconciles the whole report
(`reconciliation.reconcile`: the lines COPYed into a staging table, converted to ISO units
there, matched against the intents in one query, the exceptions recorded, one commit) or
COPYs the same lines into a staging table (one commit). Medians are
compared; the target is 0.2x.

    python -m bench.recon [--intents 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import text

from bench.common import Series, bench_env, machine, progress
from config import Settings
from store.db import transaction
from tasks.payments import reconciliation
from tasks.payments.gateway import SettlementLine

TARGET = 0.2
SEED = text(
    "INSERT INTO pay_intents (id, producer, amount, currency, status, capture_method,"
    " amount_captured, fee, provider_ref, chain_head, updated_at)"
    " SELECT 'pi_local_' || n, 'bench', 2000, 'USD', 'succeeded', 'automatic', 2000, 58,"
    " 'pi_' || n, '0', now() - interval '1 hour' FROM generate_series(1, :n) AS n"
)
STAGING = (
    "CREATE TABLE bench_settlement_staging (id text, kind text, provider_ref text,"
    " amount bigint, fee bigint, currency text)"
)


def _report(intents: int) -> list[SettlementLine]:
    return [
        SettlementLine(f"txn_{n}", "charge", f"pi_{n}", 2000 + (n % 100 == 0), 58, "USD")
        for n in range(1, intents + 1)
    ]


def _reconcile(settings: Settings, report: list[SettlementLine]) -> float:
    start = time.perf_counter()
    with transaction(settings) as session:
        summary = reconciliation.reconcile(session, report, overrides={}, settle_after=0)
    elapsed = time.perf_counter() - start
    assert summary.found == len(report) // 100, summary
    return len(report) / elapsed


def _copy(settings: Settings, report: list[SettlementLine]) -> float:
    start = time.perf_counter()
    with transaction(settings) as session:
        cursor = session.connection().connection.cursor()
        with cursor.copy("COPY bench_settlement_staging FROM STDIN") as copy:
            for line in report:
                copy.write_row((line.id, line.kind, line.provider_ref, line.amount, line.fee,
                                line.currency))  # fmt: skip
    return len(report) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print medians and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.recon", description=__doc__)
    parser.add_argument("--intents", type=int, default=20_000, help="lines in the report")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    copy = Series("raw COPY into a staging table")
    ours = Series("switchyard reconcile")
    report = _report(args.intents)
    with bench_env("recon") as env:
        with transaction(env.settings) as session:
            session.execute(SEED, {"n": args.intents})
            session.execute(text(STAGING))
        for n in range(1, args.rounds + 1):
            copy.values.append(_copy(env.settings, report))
            ours.values.append(_reconcile(env.settings, report))
            progress(
                f"round {n}/{args.rounds}: copy {copy.values[-1]:.0f}/s, "
                f"ours {ours.values[-1]:.0f}/s"
            )
    print(f"B-recon: {args.intents} settlement lines, {args.rounds} rounds ({machine()})")
    print(copy.row())
    print(ours.row(copy))
    ratio = ours.median / copy.median if copy.median else 0.0
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"  B-recon ratio {ratio:.2f}x — {verdict} the target of {TARGET}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
