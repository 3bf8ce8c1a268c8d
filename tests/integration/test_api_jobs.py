"""Reading, listing, cancelling and replaying jobs over HTTP (no workers running)."""

from __future__ import annotations

import uuid

import httpx

from producers.api.schemas import JobAccepted, links_for
from tests.support.api import auth, get_job, submit
from tests.support.keys import MakeKey


def test_a_job_is_durable_and_readable_right_after_the_202(api: str, make_key: MakeKey) -> None:
    token = make_key()
    accepted = submit(api, token, {"type": "system.echo", "payload": {"x": 1}, "priority": 4})
    assert accepted.status_code == 202
    body = accepted.json()
    assert body == JobAccepted(
        id=body["id"], state="accepted", links=links_for(uuid.UUID(body["id"]))
    ).model_dump(mode="json")
    assert accepted.headers["location"] == f"/v1/jobs/{body['id']}"
    job = get_job(api, token, body["id"])
    assert job["state"] == "accepted"
    assert job["payload"] == {"x": 1}
    assert job["priority"] == 4
    assert job["queue"] == "maintenance"
    assert job["producer"] == "billing-svc"
    assert job["history"] == []


def test_listing_filters_and_paginates_newest_first(api: str, make_key: MakeKey) -> None:
    token = make_key()
    ids = [
        submit(api, token, {"type": "system.echo", "payload": {"i": i}}).json()["id"]
        for i in range(5)
    ]
    submit(api, token, {"type": "system.sleep", "payload": {"seconds": 1}})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {
            "type": "system.echo",
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = httpx.get(f"{api}/v1/jobs", params=params, headers=auth(token)).json()
        seen += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    by_state = httpx.get(f"{api}/v1/jobs", params={"state": "succeeded"}, headers=auth(token))
    assert by_state.json()["items"] == []
    bad_state = httpx.get(f"{api}/v1/jobs", params={"state": "sleeping"}, headers=auth(token))
    assert bad_state.status_code == 422
    assert bad_state.json()["field"] == "state.0"


def test_cancel_before_running_then_cancel_again_is_409(api: str, make_key: MakeKey) -> None:
    token = make_key()
    job_id = submit(api, token, {"type": "system.echo", "payload": {}}).json()["id"]
    resp = httpx.post(f"{api}/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert resp.status_code == 200
    assert resp.json()["state"] == "cancelled"
    again = httpx.post(f"{api}/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert again.status_code == 409
    assert again.json()["state"] == "cancelled"


def test_retry_is_only_for_dead_jobs(api: str, make_key: MakeKey) -> None:
    token = make_key()
    job_id = submit(api, token, {"type": "system.echo", "payload": {}}).json()["id"]
    resp = httpx.post(f"{api}/v1/jobs/{job_id}/retry", headers=auth(token))
    assert resp.status_code == 409
    assert resp.json()["code"] == "job_not_dead"


def test_unknown_job_is_404_and_a_malformed_id_422(api: str, make_key: MakeKey) -> None:
    token = make_key()
    missing = httpx.get(f"{api}/v1/jobs/0190a0b0-0000-7000-8000-000000000000", headers=auth(token))
    assert missing.status_code == 404
    malformed = httpx.get(f"{api}/v1/jobs/not-a-uuid", headers=auth(token))
    assert malformed.status_code == 422
    assert malformed.json()["field"] == "job_id"


def test_readiness_checks_postgres_and_redis(api: str) -> None:
    resp = httpx.get(f"{api}/readyz", timeout=5)
    assert resp.status_code == 200
    assert resp.json()["checks"] == {"database": "ok", "redis": "ok"}
