"""Fixtures: a private PostgreSQL database and Redis key prefix per run, and real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from config import (
    DatabaseSettings,
    JobPolicy,
    ReaperSettings,
    RedisSettings,
    RelaySettings,
    Settings,
)
from ops.migrate import upgrade
from store.api_keys import create_key
from store.db import dispose_engines, transaction
from tasks.registry import domains
from tests.support.keys import MakeKey
from tests.support.ledger import clean_tables
from tests.support.payments import start_simulator
from tests.support.servers import ADMIN_URL, REDIS_URL, RUN_ID
from tests.support.stack import start_api, start_process, start_worker


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database created for this run and dropped after it (nothing else is touched)."""
    name = f"switchyard_test_{RUN_ID}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(ADMIN_URL, name).replace("postgresql://", "postgresql+psycopg://", 1)
    dispose_engines()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix owned by this run; only keys under it are deleted afterwards."""
    prefix = f"switchyard-test-{RUN_ID}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_prefix: str) -> Settings:
    """Settings for this run: fast retries, short leases, quick sweeps."""
    s = Settings(
        env="test",
        log_format="json",
        database=DatabaseSettings(url=database_url, pool_size=5),
        redis=RedisSettings(
            url=REDIS_URL,
            key_prefix=redis_prefix,
            visibility_timeout=30,
            unacked_restore_interval=1,
        ),
        relay=RelaySettings(sweep_interval=0.5, batch_size=200),
        reaper=ReaperSettings(interval=0.5, quarantine_after=3),
        default_policy=JobPolicy(backoff_base=0.2, backoff_cap=1.0, lease_timeout=20),
        job_policies={
            "system.sleep": JobPolicy(lease_timeout=3, backoff_base=0.2, backoff_cap=1.0),
            "system.fail": JobPolicy(
                max_attempts=3, jitter=False, backoff_base=0.3, backoff_cap=1, lease_timeout=20
            ),
        },
    )
    upgrade(s)
    return s


@pytest.fixture
def clean_ledger(settings: Settings) -> Iterator[None]:
    """Empty the run's own tables after each test that writes to them."""
    yield
    clean_tables(settings)


@pytest.fixture
def make_key(settings: Settings, clean_ledger: None) -> MakeKey:
    """Create an API key: make_key(name, scopes) -> token."""

    def make(
        name: str = "billing-svc", scopes: tuple[str, ...] = ("jobs:write", "jobs:read")
    ) -> str:
        with transaction(settings) as session:
            _, token = create_key(
                session, name=name, scopes=list(scopes), known=domains(settings).scopes
            )
        return token

    return make


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where child processes write their output."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def api(settings: Settings, logs_dir: Path) -> Iterator[str]:
    """The base URL of a real intake process for this run."""
    proc, base = start_api(settings, logs_dir)
    yield base
    proc.stop()


@pytest.fixture(scope="module")
def pipeline(settings: Settings, logs_dir: Path, api: str) -> Iterator[str]:
    """API, relay and a worker running for one module (so other modules see no processing)."""
    relay = start_process(settings, logs_dir, "relay")
    worker = start_worker(settings, logs_dir)
    yield api
    worker.stop()
    relay.stop()


@pytest.fixture(scope="session")
def payment_simulator(logs_dir: Path) -> Iterator[str]:
    """The base URL of a payment provider simulator process for this run."""
    proc, base = start_simulator(logs_dir)
    yield base
    proc.stop()
