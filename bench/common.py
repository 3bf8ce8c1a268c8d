"""What both benchmarks share: a private database and Redis prefix, processes, reporting."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import redis
from psycopg import sql

from config import DatabaseSettings, RedisSettings, Settings, WorkerSettings
from devstack.processes import Process, free_port, settings_env, switchyard, wait_until
from ops.migrate import upgrade
from store.db import get_engine

ADMIN_URL = os.environ.get(
    "SWITCHYARD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOGS = Path(os.environ.get("SWITCHYARD_BENCH_LOGS", "/tmp/switchyard-bench"))

__all__ = [
    "ADMIN_URL",
    "LOGS",
    "REDIS_URL",
    "BenchEnv",
    "Process",
    "Series",
    "bench_env",
    "free_port",
    "machine",
    "own_database",
    "progress",
    "serve",
    "settings_env",
    "switchyard",
    "wait_until",
]


def progress(message: str) -> None:
    """One progress line on stderr, so stdout keeps only the figures."""
    print(f"  … {message}", file=sys.stderr, flush=True)


def machine() -> str:
    """A one-line description of where the numbers were taken."""
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


@dataclass
class Series:
    """Repeated measurements of one contender, in jobs/s (and machine CPU ms per job, if taken)."""

    name: str
    values: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median of the rounds (0 if none ran)."""
        return statistics.median(self.values) if self.values else 0.0

    def row(self, reference: Series | None = None) -> str:
        """A table row: median, every round, and the ratio to `reference`."""
        rounds = " ".join(f"{v:8.0f}" for v in self.values)
        ratio = f"{self.median / reference.median:6.2f}x" if reference and reference.median else ""
        cpu = f"   CPU {statistics.median(self.cpu_ms):5.2f} ms/job" if self.cpu_ms else ""
        return f"  {self.name:<34} {self.median:9.0f}/s{cpu}   rounds: {rounds}   {ratio}"


@dataclass(frozen=True)
class BenchEnv:
    """A private database and Redis key prefix, and settings pointing at them."""

    settings: Settings
    database: str
    redis_prefix: str
    logs: Path

    def env(self) -> dict[str, str]:
        """The environment that makes a child process read exactly these settings."""
        return settings_env(self.settings)

    def start(self, *args: str, name: str, env: dict[str, str] | None = None) -> Process:
        """Start a child process with its output in this run's log folder."""
        return Process(list(args), env=env or self.env(), log_path=self.logs / f"{name}.log")


def database_url(name: str) -> str:
    """The libpq URL of database `name` on the benchmark's server."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def own_database(name: str) -> Iterator[str]:
    """Create database `name`, yield its libpq URL, and drop it (it alone) afterwards."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _dispose_engines(database: str) -> None:
    """Close this process's pooled connections to `database` (and only those)."""
    engines = get_engine.__globals__["_engines"]
    for key in [k for k in engines if k[1].endswith(f"/{database}")]:
        engines.pop(key).dispose()


@contextmanager
def bench_env(kind: str, *, concurrency: int = 2) -> Iterator[BenchEnv]:
    """Create `switchyard_bench_<id>` and a Redis prefix; drop both (and only them) afterwards."""
    run = uuid.uuid4().hex[:8]
    name = f"switchyard_bench_{kind}_{run}"
    prefix = f"switchyard-bench-{run}:"
    logs = LOGS / f"{kind}-{run}"
    logs.mkdir(parents=True, exist_ok=True)
    sqlalchemy_url = database_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    with own_database(name):
        try:
            settings = Settings(
                env="test",
                log_format="json",
                database=DatabaseSettings(url=sqlalchemy_url),
                redis=RedisSettings(url=REDIS_URL, key_prefix=prefix),
                worker=WorkerSettings(concurrency=concurrency),
            )
            upgrade(settings)
            yield BenchEnv(settings=settings, database=name, redis_prefix=prefix, logs=logs)
        finally:
            _dispose_engines(name)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    progress(f"dropped database {name} and {len(keys)} Redis keys under {prefix!r}")


def serve(env: BenchEnv, args: list[str], name: str) -> tuple[Process, int]:
    """Start an HTTP server with `--port` (a free one) and wait until `/healthz` answers."""
    port = free_port()
    proc = env.start(*args, "--port", str(port), name=name)

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{proc.output()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, interval=0.1, what=f"{name} to answer")
    return proc, port


def wait_ready(proc: Process, marker: str, *, what: str, timeout: float = 60) -> None:
    """Wait until `marker` shows in the process's output; fail if it exits first."""

    def ready() -> bool:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{proc.output()[-3000:]}")
        return marker in proc.output()

    wait_until(ready, timeout=timeout, interval=0.1, what=what)
