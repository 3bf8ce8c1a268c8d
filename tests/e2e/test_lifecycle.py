"""HTTP → ledger → relay → Redis → worker → ledger, with real processes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import wait_until

TERMINAL = {"succeeded", "dead", "cancelled"}


def submit(api: str, token: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """POST /v1/jobs."""
    return httpx.post(
        f"{api}/v1/jobs",
        json=body,
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=10,
    )


def wait_terminal(api: str, token: str, job_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the job until it reaches a terminal state."""

    def done() -> dict[str, Any] | None:
        body = httpx.get(
            f"{api}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()
        return body if body["state"] in TERMINAL else None

    return wait_until(done, timeout=timeout, what=f"job {job_id} to finish")


def test_echo_job_succeeds_with_its_payload_as_result(pipeline: str, make_key) -> None:
    token = make_key()
    resp = submit(pipeline, token, {"type": "system.echo", "payload": {"hello": "world"}})
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["state"] == "accepted"
    assert resp.headers["Location"] == f"/v1/jobs/{accepted['id']}"
    job = wait_terminal(pipeline, token, accepted["id"])
    assert job["state"] == "succeeded"
    assert job["result"] == {"hello": "world"}
    assert job["attempts"] == 1
    assert [a["outcome"] for a in job["history"]] == ["succeeded"]
