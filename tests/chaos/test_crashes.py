"""kill -9 of a worker mid-job, and two beat processes racing for the same slots."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from config import Settings
from devstack.processes import isolated, wait_until
from store.db import transaction
from tests.support.api import finished, get_job, submit, submit_all, wait_state
from tests.support.keys import MakeKey
from tests.support.stack import start_api, start_process, start_worker

pytestmark = pytest.mark.chaos


def test_a_job_survives_kill_9_of_its_worker_and_succeeds_once(
    settings: Settings, make_key: MakeKey, logs_dir: Path
) -> None:
    own = isolated(settings)
    api, base = start_api(own, logs_dir, name="api-kill")
    relay = start_process(own, logs_dir, "relay")
    beat = start_process(own, logs_dir, "beat")  # runs the reaper every 0.5 s
    doomed = start_worker(own, logs_dir, name="doomed", concurrency=1)
    survivor = None
    token = make_key()
    try:
        # system.sleep's test lease is 3 s: the reaper notices the lost worker soon after.
        body = {"type": "system.sleep", "payload": {"seconds": 1.5}}
        job_id = submit(base, token, body).json()["id"]
        wait_state(base, token, job_id, {"running"})
        doomed.kill()  # SIGKILL to the worker and its pool child, mid-job
        doomed.popen.wait(10)
        survivor = start_worker(own, logs_dir, name="survivor", concurrency=1)
        job = wait_state(base, token, job_id, {"succeeded", "dead"}, timeout=60)
        assert job["state"] == "succeeded"
        assert job["attempts"] == 2
        outcomes = [a["outcome"] for a in job["history"]]
        assert outcomes == ["lost", "succeeded"]
        assert job["history"][0]["worker"] != job["history"][1]["worker"]
        # Whatever else is redelivered later (the dead worker's unacked message) is dropped.
        assert get_job(base, token, job_id)["attempts"] == 2
    finally:
        for proc in (survivor, doomed, beat, relay, api):
            if proc is not None:
                proc.stop()


def test_every_job_of_a_batch_whose_worker_is_killed_succeeds_once(
    settings: Settings, logs_dir: Path, clean_ledger: None
) -> None:
    sleep = settings.policy_for("system.sleep").model_copy(update={"batch_size": 3})
    own = isolated(settings, job_policies={**settings.job_policies, "system.sleep": sleep})
    relay = start_process(own, logs_dir, "relay")
    beat = start_process(own, logs_dir, "beat")  # the reaper, every 0.5 s; leases are 3 s
    doomed = start_worker(own, logs_dir, name="doomed-batch", concurrency=1)
    survivor = None
    try:
        ids = submit_all(own, [("system.sleep", {"seconds": 1.0})] * 3)  # one batch
        wait_until(lambda: running(own, ids) == 3, what="the batch to claim its three jobs")
        doomed.kill()
        doomed.popen.wait(10)
        survivor = start_worker(own, logs_dir, name="survivor-batch", concurrency=1)
        result = finished(own, ids)
        # Each lost its worker once (the reaper), then ran alone and succeeded exactly once.
        assert all(r == ("succeeded", ["lost", "succeeded"]) for r in result.values()), result
    finally:
        for proc in (survivor, doomed, beat, relay):
            if proc is not None:
                proc.stop()


def test_a_group_whose_worker_dies_before_its_commit_runs_again_and_succeeds_once(
    settings: Settings, logs_dir: Path, clean_ledger: None
) -> None:
    """Group commit's price, paid in full and no more: the batch's finished jobs had not
    committed, so they are lost with the one still running, and each runs again once."""
    sleep = settings.policy_for("system.sleep").model_copy(
        update={"batch_size": 3, "group_commit": True}
    )
    own = isolated(settings, job_policies={**settings.job_policies, "system.sleep": sleep})
    relay = start_process(own, logs_dir, "relay")
    beat = start_process(own, logs_dir, "beat")  # the reaper, every 0.5 s; leases are 3 s
    doomed = start_worker(own, logs_dir, name="doomed-group", concurrency=1)
    survivor = None
    try:
        seconds = [0.2, 0.2, 2.0]  # the last outlives the kill, not its 3 s lease
        ids = submit_all(own, [("system.sleep", {"seconds": s}) for s in seconds])  # one batch
        wait_until(lambda: running(own, ids) == 3, what="the batch to claim its three jobs")
        time.sleep(1.0)  # the first two have finished, in the group's open transaction
        assert running(own, ids) == 3  # … which nobody else can see yet
        doomed.kill()
        doomed.popen.wait(10)
        survivor = start_worker(own, logs_dir, name="survivor-group", concurrency=1)
        result = finished(own, ids)
        assert all(r == ("succeeded", ["lost", "succeeded"]) for r in result.values()), result
    finally:
        for proc in (survivor, doomed, beat, relay):
            if proc is not None:
                proc.stop()


def running(settings: Settings, ids: list[uuid.UUID]) -> int:
    """How many of the jobs are `running`."""
    with transaction(settings) as s:
        return int(
            s.execute(
                text("SELECT count(*) FROM jobs WHERE state = 'running' AND id = ANY(:ids)"),
                {"ids": ids},
            ).scalar_one()
        )


def test_two_beats_fire_each_slot_once(
    settings: Settings, logs_dir: Path, clean_ledger: None
) -> None:
    own = isolated(
        settings,
        relay=settings.relay.model_copy(update={"sweep_interval": 1.0}),
        reaper=settings.reaper.model_copy(update={"interval": 1.0}),
    )
    beats = [start_process(own, logs_dir, "beat") for _ in range(2)]
    started = time.monotonic()
    try:
        wait_until(
            lambda: "beat_slot_taken" in "".join(b.output() for b in beats) and _fires(own) >= 6,
            timeout=40,
            interval=0.5,
            what="the two beats to contend for a slot",
        )
    finally:
        for beat in beats:
            beat.stop()
    elapsed = time.monotonic() - started
    with transaction(own) as session:
        rows = session.execute(
            text("SELECT schedule, count(*) FROM schedule_fires GROUP BY schedule")
        ).all()
    fires: dict[str, int] = dict(rows)
    sent = _messages_by_task(own)
    assert fires["relay-sweep"] >= 2
    # Every recorded fire is sent at most once (slots are unique, so no slot runs twice). A
    # beat stopped between recording a fire and sending it leaves that one unsent: at most one
    # per beat at teardown.
    for task, schedule in (
        ("maintenance.relay_sweep", "relay-sweep"),
        ("maintenance.reap", "reaper"),
    ):
        assert fires[schedule] - len(beats) <= sent[task] <= fires[schedule], (task, sent, fires)
    assert fires["relay-sweep"] <= elapsed + 2  # one fire per one-second slot, not two


def _fires(settings: Settings) -> int:
    with transaction(settings) as session:
        return int(session.execute(text("SELECT count(*) FROM schedule_fires")).scalar_one())


def _messages_by_task(settings: Settings) -> Counter[str]:
    client = redis.Redis.from_url(settings.redis.url)
    try:
        counts: Counter[str] = Counter()
        for key in client.scan_iter(match=f"{settings.redis.key_prefix}maintenance*"):
            for raw in client.lrange(key, 0, -1):
                counts[json.loads(raw)["headers"]["task"]] += 1
        return counts
    finally:
        client.close()
