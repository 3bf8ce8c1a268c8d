"""A real Flower process on the run's broker: it lists our worker and each job's attempts with
their real outcomes, keeps its history across a restart, demands credentials, and refuses to
start without them outside dev."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from devstack.processes import free_port, switchyard, wait_until
from tests.support.flower import PASSWORD, USER, flower_env, get, live_worker, start_flower
from tests.support.keys import MakeKey
from tests.support.stack import start_process
from workers.task_events import attempt_uuid


def _submit(pipeline: str, token: str, job_type: str, payload: dict[str, Any]) -> str:
    """Submit a job over HTTP; its id."""
    resp = httpx.post(
        f"{pipeline}/v1/jobs",
        json={"type": job_type, "payload": payload},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def test_flower_lists_workers_and_tasks_and_keeps_history_across_restarts(
    pipeline: str, make_key: MakeKey, settings: Settings, tmp_path: Path
) -> None:
    env = flower_env(settings, tmp_path, port=free_port())
    flower, base = start_flower(env, tmp_path / "flower.log")
    try:
        assert httpx.get(f"{base}/api/workers", timeout=5).status_code == 401
        # Heartbeats in Flower's own state: its event receiver is live, no task event is missed.
        alive = wait_until(
            lambda: {n for n, up in get(base, "/api/workers", status=1).items() if up},
            timeout=20,
            what="Flower to receive the worker's heartbeats",
        )
        assert any(name.startswith("worker@") for name in alive), alive
        workers = get(base, "/api/workers", refresh=1)
        assert any(name.startswith("worker@") for name in workers), workers
        token = make_key()
        attempt = attempt_uuid(_submit(pipeline, token, "system.echo", {"n": 1}), 1)
        task = wait_until(
            lambda: (
                (get(base, "/api/tasks").get(attempt) or {}).get("state") == "SUCCESS"
                and get(base, "/api/tasks")[attempt]
            ),
            timeout=30,
            what="Flower to see the task succeed",
        )
        assert task["name"] == "system.echo"
        # A long attempt shows as STARTED while it runs: its start is not held for its end.
        sleeper = attempt_uuid(_submit(pipeline, token, "system.sleep", {"seconds": 2}), 1)
        first = wait_until(
            lambda: (
                {"STARTED", "SUCCESS"} & {(get(base, "/api/tasks").get(sleeper) or {}).get("state")}
            ),
            timeout=30,
            interval=0.2,
            what="Flower to see the sleeping job start",
        )
        assert first == {"STARTED"}
        lengths = get(base, "/api/queues/length")["active_queues"]
        assert {q["name"] for q in lengths} >= {"maintenance", "notifications"}
    finally:
        flower.stop()
    # Flower's shelve may add a suffix to the file name (flower.db, flower.db.db, .dat …).
    assert any(p.name.startswith("flower.db") for p in (tmp_path / "flower").iterdir())

    again, base = start_flower(env, tmp_path / "flower-again.log")
    try:
        assert get(base, "/api/tasks").get(attempt, {}).get("state") == "SUCCESS"
    finally:
        again.stop()


def test_flower_shows_each_attempt_dead_jobs_as_failed_and_retries_as_retried(
    pipeline: str, make_key: MakeKey, settings: Settings, tmp_path: Path
) -> None:
    env = flower_env(settings, tmp_path, port=free_port())
    flower, base = start_flower(env, tmp_path / "flower-outcomes.log")
    try:
        worker = live_worker(base)
        token = make_key()

        def submit(job_type: str, payload: dict[str, Any]) -> str:
            return _submit(pipeline, token, job_type, payload)

        echoed = [submit("system.echo", {"n": n}) for n in range(2)]
        flaky = submit("system.fail", {"times": 1})  # retried once, then succeeds
        doomed = submit("system.fail", {"times": 9})  # retried twice, dead on attempt 3 of 3
        refused = submit("system.fail", {"times": 1, "mode": "permanent"})  # dead at once
        expected = {
            attempt_uuid(echoed[0], 1): "SUCCESS",
            attempt_uuid(echoed[1], 1): "SUCCESS",
            attempt_uuid(flaky, 1): "RETRY",
            attempt_uuid(flaky, 2): "SUCCESS",
            attempt_uuid(doomed, 1): "RETRY",
            attempt_uuid(doomed, 2): "RETRY",
            attempt_uuid(doomed, 3): "FAILURE",
            attempt_uuid(refused, 1): "FAILURE",
        }
        counts = {"task-received": 8, "task-succeeded": 3, "task-retried": 3, "task-failed": 2}
        seen: dict[str, Any] = {}

        def settled() -> bool:
            seen.update(tasks=get(base, "/api/tasks"))
            seen.update(dashboard={w["hostname"]: w for w in get(base, "/workers", json=1)["data"]})
            states = {uuid: task["state"] for uuid, task in seen["tasks"].items()}
            board = seen["dashboard"].get(worker, {})
            return states == expected and all(board.get(k) == n for k, n in counts.items())

        try:
            wait_until(settled, timeout=60, interval=0.2, what="Flower to see every outcome")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nFlower saw {seen}") from None
        tasks = seen["tasks"]
        # One task per attempt, none for the batches that carried them.
        assert set(tasks) == set(expected)
        for uuid, task in tasks.items():
            job_id, attempt = uuid.split(":")
            assert task["name"] == ("system.echo" if job_id in echoed else "system.fail")
            assert task["worker"] == worker
            assert f"'job_id': '{job_id}'" in task["kwargs"]
            assert task["retries"] == int(attempt) - 1
        assert "failing on purpose" in tasks[attempt_uuid(doomed, 3)]["exception"]
        assert "PermanentError" in tasks[attempt_uuid(refused, 1)]["exception"]
        assert "RetryableError" in tasks[attempt_uuid(flaky, 1)]["exception"]
        assert "succeeded_on_attempt" in tasks[attempt_uuid(flaky, 2)]["result"]
        # An operator finds a job's attempts by its id, and the dead ones by their state.
        assert set(get(base, "/api/tasks", search=doomed)) == {
            attempt_uuid(doomed, n) for n in (1, 2, 3)
        }
        assert set(get(base, "/api/tasks", search=f"kwargs:job_id={flaky}")) == {
            attempt_uuid(flaky, n) for n in (1, 2)
        }
        assert set(get(base, "/api/tasks", state="FAILURE")) == {
            attempt_uuid(doomed, 3),
            attempt_uuid(refused, 1),
        }
    finally:
        flower.stop()


def test_flower_shows_attempts_that_lost_their_worker_as_the_reaper_settles_them(
    pipeline: str, make_key: MakeKey, settings: Settings, logs_dir: Path, tmp_path: Path
) -> None:
    env = flower_env(settings, tmp_path, port=free_port())
    flower, base = start_flower(env, tmp_path / "flower-lost.log")
    beat = None
    try:
        live_worker(base)
        beat = start_process(settings, logs_dir, "beat")  # fires the reaper every half second
        # The type's 3 s lease is its hard time limit: each attempt's process is killed, the
        # reaper retries the job twice, then quarantines it (dead) on its third lost worker.
        job_id = _submit(pipeline, make_key(), "system.sleep", {"seconds": 60})
        expected = {
            attempt_uuid(job_id, 1): "RETRY",
            attempt_uuid(job_id, 2): "RETRY",
            attempt_uuid(job_id, 3): "FAILURE",
        }
        seen: dict[str, Any] = {}

        def settled() -> bool:
            seen.update(get(base, "/api/tasks", search=job_id))
            return {uuid: task["state"] for uuid, task in seen.items()} == expected

        try:
            wait_until(settled, timeout=90, interval=0.5, what="the reaper to settle 3 attempts")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nFlower saw {seen}") from None
        assert "WorkerLost" in seen[attempt_uuid(job_id, 3)]["exception"]
        assert "dead" in seen[attempt_uuid(job_id, 3)]["exception"]
    finally:
        if beat is not None:
            beat.stop()
        flower.stop()


def test_flower_refuses_to_start_without_credentials_outside_dev(
    settings: Settings, tmp_path: Path
) -> None:
    env = flower_env(settings, tmp_path, port=free_port())
    del env["SWITCHYARD_FLOWER__USER"], env["SWITCHYARD_FLOWER__PASSWORD"]
    assert env["SWITCHYARD_ENV"] == "test"
    done = subprocess.run(switchyard("flower"), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Flower needs SWITCHYARD_FLOWER__USER and SWITCHYARD_FLOWER__PASSWORD" in done.stderr


def test_flower_metrics_need_the_credentials(settings: Settings, tmp_path: Path) -> None:
    env = flower_env(settings, tmp_path, port=free_port())
    flower, base = start_flower(env, tmp_path / "flower-metrics.log")
    try:
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
        wrong = httpx.get(f"{base}/metrics", auth=(USER, "not-the-password"), timeout=5)
        assert wrong.status_code == 401
        ok = httpx.get(f"{base}/metrics", auth=(USER, PASSWORD), timeout=5)
        assert ok.status_code == 200
        assert "flower_" in ok.text
    finally:
        flower.stop()


@pytest.mark.parametrize("command", [("flower",), ("keys", "list"), ("api",)])
def test_a_lone_flower_password_is_never_printed(
    settings: Settings, tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = flower_env(settings, tmp_path, port=free_port())
    del env["SWITCHYARD_FLOWER__USER"]
    done = subprocess.run(switchyard(*command), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "flower.user and flower.password go together" in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
