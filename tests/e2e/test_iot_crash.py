"""A worker killed with SIGKILL in the middle of storing a batch (its readings inserted, not
committed) stores nothing: the batch's retry stores every reading exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select, text

from config import Settings
from devstack.processes import wait_until
from store.db import transaction
from store.models import Job
from tests.support.api import count_rows, finished
from tests.support.iot import batch, provision, reading, send
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables
from tests.support.stack import start_worker

GATE = 47_110  # the advisory lock the test holds while the worker waits on it
TRIGGER = f"""
CREATE FUNCTION iot_test_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_advisory_xact_lock_shared({GATE}); RETURN NULL; END $$;
CREATE TRIGGER iot_test_gate AFTER INSERT ON iot_latest
  FOR EACH STATEMENT EXECUTE FUNCTION iot_test_gate();
"""


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path) -> Iterator[IotStack]:
    """API, relay and beat; the test starts (and kills) its workers."""
    yield from run_iot_stack(settings, logs_dir, name="iot-crash", worker=False, lease=15)


@pytest.fixture
def gate(stack: IotStack) -> Iterator[psycopg.Connection]:
    """A trigger that makes the ingest statement wait, mid-batch, on a lock this holds."""
    url = stack.settings.database.url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TRIGGER)
        conn.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        yield conn
        conn.execute("SELECT pg_advisory_unlock_all()")
        conn.execute("DROP TRIGGER IF EXISTS iot_test_gate ON iot_latest")
        conn.execute("DROP FUNCTION IF EXISTS iot_test_gate()")
    clean_tables(stack.settings)


def _waiting_on_gate(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
        (GATE,),
    ).fetchone()
    return bool(row and row[0])


def test_a_worker_killed_mid_batch_stores_nothing_twice(
    stack: IotStack, gate: psycopg.Connection, logs_dir: Path
) -> None:
    token = provision(stack.base, stack.key("iot:admin"), device="crash-1")
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    readings = [reading("temp", t + timedelta(seconds=n), float(n % 100)) for n in range(500)]
    answer = send(stack.base, token, batch(*readings, *readings[:50]))
    assert answer.status_code == 202, answer.text
    batch_id = uuid.UUID(answer.json()["id"])

    doomed = start_worker(stack.settings, logs_dir, name="iot-doomed")
    wait_until(lambda: _waiting_on_gate(gate), timeout=60, what="the worker to be mid-batch")
    # The readings are inserted in the worker's open transaction: kill it there.
    with transaction(stack.settings) as session:
        assert session.scalar(text("SELECT count(*) FROM iot_readings")) == 0
    doomed.kill()
    doomed.popen.wait(10)
    doomed.stop()
    gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))

    survivor = start_worker(stack.settings, logs_dir, name="iot-survivor")
    try:
        with transaction(stack.settings) as session:
            job_id = session.scalars(select(Job.id).where(Job.type == "iot.ingest")).one()
        state, outcomes = finished(stack.settings, [job_id])[job_id]
    finally:
        survivor.stop()
    assert state == "succeeded" and "lost" in outcomes and outcomes[-1] == "succeeded"
    assert count_rows(stack.settings, "iot_readings") == 500
    with transaction(stack.settings) as session:
        counts = session.execute(
            text("SELECT stored, duplicates, conflicts, status FROM iot_batches WHERE id = :id"),
            {"id": batch_id},
        ).one()
    assert tuple(counts) == (500, 50, 0, "stored")
    assert count_rows(stack.settings, "iot_latest") == 1
