"""The strict parser, the field types, the bounded template sandbox and the settings checks
(no I/O)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from config import Settings
from errors import InvalidFieldError
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import blocked_reason
from tasks.notifications.templates import render
from tasks.web.fields import Instant, Int32, JsonObject, Text
from tasks.web.strict import loads


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        (b'{"a": NaN}', "malformed_json", "a"),
        (b'{"a": [-Infinity]}', "malformed_json", "a.0"),
        (b'{"a": {"b": 1e999}}', "number_out_of_range", "a.b"),
        (b'{"a": 1, "a": 2}', "malformed_json", "body"),
        (b'{"a": {"b": 1, "b": 1}}', "malformed_json", "body"),
        (b'{"a": [' + b"1" * 400 + b".0]}", "number_out_of_range", "a.0"),
        (b'{"a": "\\ud800"}', "invalid_text", "a"),
        (b'{"\\u0000": 1}', "invalid_text", "body"),
        (b'{"a": "x\\u0000"}', "invalid_text", "a"),
        (b"\xef\xbb\xbf{}", "invalid_encoding", "body"),
        ("{}".encode("utf-16-le"), "invalid_encoding", "body"),
        (b'"\xc3"', "invalid_encoding", "body"),
        (b"[" * 10_000 + b"]" * 10_000, "body_too_deep", "body"),
        (b"1" * 5_000, "number_out_of_range", "body"),
        (b"{", "malformed_json", "body"),
    ],
)
def test_loads_refuses_and_locates(raw: bytes, code: str, field: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        loads(raw)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_loads_keeps_what_json_means() -> None:
    assert loads(b'{"a": [1.5, "\\u00e9\\ud83d\\ude00", null, true, 10000000000000000000]}') == {
        "a": [1.5, "é😀", None, True, 10**19]
    }
    deep_enough = b"[" * 32 + b"]" * 32
    assert loads(deep_enough) is not None


class Model(BaseModel):
    text: Text | None = None
    data: JsonObject | None = None
    version: Int32 | None = None
    at: Instant | None = None


@pytest.mark.parametrize(
    "values",
    [
        {"text": "a\x00"},
        {"text": "\udc00"},
        {"data": {"k": ["ok", "\x00"]}},
        {"data": {"\ud800": 1}},
        {"data": {"k": float("nan")}},
        {"data": {"k": float("inf")}},
        {"version": 2**31},
        {"version": 0},
        {"at": "2030-01-01T00:00:00+16:00"},
        {"at": "9999-12-31T23:59:59-01:00"},
        {"at": "0001-01-01T00:00:00+00:01"},
        {"at": "9999-12-30T00:00:00Z"},
    ],
)
def test_field_types_refuse_what_cannot_be_stored(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        Model.model_validate(values)
    assert caught.value.errors()[0]["loc"][0] == next(iter(values))


def test_instants_come_out_in_utc() -> None:
    at = Model.model_validate({"at": "2030-01-01T00:00:00+15:59"}).at
    assert at is not None and at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert Model.model_validate({"version": 2**31 - 1}).version == 2**31 - 1


@pytest.mark.parametrize(
    "template",
    [
        "{% for i in range(100000) %}{{ x }}{{ x }}{% endfor %}",
        "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}",
        "{% for a in xs %}{% for b in xs %}{% for c in xs %}{% endfor %}{% endfor %}{% endfor %}",
        "{{ x * 10000000 }}",
        "{{ 2 ** 100000 }}",
        "{{ x | center(100000000) }}",
    ],
)
def test_rendering_is_bounded(template: str) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        render({"text": template}, {"x": "ab", "xs": list(range(100))}, field="data")
    assert caught.value.field == "data"


def test_bounded_templates_still_render() -> None:
    out = render(
        {
            "subject": "Hi {{ name }}",
            "text": "{% for x in xs %}{{ loop.index }}{{ x }} {% endfor %}",
        },
        {"name": "Bo", "xs": ["a", "b"]},
        field="data",
    )
    assert (out.subject, out.text) == ("Hi Bo", "1a 2b ")


@pytest.mark.parametrize(
    "address", ["fec0::1", "fc00::1", "3fff::1", "5f00::1", "64:ff9b:1::1", "100::1", "2001:db8::1"]
)
def test_no_special_purpose_ipv6_block_is_reachable(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is not None


def test_public_ipv6_stays_reachable() -> None:
    assert blocked_reason(ipaddress.ip_address("2606:4700:4700::1111")) is None


def test_prod_refuses_to_run_without_a_sealing_key() -> None:
    with pytest.raises(ValueError, match="SWITCHYARD_NOTIFICATIONS__SECRET_KEY"):
        NotificationSettings().check(Settings(env="prod"))
    NotificationSettings(secret_key="k" * 32).check(Settings(env="prod"))
    NotificationSettings().check(Settings(env="dev"))


def test_a_settings_error_never_shows_the_flower_password() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(flower={"password": "hunter2-very-secret"})
    assert "hunter2" not in str(caught.value)


def test_every_route_with_a_body_parses_it_strictly() -> None:
    from fastapi.routing import APIRoute

    from producers.api.routes import health, jobs, metrics
    from tasks.registry import domains
    from tasks.web.routing import StrictRoute

    settings = Settings(env="test", extra_domains=["tests.support.toy"])
    routers = [health.router, jobs.router, metrics.router, *domains(settings).routers()]
    loose = [
        f"{sorted(route.methods or ())} {route.path}"
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.body_field and not isinstance(route, StrictRoute)
    ]
    assert loose == [], "declare APIRouter(..., route_class=StrictRoute)"
