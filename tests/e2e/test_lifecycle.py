"""HTTP → ledger → relay → Redis → worker → ledger, with real processes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import redis
from sqlalchemy import text

from config import Settings
from devstack.processes import wait_until
from store.db import transaction
from store.outbox import DueMessage
from tests.support.api import auth, get_job, submit, wait_state
from tests.support.keys import MakeKey
from workers.app import create_celery
from workers.relay import publish


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def test_echo_job_succeeds_with_its_payload_as_result(pipeline: str, make_key: MakeKey) -> None:
    token = make_key()
    resp = submit(pipeline, token, {"type": "system.echo", "payload": {"hello": "world"}})
    assert resp.status_code == 202, resp.text
    job = wait_state(pipeline, token, resp.json()["id"])
    assert job["state"] == "succeeded"
    assert job["result"] == {"hello": "world"}
    assert job["attempts"] == 1
    assert [a["outcome"] for a in job["history"]] == ["succeeded"]


def test_retries_back_off_then_succeed(pipeline: str, make_key: MakeKey) -> None:
    token = make_key()
    body = {"type": "system.fail", "payload": {"times": 2}}
    job = wait_state(pipeline, token, submit(pipeline, token, body).json()["id"])
    assert job["state"] == "succeeded"
    assert job["result"] == {"succeeded_on_attempt": 3}
    history = job["history"]
    assert [a["outcome"] for a in history] == ["retrying", "retrying", "succeeded"]
    # system.fail's test policy: no jitter, base 0.3 s → waits of at least 0.3 s then 0.6 s
    gaps = [
        (parse(history[i + 1]["started_at"]) - parse(history[i]["finished_at"])).total_seconds()
        for i in range(2)
    ]
    assert gaps[0] >= 0.3
    assert gaps[1] >= 0.6


def test_dead_after_max_attempts_then_replayed_to_success(pipeline: str, make_key: MakeKey) -> None:
    token = make_key()
    body = {"type": "system.fail", "payload": {"times": 3}, "max_attempts": 2}
    job_id = submit(pipeline, token, body).json()["id"]
    dead = wait_state(pipeline, token, job_id)
    assert dead["state"] == "dead"
    assert dead["attempts"] == 2
    assert "failing on purpose" in dead["error"]["message"]
    replay = httpx.post(f"{pipeline}/v1/jobs/{job_id}/retry", headers=auth(token))
    assert replay.status_code == 202
    assert replay.json()["state"] == "retrying"
    done = wait_state(pipeline, token, job_id, {"succeeded"})
    assert done["result"] == {"succeeded_on_attempt": 4}
    assert [a["outcome"] for a in done["history"]] == ["retrying", "dead", "retrying", "succeeded"]


def test_a_permanent_error_is_dead_at_once(pipeline: str, make_key: MakeKey) -> None:
    token = make_key()
    body = {"type": "system.fail", "payload": {"times": 1, "mode": "permanent"}}
    job = wait_state(pipeline, token, submit(pipeline, token, body).json()["id"])
    assert job["state"] == "dead"
    assert job["attempts"] == 1
    assert job["error"]["type"] == "PermanentError"
    assert job["error"]["retryable"] is False


def test_a_delayed_job_waits_for_run_at_and_can_be_cancelled(
    pipeline: str, make_key: MakeKey
) -> None:
    token = make_key()
    run_at = datetime.now(UTC) + timedelta(seconds=1.5)
    soon = submit(
        pipeline,
        token,
        {"type": "system.echo", "payload": {"when": "soon"}, "run_at": run_at.isoformat()},
    ).json()["id"]
    never = submit(
        pipeline,
        token,
        {"type": "system.echo", "payload": {}, "run_at": (run_at + timedelta(hours=1)).isoformat()},
    )
    cancel = httpx.post(f"{pipeline}/v1/jobs/{never.json()['id']}/cancel", headers=auth(token))
    assert cancel.json()["state"] == "cancelled"
    job = wait_state(pipeline, token, soon)
    assert job["state"] == "succeeded"
    assert parse(job["history"][0]["started_at"]) >= run_at
    assert get_job(pipeline, token, never.json()["id"])["history"] == []


def broker_idle(settings: Settings) -> bool:
    """No ready message in the maintenance queue's lists and none delivered but unacknowledged."""
    client = redis.Redis.from_url(settings.redis.url)
    try:
        prefix = settings.redis.key_prefix
        lists = [f"{prefix}maintenance", *(f"{prefix}maintenance:{p}" for p in range(10))]
        return sum(client.llen(k) for k in lists) == 0 and client.hlen(f"{prefix}unacked") == 0
    finally:
        client.close()


def test_a_duplicate_message_is_dropped(
    pipeline: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    body = {"type": "system.sleep", "payload": {"seconds": 1}}
    job_id = submit(pipeline, token, body).json()["id"]
    wait_state(pipeline, token, job_id, {"running"})
    # A second message for the same job, as a relay crash between publish and commit would send.
    duplicate = DueMessage(
        id=0, job_id=uuid.UUID(job_id), job_type="system.sleep", queue="maintenance", priority=0
    )
    publish(create_celery(settings), [duplicate], settings)
    wait_state(pipeline, token, job_id, {"succeeded"})
    wait_until(lambda: broker_idle(settings), what="the duplicate to be consumed")
    job = get_job(pipeline, token, job_id)
    assert job["attempts"] == 1
    assert [a["outcome"] for a in job["history"]] == ["succeeded"]


def test_each_process_names_its_ledger_connections(
    pipeline: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    wait_state(
        pipeline,
        token,
        submit(pipeline, token, {"type": "system.echo", "payload": {}}).json()["id"],
    )
    with transaction(settings) as session:
        names = set(
            session.scalars(
                text(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database()"
                )
            )
        )
    expected = {"switchyard-api:intake", "switchyard-relay:listen", "switchyard-worker"}
    assert expected <= names
