"""The Python client against the real pipeline."""

from __future__ import annotations

import pytest

from producers.client import SwitchyardAPIError, SwitchyardClient
from tests.support.keys import MakeKey


def test_the_client_submits_waits_and_reports_errors(pipeline: str, make_key: MakeKey) -> None:
    with SwitchyardClient(pipeline, make_key()) as client:
        accepted = client.submit("system.echo", {"via": "client"}, idempotency_key="c-1")
        assert client.submit("system.echo", {"via": "client"}, idempotency_key="c-1") == accepted
        job = client.wait(accepted["id"], timeout=30)
        assert job["state"] == "succeeded"
        assert job["result"] == {"via": "client"}
        with pytest.raises(SwitchyardAPIError) as info:
            client.submit("system.sleep", {"seconds": "long"})
        assert info.value.status == 422
        assert info.value.field == "payload.seconds"
        with pytest.raises(SwitchyardAPIError) as conflict:
            client.retry(accepted["id"])
        assert conflict.value.status == 409


def test_the_client_submits_a_batch_and_its_replays_find_the_same_jobs(
    pipeline: str, make_key: MakeKey
) -> None:
    jobs = [
        {"type": "system.echo", "payload": {"n": n}, "idempotency_key": f"b-{n}"} for n in range(5)
    ]
    with SwitchyardClient(pipeline, make_key()) as client:
        first = client.submit_many(jobs)
        assert [r["status"] for r in first] == [202] * 5
        again = client.submit_many(jobs)
        assert [(r["status"], r["id"]) for r in again] == [(200, r["id"]) for r in first]
        fresh = client.submit_many([{"type": "system.echo", "payload": {}}] * 2)
        assert [r["status"] for r in fresh] == [202, 202]  # each got a key of its own
        assert fresh[0]["id"] != fresh[1]["id"]
        for result in first:
            assert client.wait(result["id"], timeout=30)["result"] == {"n": result["index"]}
