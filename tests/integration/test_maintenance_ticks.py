"""Beat's maintenance ticks (a relay sweep every second here) stay out of Flower's task list
and out of the log: with a worker and beat running, Flower lists only the jobs' attempts."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from config import Settings
from devstack.processes import free_port, wait_until
from store.db import transaction
from store.models import ScheduleFire
from tests.support.api import submit_all
from tests.support.flower import flower_env, get, live_worker, start_flower
from tests.support.stack import start_process, start_worker
from workers.task_events import attempt_uuid


def sweeps(settings: Settings) -> int:
    """How many relay sweeps beat has fired in this run's ledger."""
    with transaction(settings) as session:
        count = select(func.count()).where(ScheduleFire.schedule == "relay-sweep")
        return int(session.scalar(count) or 0)


def test_maintenance_ticks_stay_out_of_flower_and_the_log(
    settings: Settings, clean_ledger: None, tmp_path: Path
) -> None:
    flower, base = start_flower(flower_env(settings, tmp_path, port=free_port()), tmp_path / "f")
    worker = start_worker(settings, tmp_path, name="ticks")
    beat = None
    try:
        live_worker(base)
        before = sweeps(settings)
        beat = start_process(settings, tmp_path, "beat")
        wait_until(lambda: sweeps(settings) >= before + 3, timeout=30, what="three sweeps")
        # No relay runs here: the job waits for a sweep to publish it, so once it has
        # succeeded the worker has run sweeps too.
        [job_id] = submit_all(settings, [("system.echo", {"n": 1})])
        attempt = attempt_uuid(job_id, 1)
        wait_until(
            lambda: get(base, "/api/tasks").get(attempt, {}).get("state") == "SUCCESS",
            timeout=30,
            what="Flower to see the swept job succeed",
        )
        wait_until(lambda: sweeps(settings) >= before + 6, timeout=30, what="three more sweeps")
        tasks = get(base, "/api/tasks")
        assert not [t for t in tasks.values() if t["name"].startswith("maintenance.")], tasks
        assert all(":" in uuid for uuid in tasks), tasks  # job attempts, no broker messages
        # The worker's banner lists its tasks once (`. maintenance.relay_sweep`); no tick
        # adds a line of its own, in the worker's log or in beat's.
        ticks = [
            line
            for line in worker.output().splitlines()
            if "maintenance." in line and not line.lstrip().startswith(".")
        ]
        assert ticks == []
        # (beat_slot_taken stays: beat ticks twice per one-second slot at this interval, and
        # with two beats it is how the loser says so.)
        fired = [
            line
            for line in beat.output().splitlines()
            if "relay-sweep" in line and "beat_slot_taken" not in line
        ]
        assert fired == []
    finally:
        if beat is not None:
            beat.stop()
        worker.stop()
        flower.stop()
