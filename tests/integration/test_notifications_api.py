"""The notifications API against a real intake process and PostgreSQL (no worker: nothing sends)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from tests.support.api import auth, count_rows, submit
from tests.support.keys import MakeKey
from tests.support.notifications import clean_notifications, stack_settings
from tests.support.stack import start_api

SCOPES = ("notifications:write", "notifications:read", "jobs:write", "jobs:read")


@pytest.fixture(scope="module")
def own(settings: Settings) -> Settings:
    return stack_settings(settings, smtp_port=2525, rate_limit_count=2, rate_limit_period=60)


@pytest.fixture(scope="module")
def base(own: Settings, logs_dir: Path) -> Iterator[str]:
    proc, url = start_api(own, logs_dir, name="api-notify-int")
    yield url
    proc.stop()


@pytest.fixture
def token(own: Settings, make_key: MakeKey) -> Iterator[str]:
    yield make_key(scopes=SCOPES)
    clean_notifications(own)


def post(base: str, token: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base}/v1/notifications", json=body, headers=auth(token), timeout=10)


def field_of(resp: httpx.Response) -> str:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return str(resp.json()["field"])


def put_template(base: str, token: str, name: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(f"{base}/v1/notification-templates/{name}", json=body, headers=auth(token))


EMAIL = {"channel": "email", "to": "bob@example.com", "subject": "s", "body": "b"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**EMAIL, "channel": "pigeon"}, "channel"),
        ({**EMAIL, "to": "not-an-address"}, "to"),
        ({**EMAIL, "subject": None}, "subject"),
        ({**EMAIL, "body": None}, "body"),
        ({**EMAIL, "send_at": "2030-01-01T10:00:00"}, "send_at"),
        ({**EMAIL, "dedup_key": ""}, "dedup_key"),
        ({"channel": "sms", "to": "12345", "body": "x"}, "to"),
        ({"channel": "sms", "to": "+1 650-253-0000"}, "body"),
        ({"channel": "webhook", "to": "http://10.0.0.1/hook", "data": {}}, "to"),
        ({"channel": "webhook", "to": "ftp://example.com/", "data": {}}, "to"),
        ({"channel": "webhook", "to": "https://example.com/unregistered", "data": {}}, "to"),
        ({**EMAIL, "template": "nope"}, "template"),
        ({"channel": "webhook", "to": "https://example.com/h", "template": "t"}, "template"),
        (
            {**EMAIL, "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
            "quiet_hours.timezone",
        ),
        ({**EMAIL, "extra": 1}, "extra"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    base: str, token: str, body: dict[str, Any], field: str
) -> None:
    assert field_of(post(base, token, body)) == field


def test_a_missing_template_variable_is_named_at_acceptance(base: str, token: str) -> None:
    saved = put_template(base, token, "greet", {"subject": "Hi {{ name }}", "text": "{{ code }}"})
    assert saved.status_code == 201, saved.text
    resp = post(base, token, {**EMAIL, "template": "greet", "data": {"name": "Bo"}})
    assert field_of(resp) == "data.code"
    assert "code" in resp.json()["detail"]


def test_templates_are_versioned_and_checked_on_save(base: str, token: str) -> None:
    assert field_of(put_template(base, token, "t", {"text": "{% if %}"})) == "text"
    assert (
        field_of(
            put_template(base, token, "t", {"html": "{{ x.__class__ }}", "sample_data": {"x": 1}})
        )
        == "html"
    )
    bad_sample = put_template(base, token, "t", {"text": "{{ a }}", "sample_data": {}})
    assert field_of(bad_sample) == "sample_data.a"
    assert put_template(base, token, "t", {"text": "v1 {{ a }}"}).json()["version"] == 1
    assert put_template(base, token, "t", {"text": "v2 {{ b }}"}).json()["version"] == 2
    latest = httpx.get(f"{base}/v1/notification-templates/t", headers=auth(token)).json()
    assert (latest["version"], latest["variables"]) == (2, ["b"])
    first = httpx.get(f"{base}/v1/notification-templates/t?version=1", headers=auth(token))
    assert first.json()["text"] == "v1 {{ a }}"
    gone = httpx.delete(f"{base}/v1/notification-templates/t", headers=auth(token))
    assert gone.status_code == 204
    missing = httpx.get(f"{base}/v1/notification-templates/t", headers=auth(token))
    assert missing.status_code == 404


def test_the_same_dedup_key_and_recipient_is_the_same_notification(
    base: str, token: str, own: Settings
) -> None:
    body = {**EMAIL, "dedup_key": "order-7-shipped"}
    first = post(base, token, body)
    again = post(base, token, {**body, "to": "bob@EXAMPLE.com"})  # same mailbox, other spelling
    other = post(base, token, {**body, "to": "eve@example.com"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.json()["deduplicated"] is True
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.json()["id"] != first.json()["id"]
    assert count_rows(own, "notifications") == 2
    assert count_rows(own, "jobs") == 2


def test_excess_over_the_rate_limit_is_delayed_never_dropped(
    base: str, token: str, own: Settings
) -> None:
    accepted = [post(base, token, {**EMAIL, "to": "carol@example.com"}) for _ in range(5)]
    assert [r.status_code for r in accepted] == [202] * 5
    times = sorted(datetime.fromisoformat(r.json()["send_at"]) for r in accepted)
    # 2 per 60 s: two now, two a minute later, one two minutes later.
    assert times[1] - times[0] < timedelta(seconds=5)
    assert times[2] - times[0] >= timedelta(seconds=60)
    assert times[4] - times[0] >= timedelta(seconds=120)
    assert count_rows(own, "notifications") == 5
    jobs = httpx.get(
        f"{base}/v1/jobs", params={"type": "notifications.deliver"}, headers=auth(token)
    )
    run_ats = sorted(datetime.fromisoformat(j["run_at"]) for j in jobs.json()["items"])
    assert run_ats == times  # the delay lives in the ledger's run_at
    elsewhere = post(base, token, {**EMAIL, "to": "dave@example.com"})
    assert datetime.fromisoformat(elsewhere.json()["send_at"]) - times[0] < timedelta(seconds=5)


def test_quiet_hours_defer_to_the_end_of_the_window_in_the_recipients_zone(
    base: str, token: str
) -> None:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end_at = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    quiet = {"start": start, "end": end_at.strftime("%H:%M"), "timezone": "UTC"}
    resp = post(base, token, {**EMAIL, "to": "night@example.com", "quiet_hours": quiet})
    assert datetime.fromisoformat(resp.json()["send_at"]) == end_at


def test_reads_list_filter_and_need_their_scopes(base: str, token: str, make_key: MakeKey) -> None:
    sms = post(base, token, {"channel": "sms", "to": "+16502530000", "body": "hi"}).json()
    post(base, token, EMAIL)
    page = httpx.get(
        f"{base}/v1/notifications", params={"channel": "sms"}, headers=auth(token)
    ).json()
    assert [i["id"] for i in page["items"]] == [sms["id"]]
    pending = httpx.get(
        f"{base}/v1/notifications", params={"status": "pending", "limit": 1}, headers=auth(token)
    ).json()
    assert len(pending["items"]) == 1 and pending["next_cursor"]
    detail = httpx.get(f"{base}/v1/notifications/{sms['id']}", headers=auth(token)).json()
    assert (detail["status"], detail["to"], detail["attempts"]) == ("pending", "+16502530000", [])
    jobs_only = make_key(name="other", scopes=("jobs:write",))
    assert post(base, jobs_only, EMAIL).status_code == 403
    stranger = make_key(name="stranger", scopes=("notifications:read",))
    hidden = httpx.get(f"{base}/v1/notifications/{sms['id']}", headers=auth(stranger))
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"callback_url": "http://127.0.0.1:1/cb"}, "callback_secret"),
        ({"callback_url": "http://127.0.0.1:1/cb", "callback_secret": "plain"}, "callback_secret"),
        (
            {"callback_url": "http://192.168.1.1/cb", "callback_secret": "whsec_" + "A" * 32},
            "callback_url",
        ),
        ({"callback_secret": "whsec_" + "A" * 32}, "callback_url"),
    ],
)
def test_bad_callbacks_are_a_422_naming_the_field(
    base: str, token: str, extra: dict[str, str], field: str
) -> None:
    resp = submit(base, token, {"type": "system.echo", "payload": {}, **extra})
    assert field_of(resp) == field


def test_webhook_endpoints_rotate_list_without_secrets_and_delete(base: str, token: str) -> None:
    url = "https://hooks.example.com/a"
    made = httpx.post(f"{base}/v1/webhook-endpoints", json={"url": url}, headers=auth(token))
    assert made.status_code == 201, made.text
    assert made.json()["secret"].startswith("whsec_")
    again = httpx.post(f"{base}/v1/webhook-endpoints", json={"url": url}, headers=auth(token))
    assert again.status_code == 409
    bad = httpx.post(
        f"{base}/v1/webhook-endpoints", json={"url": url + "b", "secret": "x"}, headers=auth(token)
    )
    assert field_of(bad) == "secret"
    endpoint_id = made.json()["id"]
    rotated = httpx.post(f"{base}/v1/webhook-endpoints/{endpoint_id}/rotate", headers=auth(token))
    assert rotated.json()["secret"] != made.json()["secret"]
    (listed,) = httpx.get(f"{base}/v1/webhook-endpoints", headers=auth(token)).json()
    assert listed["active_secrets"] == 2
    assert "secret" not in listed
    gone = httpx.delete(f"{base}/v1/webhook-endpoints/{endpoint_id}", headers=auth(token))
    assert gone.status_code == 204
    assert httpx.get(f"{base}/v1/webhook-endpoints", headers=auth(token)).json() == []
