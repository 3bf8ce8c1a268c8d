"""Templates that blow up or run away when rendered: a 422 naming the field, never a 500, and
nothing half-written (a real intake process and PostgreSQL, as test_notifications_api.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from tests.support.api import auth, count_rows
from tests.support.keys import MakeKey
from tests.support.notifications import clean_notifications, stack_settings
from tests.support.stack import start_api

SCOPES = ("notifications:write", "notifications:read")
EMAIL = {"channel": "email", "to": "bob@example.com"}
HUGE_RANGE = "{% for i in range(10**9) %}x{% endfor %}"

RUNAWAY = [
    HUGE_RANGE,
    "{% for i in range(200000) %}x{% endfor %}",  # past Jinja's MAX_RANGE: OverflowError
    "{{ 1 / 0 }}",
    "{{ 'a' + 1 }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% include 'other' %}",
    "{{ 'x' * 10**8 }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ ('x' * 200000) | replace('x', 'x' * 2000) }}",
    "{% set n = namespace(a='x') %}{% for i in range(40) %}{% set n.a = n.a ~ n.a %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
]


@pytest.fixture(scope="module")
def own(settings: Settings) -> Settings:
    return stack_settings(settings, smtp_port=2525)


@pytest.fixture(scope="module")
def base(own: Settings, logs_dir: Path) -> Iterator[str]:
    proc, url = start_api(own, logs_dir, name="api-notify-limits")
    yield url
    proc.stop()


@pytest.fixture
def token(own: Settings, make_key: MakeKey) -> Iterator[str]:
    yield make_key(scopes=SCOPES)
    clean_notifications(own)


def put_template(base: str, token: str, name: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(
        f"{base}/v1/notification-templates/{name}", json=body, headers=auth(token), timeout=30
    )


def problem_field(resp: httpx.Response) -> str:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return str(resp.json()["field"])


def test_a_huge_range_is_a_422_on_submit_and_writes_nothing(
    base: str, token: str, own: Settings
) -> None:
    saved = put_template(base, token, "loop", {"subject": "s", "text": HUGE_RANGE})
    assert saved.status_code == 201, saved.text  # no sample data: nothing to render yet
    resp = httpx.post(
        f"{base}/v1/notifications",
        json={**EMAIL, "template": "loop", "data": {}},
        headers=auth(token),
        timeout=30,
    )
    assert problem_field(resp) == "data"
    assert "text" in resp.json()["detail"]
    assert count_rows(own, "notifications") == 0
    assert count_rows(own, "jobs") == 0


@pytest.mark.parametrize("body", RUNAWAY)
def test_a_runaway_template_is_refused_on_save_with_sample_data(
    base: str, token: str, own: Settings, body: str
) -> None:
    started = time.monotonic()
    resp = put_template(base, token, "t", {"subject": "s", "text": body, "sample_data": {}})
    assert problem_field(resp) == "sample_data"
    assert "text: " in resp.json()["detail"]
    assert time.monotonic() - started < 10
    assert count_rows(own, "notification_templates") == 0


def test_the_api_still_answers_after_the_refusals(base: str, token: str) -> None:
    ok = put_template(
        base, token, "fine", {"text": "{{ 'ab' * 3 }} {{ n }}", "sample_data": {"n": 1}}
    )
    assert ok.status_code == 201, ok.text
