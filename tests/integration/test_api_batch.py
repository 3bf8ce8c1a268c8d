"""`POST /v1/jobs/batch` and `enqueue_many`: many jobs in one commit, each with its own key and
its own result; a malformed batch writes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from config import Settings
from store.db import transaction
from store.models import Job, OutboxMessage
from tasks.enqueue import IdempotencyKeyReusedError, Inserted, draft_job, enqueue_many
from tests.support.api import auth, get_job, wait_state
from tests.support.keys import MakeKey


def post_batch(api: str, token: str | None, body: Any) -> httpx.Response:
    headers = auth(token) if token else {}
    return httpx.post(f"{api}/v1/jobs/batch", json=body, headers=headers, timeout=30)


def echo(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "system.echo", "payload": {"i": i}, **extra}


def rows(settings: Settings, ids: list[str]) -> tuple[int, int]:
    """(jobs, outbox rows) holding these job ids."""
    wanted = [uuid.UUID(i) for i in ids]
    with transaction(settings) as s:
        jobs = s.scalar(select(func.count()).select_from(Job).where(Job.id.in_(wanted)))
        outbox = s.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.job_id.in_(wanted))
        )
    return int(jobs or 0), int(outbox or 0)


def job_count(settings: Settings) -> int:
    with transaction(settings) as s:
        return int(s.scalar(select(func.count()).select_from(Job)) or 0)


def test_every_job_of_a_batch_is_durable_with_its_own_result(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    resp = post_batch(api, token, {"jobs": [echo(i, idempotency_key=f"k{i}") for i in range(3)]})
    assert resp.status_code == 202, resp.text
    results = resp.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["status"] for r in results] == [202, 202, 202]
    ids = [r["id"] for r in results]
    assert len(set(ids)) == 3
    assert rows(settings, ids) == (3, 3)  # each job has its outbox row, in the same commit
    for i, result in enumerate(results):
        job = get_job(api, token, result["id"])
        assert job["payload"] == {"i": i}
        assert job["producer"] == "billing-svc"
        assert result["links"]["self"] == f"/v1/jobs/{result['id']}"


def test_each_key_is_honoured_on_its_own(api: str, make_key: MakeKey, settings: Settings) -> None:
    token = make_key()
    first = post_batch(api, token, {"jobs": [echo(0, idempotency_key="a"), echo(1)]}).json()
    again = post_batch(
        api,
        token,
        {
            "jobs": [
                echo(0, idempotency_key="a"),  # a replay: the earlier job
                echo(9, idempotency_key="a"),  # the same key for another job: refused
                echo(2, idempotency_key="b"),  # new
                echo(2, idempotency_key="b"),  # the same job twice in one batch: one job
            ]
        },
    )
    assert again.status_code == 207, again.text
    replay, reused, new, twin = again.json()["results"]
    assert (replay["status"], replay["id"]) == (200, first["results"][0]["id"])
    assert reused["status"] == 422
    assert reused["code"] == IdempotencyKeyReusedError.code
    assert reused["field"] == "jobs.1.idempotency_key"
    assert "id" not in reused
    assert new["status"] == 202
    assert (twin["status"], twin["id"]) == (200, new["id"])
    assert rows(settings, [new["id"]]) == (1, 1)
    assert job_count(settings) == 3


def test_a_malformed_batch_is_refused_whole(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    cases: list[tuple[Any, str]] = [
        ({"jobs": [echo(0), {**echo(1), "priority": "5"}]}, "jobs.1.priority"),
        ({"jobs": [echo(0), {"type": "no.such", "payload": {}}]}, "jobs.1.type"),
        ({"jobs": [echo(0), {"type": "system.sleep", "payload": {"seconds": "x"}}]}, ""),
        ({"jobs": [echo(0, idempotency_key="")]}, "jobs.0.idempotency_key"),
        ({"jobs": []}, "jobs"),
        ({"jobs": [echo(i) for i in range(1_001)]}, "jobs"),
        ({"jobs": [echo(0)], "extra": 1}, "extra"),
    ]
    for body, field in cases:
        resp = post_batch(api, token, body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["field"].startswith(field or "jobs.1.payload"), resp.text
    assert job_count(settings) == 0


def test_the_key_comes_before_the_body(api: str, make_key: MakeKey) -> None:
    unauthenticated = post_batch(api, None, {"jobs": [{"priority": "nope"}]})
    assert unauthenticated.status_code == 401
    reader = make_key(scopes=("jobs:read",))
    assert post_batch(api, reader, {"jobs": [echo(0)]}).status_code == 403


def test_enqueue_many_inserts_thousands_in_one_call(settings: Settings, clean_ledger: None) -> None:
    drafts = [
        draft_job("system.echo", {"i": i}, producer="lib", settings=settings) for i in range(3_000)
    ]
    with transaction(settings) as session:
        outcomes = enqueue_many(session, drafts)
    assert all(isinstance(o, Inserted) and o.created for o in outcomes)
    assert job_count(settings) == 3_000


def test_batched_jobs_run_to_success(pipeline: str, make_key: MakeKey) -> None:
    token = make_key()
    results = post_batch(pipeline, token, {"jobs": [echo(i) for i in range(20)]}).json()
    for result in results["results"]:
        job = wait_state(pipeline, token, result["id"])
        assert job["state"] == "succeeded"
