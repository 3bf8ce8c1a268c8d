"""Every route that takes a body: JSON only (a missing Content-Type reads as JSON, any other is
a 415 `unsupported_media_type` naming `Content-Type`), the 415 is in the OpenAPI document, and
a caller without a good key gets 401 whatever the body and its media type."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from config import Settings
from tasks.registry import domains
from tests.support.api import auth, count_rows
from tests.support.keys import MakeKey

NOT_JSON = ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
# Malformed, hostile, unexpected, a form, and a card number (which payments screen for).
BODIES = [b"{not json", b'{"a": NaN}', b'{"surprise": 1}', b"a=1&b=2", b'{"n": "4242424242424242"}']


def body_operations(api: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, concrete path, operation) for every documented operation with a request body."""
    spec = httpx.get(f"{api}/openapi.json", timeout=5).json()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                concrete = re.sub(r"\{[^}]+\}", "0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b", path)
                found.append((method.upper(), concrete, operation))
    return found


@pytest.fixture(scope="module")
def operations(api: str) -> list[tuple[str, str, dict[str, Any]]]:
    found = body_operations(api)
    paths = {path for _, path, _ in found}
    # The job intake (a lean route of its own) and a route of each domain with a body.
    assert {"/v1/jobs", "/v1/notifications", "/v1/payment-intents"} <= paths, paths
    return found


def test_every_body_operation_documents_the_415(
    operations: list[tuple[str, str, dict[str, Any]]],
) -> None:
    for method, path, operation in operations:
        problem = operation["responses"].get("415")
        assert problem, f"{method} {path} does not document 415"
        assert "application/problem+json" in problem["content"]


def keyed(operations: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """The operations an API key authenticates. The provider's webhook route is authenticated
    by its signature instead, checked before its body too (tests/e2e/test_payments_webhooks.py)."""
    found = [(method, path) for method, path, operation in operations if operation.get("security")]
    assert len(found) >= len(operations) - 1, "only the webhook route may go without a key"
    return found


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_that_is_not_json_is_a_415_naming_the_header(
    api: str,
    make_key: MakeKey,
    settings: Settings,
    operations: list[tuple[str, str, dict[str, Any]]],
    content_type: str,
) -> None:
    token = make_key(scopes=tuple(sorted(domains(settings).scopes)))
    for method, path in keyed(operations):
        resp = httpx.request(
            method, f"{api}{path}", content=b'{"type": "system.echo", "payload": {}}',
            headers={**auth(token), "Content-Type": content_type}, timeout=10,
        )  # fmt: skip
        assert resp.status_code == 415, (method, path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        problem = resp.json()
        assert (problem["code"], problem["field"]) == ("unsupported_media_type", "Content-Type")
        assert "application/json" in problem["detail"]
    assert count_rows(settings, "jobs") == 0


@pytest.mark.parametrize("token", [None, "sy_live_nope_0000000000000000000000"])
@pytest.mark.parametrize("content_type", [None, "application/json", *NOT_JSON])
def test_without_a_good_key_every_body_route_is_a_401_first(
    api: str,
    operations: list[tuple[str, str, dict[str, Any]]],
    token: str | None,
    content_type: str | None,
) -> None:
    headers = {**(auth(token) if token else {})}
    if content_type:
        headers["Content-Type"] = content_type
    for method, path in keyed(operations):
        for body in BODIES:
            resp = httpx.request(method, f"{api}{path}", content=body, headers=headers, timeout=10)
            assert resp.status_code == 401, (method, path, content_type, body, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"


def test_a_body_without_content_type_reads_as_json(api: str, make_key: MakeKey) -> None:
    resp = httpx.post(
        f"{api}/v1/jobs", content=b'{"type": "system.echo", "payload": {"a": 1}}',
        headers=auth(make_key()), timeout=10,
    )  # fmt: skip
    assert "content-type" not in resp.request.headers
    assert resp.status_code == 202, resp.text
