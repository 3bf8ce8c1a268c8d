"""Backpressure, never silent loss: a device over its rate gets 429, a lagging iot queue
makes ingestion answer 503, both with Retry-After; every batch answered 202 is stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config import Settings
from devstack.processes import wait_until
from store.db import autocommit
from store.stats import oldest_ready_age
from tests.support.api import count_rows
from tests.support.iot import batch, provision, reading, send
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.stack import start_worker

MAX_LAG = 8.0


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path) -> Iterator[IotStack]:
    """No worker, and no beat (whose roll-up jobs would fill the iot queue): the queue holds
    only the test's batches until the test starts a worker."""
    yield from run_iot_stack(
        settings,
        logs_dir,
        name="iot-bp",
        worker=False,
        beat=False,
        rate_limit=3,
        rate_window=86_400,
        max_lag=MAX_LAG,
        lag_check=0,
    )


@pytest.fixture
def admin(stack: IotStack) -> Iterator[str]:
    """A key to provision with; the tables are emptied afterwards."""
    yield stack.key("iot:admin", "iot:read")
    clean_tables(stack.settings)


def test_a_device_over_its_rate_gets_429_with_retry_after(stack: IotStack, admin: str) -> None:
    token = provision(stack.base, admin, device="bp-rate")
    other = provision(stack.base, admin, device="bp-other")
    body = batch(reading("temp", datetime.now(UTC), 1.0))
    assert [send(stack.base, token, body).status_code for _ in range(3)] == [202] * 3
    refused = send(stack.base, token, body)
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    assert send(stack.base, other, body).status_code == 202  # the limit is per device
    assert count_rows(stack.settings, "iot_batches") == 4


def test_a_lagging_queue_answers_503_until_workers_catch_up(
    stack: IotStack, admin: str, logs_dir: Path
) -> None:
    token = provision(stack.base, admin, device="bp-lag")
    body = batch(reading("temp", datetime.now(UTC), 1.0))
    assert send(stack.base, token, body).status_code == 202

    def lagging() -> bool:
        with autocommit(stack.settings) as session:
            return (oldest_ready_age(session, "iot") or 0.0) > MAX_LAG

    wait_until(lagging, timeout=30, what="the iot queue to fall behind")
    behind = send(stack.base, token, body)
    assert behind.status_code == 503 and behind.json()["code"] == "ingest_behind"
    assert behind.headers["Retry-After"] == "5"
    assert count_rows(stack.settings, "iot_batches") == 1  # the refused one was not kept

    worker = start_worker(stack.settings, logs_dir, name="iot-bp-worker")
    try:
        wait_until(lambda: not lagging(), timeout=60, what="the worker to catch up")
        assert send(stack.base, token, body).status_code == 202
    finally:
        worker.stop()
