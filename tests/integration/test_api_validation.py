"""Bad input gets a 4xx problem+json naming the field, and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from config import Settings
from tests.support.api import auth, count_rows, submit
from tests.support.keys import MakeKey

BAD_BODIES = [
    ({"type": "system.nope", "payload": {}}, 422, "type"),
    ({"type": "system.sleep", "payload": {"seconds": "soon"}}, 422, "payload.seconds"),
    ({"type": "system.sleep", "payload": {"seconds": -1}}, 422, "payload.seconds"),
    ({"type": "system.sleep", "payload": {}}, 422, "payload.seconds"),
    ({"type": "system.fail", "payload": {"times": 1, "colour": "red"}}, 422, "payload.colour"),
    ({"type": "system.echo", "payload": {}, "priority": 11}, 422, "priority"),
    ({"type": "system.echo", "payload": {}, "max_attempts": 0}, 422, "max_attempts"),
    ({"type": "system.echo", "payload": {}, "run_at": "2030-01-01T00:00:00"}, 422, "run_at"),
    ({"type": "system.echo", "payload": []}, 422, "payload"),
    ({"payload": {}}, 422, "type"),
    ({"type": "system.echo", "surprise": 1}, 422, "surprise"),
    ({"type": "system.echo", "payload": {"a": ["ok", "nul\u0000"]}}, 422, "payload.a.1"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
def test_bad_bodies_name_the_field_and_write_no_row(
    api: str, make_key: MakeKey, settings: Settings, body: dict[str, Any], status: int, field: str
) -> None:
    resp = submit(api, make_key(), body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["field"] == field
    assert problem["status"] == status
    assert problem["type"].startswith("https://")
    assert count_rows(settings, "jobs") == 0
    assert count_rows(settings, "outbox") == 0


def test_malformed_json_is_a_400(api: str, make_key: MakeKey) -> None:
    content = b"{not json"
    resp = httpx.post(
        f"{api}/v1/jobs",
        content=content,
        timeout=5,
        headers={**auth(make_key()), "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "malformed_json"
    assert resp.json()["field"] == "body"


def test_a_missing_body_names_the_body(api: str, make_key: MakeKey) -> None:
    resp = httpx.post(
        f"{api}/v1/jobs",
        content=b"",
        timeout=5,
        headers={**auth(make_key()), "Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.json()["field"] == "body"


def test_an_oversized_body_is_a_413(api: str, make_key: MakeKey, settings: Settings) -> None:
    blob = "x" * (settings.api.max_body_bytes + 1)
    resp = submit(api, make_key(), {"type": "system.echo", "payload": {"blob": blob}})
    assert resp.status_code == 413
    assert resp.json()["code"] == "body_too_large"
    assert count_rows(settings, "jobs") == 0


def test_a_chunked_oversized_body_is_a_413(api: str, make_key: MakeKey, settings: Settings) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while streaming
        yield b'{"type": "system.echo", "payload": {"blob": "'
        for _ in range(settings.api.max_body_bytes // 65_536 + 2):
            yield b"x" * 65_536
        yield b'"}}'

    resp = httpx.post(
        f"{api}/v1/jobs",
        content=chunks(),
        timeout=10,
        headers={**auth(make_key()), "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert count_rows(settings, "jobs") == 0


def test_a_bad_cursor_names_the_field(api: str, make_key: MakeKey) -> None:
    resp = httpx.get(f"{api}/v1/jobs", params={"cursor": "!!"}, headers=auth(make_key()))
    assert resp.status_code == 422
    assert resp.json()["field"] == "cursor"


def test_openapi_documents_the_intake(api: str) -> None:
    spec = httpx.get(f"{api}/openapi.json", timeout=5).json()
    assert {
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/retry",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])
    assert httpx.get(f"{api}/docs", timeout=5).status_code == 200
    submit_op = spec["paths"]["/v1/jobs"]["post"]
    body = submit_op["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["type"]
    assert {"type", "payload", "priority", "run_at", "callback_url"} <= set(body["properties"])
    assert [p["name"] for p in submit_op["parameters"]] == ["Idempotency-Key"]
    assert submit_op["security"] == [{"HTTPBearer": []}]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert submit_op["responses"]["202"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobAccepted"
    }
