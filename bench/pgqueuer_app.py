"""The pgqueuer contender's worker: `python -m bench.pgqueuer_app`, pgqueuer's defaults.

It runs `pgqueuer.run(create)`, what `pgq run bench.pgqueuer_app:create` does (pgqueuer 1.6's
CLI fails to parse its own default `--log-level` with this environment's typer).

`bench.noop` does nothing (bench.drain reads completions from pgqueuer's own `pgqueuer_log`);
`bench.stamp` prints its start time beside the send time in its payload (bench.latency reads
the line from the worker's output). The DSN comes from `PGDSN`, as for pgqueuer's own CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pgqueuer
import psycopg
from pgqueuer import PgQueuer
from pgqueuer.models import Job
from pgqueuer.queries import Queries

STAMP = "bench-stamp"


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    """A PgQueuer on one autocommit psycopg connection, with the two bench entrypoints."""
    conn = await psycopg.AsyncConnection.connect(os.environ["PGDSN"], autocommit=True)
    pgq = PgQueuer.from_psycopg_connection(conn)

    @pgq.entrypoint("bench.noop")
    async def noop(job: Job) -> None:
        """Do nothing."""

    @pgq.entrypoint("bench.stamp")
    async def stamp(job: Job) -> None:
        """Print `bench-stamp <sent> <started>`, the start taken first."""
        started = time.time()
        sent = json.loads(job.payload or b"{}")["t"]
        print(f"{STAMP} {sent!r} {started!r}", flush=True)

    async with conn:
        yield pgq


async def install(url: str) -> None:
    """Install pgqueuer's schema in the database at `url`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await Queries.from_psycopg_connection(conn).install()


if __name__ == "__main__":
    asyncio.run(pgqueuer.run(create))
