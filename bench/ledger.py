"""B-ledger and B-ledger-hot: ledger transfers per second against a bare INSERT loop.

Each contender runs `--concurrency` threads, each on its own connection, one commit per
unit of work, in interleaved rounds (medians reported):
- bare: one INSERT of a row per commit;
- ledger: one transfer between two of 50 accounts whose debits must not exceed their credits
  (two balance updates, limit checks, idempotent client id), one per commit;
- ledger-hot: the same transfer and, in the same commit, its fee credited to one hot account.

    python -m bench.ledger [--transfers 2000] [--rounds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from collections.abc import Callable

import psycopg
from sqlalchemy import text

from bench.common import Series, bench_env, machine, progress
from config import Settings
from store.db import transaction
from tasks.payments import accounts, ledger
from tasks.payments.ledger import Account, Limit, Transfer

ACCOUNTS = 50
TRANSFER = "SELECT pay_transfer(%s, 'posted', %s, %s, 1, 'USD', NULL, NULL, NULL)"
WITH_FEE = (
    "SELECT pay_transfer(%s, 'posted', %s, %s, 1, 'USD', NULL, NULL, NULL),"
    " pay_transfer(%s, 'posted', %s, 'fees', 1, 'USD', NULL, NULL, NULL)"
)


def _seed(settings: Settings) -> None:
    with transaction(settings) as s:
        accounts.open_account(s, Account("bank", "USD"))
        accounts.open_account(s, Account("fees", "USD", hot=True))
        for n in range(ACCOUNTS):
            accounts.open_account(s, Account(f"a{n}", "USD", Limit.DEBITS_MUST_NOT_EXCEED_CREDITS))
            ledger.create_transfers(
                s, [Transfer(f"seed{n}", debit="bank", credit=f"a{n}", amount=10**12,
                             currency="USD")]
            )  # fmt: skip
        s.execute(text("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, v text)"))


def _work(kind: str) -> Callable[[psycopg.Connection, random.Random], None]:
    def bare(conn: psycopg.Connection, rng: random.Random) -> None:
        conn.execute("INSERT INTO bench_bare (v) VALUES (%s)", (uuid.uuid4().hex,))

    def transfer(conn: psycopg.Connection, rng: random.Random) -> None:
        a, b = rng.sample(range(ACCOUNTS), 2)
        conn.execute(TRANSFER, (uuid.uuid4().hex, f"a{a}", f"a{b}"))

    def with_fee(conn: psycopg.Connection, rng: random.Random) -> None:
        a, b = rng.sample(range(ACCOUNTS), 2)
        tid = uuid.uuid4().hex
        conn.execute(WITH_FEE, (tid, f"a{a}", f"a{b}", tid + ":fee", f"a{b}"))

    return {"bare": bare, "ledger": transfer, "ledger-hot": with_fee}[kind]


def _round(url: str, kind: str, *, total: int, concurrency: int) -> float:
    work = _work(kind)
    per = total // concurrency
    conns = [psycopg.connect(url, autocommit=False) for _ in range(concurrency)]
    errors: list[BaseException] = []

    def run(conn: psycopg.Connection, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(per):
                work(conn, rng)
                conn.commit()
        except BaseException as exc:  # reported after the round
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c, i)) for i, c in enumerate(conns)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    if errors:
        raise errors[0]
    return per * concurrency / elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description="B-ledger and B-ledger-hot")
    parser.add_argument("--transfers", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    series = {k: Series(k) for k in ("bare", "ledger", "ledger-hot")}
    with bench_env("ledger") as env:
        _seed(env.settings)
        url = env.settings.database.url.replace("+psycopg", "")
        for n in range(args.rounds):
            for kind, s in series.items():
                s.values.append(
                    _round(url, kind, total=args.transfers, concurrency=args.concurrency)
                )
            progress(f"round {n + 1}/{args.rounds}")
        with transaction(env.settings) as session:
            assert ledger.imbalance(session) == {}, "the ledger is out of balance"
    bare = series["bare"]
    print(f"B-ledger on {machine()}, {args.concurrency} connections, one commit per unit")
    for s in series.values():
        print(s.row(bare))
    print(f"  B-ledger ratio {series['ledger'].median / bare.median:.2f}x (target >= 0.5x)")
    print(f"  B-ledger-hot ratio {series['ledger-hot'].median / bare.median:.2f}x (target >= 1.0x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
