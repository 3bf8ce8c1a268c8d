"""Hostile input on every body route: a 4xx problem naming the field, never a 500, and 401
before anything about the body."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from config import Settings
from tests.support.api import auth, count_rows
from tests.support.keys import MakeKey

SCOPES = ("jobs:write", "jobs:read", "notifications:write", "notifications:read")
EMAIL = {"channel": "email", "to": "bob@example.com", "subject": "s", "body": "b"}
# Each route with a body that would be accepted, and where a hostile value can go in it.
ROUTES: dict[str, tuple[str, str, dict[str, Any], str | None]] = {
    "jobs": ("POST", "/v1/jobs", {"type": "system.echo", "payload": {}}, "payload"),
    "notifications": ("POST", "/v1/notifications", EMAIL, "data"),
    "templates": ("PUT", "/v1/notification-templates/t", {"text": "x"}, "sample_data"),
    "endpoints": ("POST", "/v1/webhook-endpoints", {"url": "https://example.com/h"}, None),
}
# (raw JSON of the hostile value, status, code, field relative to where it was put)
VALUES = [
    ("NaN", 400, "malformed_json", "k"),
    ("Infinity", 400, "malformed_json", "k"),
    ("-Infinity", 400, "malformed_json", "k"),
    ("1e999", 422, "number_out_of_range", "k"),
    ('"a\\u0000b"', 422, "invalid_text", "k"),
    ('"\\ud800"', 422, "invalid_text", "k"),
    ('["ok", "\\udfff"]', 422, "invalid_text", "k.1"),
    ("[" * 40 + "]" * 40, 400, "body_too_deep", "k.0.0.0"),  # the field where it got too deep
    ("1" * 5_000, 422, "number_out_of_range", None),
]
WHOLE_BODIES = [
    (b"\xef\xbb\xbf{}", 400, "invalid_encoding"),
    ("{}".encode("utf-16"), 400, "invalid_encoding"),
    (b'{"a": "\xff"}', 400, "invalid_encoding"),
    (b'{"a": 1, "a": 2}', 400, "malformed_json"),
    (b"{not json", 400, "malformed_json"),
    (b"[" * 5_000 + b"]" * 5_000, 400, "body_too_deep"),
]


def send(api: str, route: str, content: bytes, token: str | None) -> httpx.Response:
    method, path, _, _ = ROUTES[route]
    headers = {"Content-Type": "application/json", **(auth(token) if token else {})}
    return httpx.request(method, f"{api}{path}", content=content, headers=headers, timeout=10)


def with_value(route: str, raw_value: str) -> tuple[bytes, str]:
    """The route's good body with `{"k": value}` where it takes free JSON (else at the top)."""
    _, _, good, slot = ROUTES[route]
    encoded = json.dumps({k: v for k, v in good.items() if k != slot})[:-1]
    if slot is None:
        return f'{encoded}, "k": {raw_value}}}'.encode(), ""
    return f'{encoded}, "{slot}": {{"k": {raw_value}}}}}'.encode(), f"{slot}."


def assert_problem(resp: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["code"] == code, problem
    assert problem["field"] == (field if field is not None else "body"), problem


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("raw", "status", "code", "field"), VALUES)
def test_hostile_values_are_refused_naming_where(
    api: str,
    make_key: MakeKey,
    settings: Settings,
    route: str,
    raw: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    content, prefix = with_value(route, raw)
    resp = send(api, route, content, make_key(scopes=SCOPES))
    if code == "body_too_deep":
        assert resp.json()["field"].startswith(prefix + (field or "")), resp.text
        field = resp.json()["field"].removeprefix(prefix)
    assert_problem(resp, status, code, prefix + field if field else None)
    assert count_rows(settings, "jobs") == 0


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("content", "status", "code"), WHOLE_BODIES)
def test_bodies_that_are_not_strict_utf8_json_name_the_body(
    api: str, make_key: MakeKey, route: str, content: bytes, status: int, code: str
) -> None:
    assert_problem(send(api, route, content, make_key(scopes=SCOPES)), status, code, "body")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("content", [b"{not json", b'{"a": NaN}', b'{"surprise": 1}', b""])
@pytest.mark.parametrize("token", [None, "sy_live_nope_0000000000000000000000"])
def test_a_caller_without_a_good_key_gets_401_whatever_the_body(
    api: str, route: str, content: bytes, token: str | None
) -> None:
    resp = send(api, route, content, token)
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == "application/problem+json"


def post(api: str, token: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{api}{path}", json=body, headers=auth(token), timeout=10)


JOB = {"type": "system.echo", "payload": {}}
QUIET = {"start": "00:00", "end": "23:59", "timezone": "Etc/GMT+12"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/jobs", {**JOB, "priority": "5"}, "priority"),
        ("/v1/jobs", {**JOB, "priority": True}, "priority"),
        ("/v1/jobs", {**JOB, "max_attempts": True}, "max_attempts"),
        ("/v1/jobs", {**JOB, "type": "system.echo\x00"}, "type"),
        ("/v1/jobs", {**JOB, "run_at": "2030-01-01T00:00:00+16:00"}, "run_at"),
        ("/v1/jobs", {**JOB, "run_at": "2030-01-01T00:00:00-23:59"}, "run_at"),
        ("/v1/jobs", {**JOB, "run_at": "9999-12-31T23:00:00-05:00"}, "run_at"),
        ("/v1/jobs", {**JOB, "run_at": "0001-01-01T00:00:00+01:00"}, "run_at"),
        ("/v1/notifications", {**EMAIL, "subject": "a\x00"}, "subject"),
        ("/v1/notifications", {**EMAIL, "subject": "hi\r\nBcc: eve@example.com"}, "subject"),
        ("/v1/notifications", {**EMAIL, "subject": "tab\tbell\x07"}, "subject"),
        ("/v1/notifications", {**EMAIL, "body": "a\x00"}, "body"),
        ("/v1/notifications", {**EMAIL, "dedup_key": "k\x00"}, "dedup_key"),
        ("/v1/notifications", {**EMAIL, "to": "bob@example.com\x00"}, "to"),
        ("/v1/notifications", {**EMAIL, "data": {"a\x00": 1}}, "data"),
        (
            "/v1/notifications",
            {**EMAIL, "template": "t", "template_version": 2**31},
            "template_version",
        ),
        ("/v1/notifications", {**EMAIL, "send_at": "2030-01-01T10:00:00+16:00"}, "send_at"),
        ("/v1/notifications", {**EMAIL, "send_at": "9999-12-31T20:00:00-05:00"}, "send_at"),
        ("/v1/notifications", {**EMAIL, "send_at": "9999-12-30T00:00:00Z"}, "send_at"),
        ("/v1/notification-templates/t", {"text": "x\x00"}, "text"),
        ("/v1/notification-templates/t", {"subject": "\x00"}, "subject"),
        ("/v1/webhook-endpoints", {"url": "https://example.com/\x00"}, "url"),
    ],
)
def test_fields_refuse_what_postgresql_cannot_hold(
    api: str, make_key: MakeKey, path: str, body: dict[str, Any], field: str
) -> None:
    method = "PUT" if "templates" in path else "POST"
    token = make_key(scopes=SCOPES)
    resp = httpx.request(method, f"{api}{path}", json=body, headers=auth(token), timeout=10)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field


def test_quiet_hours_at_the_end_of_time_are_refused_or_fit(api: str, make_key: MakeKey) -> None:
    token = make_key(scopes=SCOPES)
    # The last instant accepted, in a quiet window that ends the next local day.
    late = {**EMAIL, "send_at": "9999-12-29T23:59:00Z", "quiet_hours": QUIET}
    resp = post(api, token, "/v1/notifications", late)
    assert resp.status_code == 202, resp.text
    assert resp.json()["send_at"].startswith("9999-12-30")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/notification-templates/t?version=2147483648", "version"),
        ("/v1/jobs?type=a%00", "type"),
        ("/v1/notifications?to=a%00", "to"),
    ],
)
def test_query_parameters_are_bounded(api: str, make_key: MakeKey, path: str, field: str) -> None:
    resp = httpx.get(f"{api}{path}", headers=auth(make_key(scopes=SCOPES)), timeout=10)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field


@pytest.mark.parametrize(
    ("template", "data"),
    [
        ("{% for i in range(100000) %}{{ x }}{% endfor %}", {"x": "a" * 200}),  # 20 MB
        ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", {}),
        (
            "{% for i in xs %}{% for j in xs %}{% for k in xs %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            {"xs": list(range(1000))},
        ),
        ("{{ x * 100000000 }}", {"x": "ab"}),
        ("{{ x | center(1000000000) }}", {"x": "ab"}),
    ],
)
def test_template_rendering_is_bounded(
    api: str, make_key: MakeKey, settings: Settings, template: str, data: dict[str, Any]
) -> None:
    token = make_key(scopes=SCOPES)
    saved = httpx.put(
        f"{api}/v1/notification-templates/big", json={"text": template}, headers=auth(token)
    )
    assert saved.status_code == 201, saved.text
    body = {**EMAIL, "body": None, "subject": "s", "template": "big", "data": data}
    resp = post(api, token, "/v1/notifications", body)
    assert resp.status_code == 422, resp.text[:500]
    assert resp.json()["field"] == "data"
    sample = httpx.put(
        f"{api}/v1/notification-templates/big",
        json={"text": template, "sample_data": data},
        headers=auth(token),
    )
    assert sample.status_code == 422
    assert sample.json()["field"] == "sample_data"
    assert count_rows(settings, "notifications") == 0


def test_a_templated_subject_with_crlf_is_refused(api: str, make_key: MakeKey) -> None:
    token = make_key(scopes=SCOPES)
    saved = httpx.put(
        f"{api}/v1/notification-templates/subj",
        json={"subject": "Hi {{ name }}", "text": "x"},
        headers=auth(token),
    )
    assert saved.status_code == 201
    body = {
        **EMAIL,
        "subject": None,
        "body": None,
        "template": "subj",
        "data": {"name": "a\r\nBcc: eve@example.com"},
    }
    resp = post(api, token, "/v1/notifications", body)
    assert resp.status_code == 422
    assert resp.json()["field"] == "subject"


def test_method_not_allowed_says_what_is(api: str) -> None:
    resp = httpx.delete(f"{api}/v1/jobs", timeout=5)
    assert resp.status_code == 405
    assert resp.json()["code"] == "method_not_allowed"
    assert "GET" in resp.headers["allow"]
