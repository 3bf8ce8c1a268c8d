"""The Python client against the real pipeline."""

from __future__ import annotations

import pytest

from producers.client import SwitchyardAPIError, SwitchyardClient


def test_the_client_submits_waits_and_reports_errors(pipeline: str, make_key) -> None:
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
