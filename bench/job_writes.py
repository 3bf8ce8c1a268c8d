"""Writes per job: row versions and index entries the ledger writes for one no-op job.

`system.echo` jobs go through the real pipeline (`enqueue_many` in one commit, `switchyard
relay`, `switchyard worker`) in a database of their own; PostgreSQL's own counters
(`pg_stat_user_tables`) are read before the jobs and after every process that wrote them has
exited (a backend flushes its counters at exit). Index entries are derived from those counters
and each table's indexes: an insert or a non-HOT update adds one entry to every index whose
predicate the new row version satisfies; a HOT update adds none. For a partial index the
predicate is evaluated on the final rows' history as stated in the index's `WHERE`; here that
is `state = 'running'` (one version per attempt, the claim's) and `idempotency_key IS NOT NULL`
(none: these jobs have no key).

    python -m bench.job_writes [--jobs N]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from sqlalchemy import func, select, text

from bench.common import bench_env, progress, switchyard, wait_ready
from config import Settings
from store.db import dispose_engines, transaction
from store.models import Job
from store.states import JobState
from tasks.enqueue import draft_job, enqueue_many

TABLES = ("jobs", "outbox", "job_attempts")
COUNTERS = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del"
    " FROM pg_stat_user_tables WHERE relname = ANY(:tables)"
)
INDEXES = (
    "SELECT t.relname AS tab, i.relname AS idx, pg_get_expr(x.indpred, x.indrelid) AS pred"
    " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
    " JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = ANY(:tables) ORDER BY 1, 2"
)


@dataclass(frozen=True)
class Counts:
    """One table's counters."""

    ins: int
    upd: int
    hot: int
    dele: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.ins - other.ins, self.upd - other.upd, self.hot - other.hot, self.dele - other.dele
        )


def _counters(settings: Settings) -> dict[str, Counts]:
    with transaction(settings) as s:
        s.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = s.execute(text(COUNTERS), {"tables": list(TABLES)}).all()
    return {r.relname: Counts(r.n_tup_ins, r.n_tup_upd, r.n_tup_hot_upd, r.n_tup_del) for r in rows}


def main() -> None:
    """Run the jobs and print every write per job."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2_000)
    jobs = parser.parse_args().jobs
    with bench_env("writes", concurrency=2) as env:
        settings = env.settings
        with transaction(settings) as s:
            indexes = s.execute(text(INDEXES), {"tables": list(TABLES)}).all()
            for table in TABLES:  # no vacuum pruning between the two readings
                s.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = false)"))
        dispose_engines()
        time.sleep(1.5)
        before = _counters(settings)
        worker = env.start(*switchyard("worker", "--concurrency", "2"), name="worker")
        relay = env.start(*switchyard("relay"), name="relay")
        wait_ready(worker, "ready.", what="the worker")
        drafts = [draft_job("system.echo", {"i": i}, producer="w", settings=settings)
                  for i in range(jobs)]  # fmt: skip
        with transaction(settings) as s:
            enqueue_many(s, drafts)
        done = select(func.count()).where(Job.state == JobState.SUCCEEDED)
        deadline = time.monotonic() + 120 + jobs / 50
        while time.monotonic() < deadline:
            with transaction(settings) as s:
                if s.execute(done).scalar_one() == jobs:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("the jobs did not all succeed in time")
        worker.stop()
        relay.stop()
        dispose_engines()
        time.sleep(1.5)  # let the exited backends' counters land
        delta = {t: c - before[t] for t, c in _counters(settings).items()}
        progress(f"{jobs} system.echo jobs, one attempt each")
        print(f"{'table':<14}{'ins':>8}{'upd':>8}{'hot':>8}{'del':>8}  per job (of {jobs})")
        heap = entries = 0.0
        for table in TABLES:
            d = delta[table]
            ins, upd, hot, dele = (v / jobs for v in (d.ins, d.upd, d.hot, d.dele))
            heap += ins + upd + dele
            print(f"{table:<14}{ins:>8.2f}{upd:>8.2f}{hot:>8.2f}{dele:>8.2f}")
            for idx in (i for i in indexes if i.tab == table):
                if idx.pred is None:
                    n = ins + upd - hot
                elif "running" in idx.pred:
                    n = 1.0  # the claim's version, once per attempt
                else:
                    n = 0.0  # idempotency_key IS NOT NULL: these jobs have none
                entries += n
                print(
                    f"  index {idx.idx:<40}{n:>6.2f}" + (f"  WHERE {idx.pred}" if idx.pred else "")
                )
        print(f"per job: {heap:.2f} row writes (ins + upd + del), {entries:.2f} index entries")


if __name__ == "__main__":
    main()
