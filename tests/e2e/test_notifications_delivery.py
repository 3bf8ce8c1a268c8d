"""Notifications end to end: HTTP → ledger → relay → worker → real SMTP server / HTTP receiver."""

from __future__ import annotations

import json
import uuid
from typing import cast

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from store.db import transaction
from tasks.enqueue import enqueue
from tasks.notifications.endpoints import register_endpoint
from tasks.notifications.schemas import DELIVER, NotificationRequest
from tasks.notifications.service import prepare, record
from tasks.notifications.settings import NotificationSettings
from tests.support.api import auth, finished
from tests.support.notifications_stack import (
    Stack,
    endpoint,
    first_endpoint_id,
    notify,
    wait_status,
)


def test_email_has_its_parts_and_keeps_its_message_id_across_a_forced_retry(
    stack: Stack, token: str
) -> None:
    template = {
        "subject": "Hi {{ name }}",
        "text": "Hello {{ name }}, your code is {{ code }}.",
        "html": "<p>Hello <b>{{ name }}</b>, your code is {{ code }}.</p>",
    }
    saved = httpx.put(
        f"{stack.base}/v1/notification-templates/welcome", json=template, headers=auth(token)
    )
    assert saved.status_code == 201, saved.text
    assert saved.json()["variables"] == ["code", "name"]
    stack.sink.fail_first["ada@example.com"] = 1  # 451 to the first DATA: a forced retry
    accepted = notify(
        stack,
        token,
        {
            "channel": "email",
            "to": "ada@example.com",
            "template": "welcome",
            "data": {"name": "<Ada>", "code": 42},
        },
    )
    done = wait_status(stack, token, accepted["id"], {"delivered", "failed"})
    assert done["status"] == "delivered"
    assert [a["outcome"] for a in done["attempts"]] == ["failed", "delivered"]
    assert done["attempts"][0]["status_code"] == 451
    assert done["attempts"][1]["reply"].startswith("250")
    messages = stack.sink.messages("ada@example.com")
    assert len(messages) == 2
    expected_id = f"<{accepted['job_id']}@switchyard.local>"
    assert [m["Message-ID"] for m in messages] == [expected_id, expected_id]
    final = messages[-1]
    assert final["Subject"] == "Hi <Ada>"
    assert final.get_content_type() == "multipart/alternative"
    parts = {
        p.get_content_type(): cast(bytes, p.get_payload(decode=True)).decode()
        for p in final.walk()
        if not p.is_multipart()
    }
    assert parts["text/plain"].strip() == "Hello <Ada>, your code is 42."
    assert parts["text/html"].strip() == "<p>Hello <b>&lt;Ada&gt;</b>, your code is 42.</p>"


def test_every_webhook_verifies_with_the_reference_verifier_and_tampering_fails(
    stack: Stack, token: str
) -> None:
    url, secret = endpoint(stack, token, "/ok/signed")
    first = notify(stack, token, {"channel": "webhook", "to": url, "data": {"order": 7}})
    wait_status(stack, token, first["id"], {"delivered"})
    rotated = httpx.post(
        f"{stack.base}/v1/webhook-endpoints/{first_endpoint_id(stack, token)}/rotate",
        headers=auth(token),
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    second = notify(stack, token, {"channel": "webhook", "to": url, "data": {"order": 8}})
    wait_status(stack, token, second["id"], {"delivered"})
    one, two = stack.receiver.requests("/ok/signed")
    assert Webhook(secret).verify(one["body"], one["headers"])["data"] == {"order": 7}
    assert one["headers"]["webhook-id"] == f"msg_{first['job_id']}"
    # While the old secret is in its grace period, both signatures ride along; each verifies.
    assert len(two["headers"]["webhook-signature"].split()) == 2
    for key in (secret, new_secret):
        assert Webhook(key).verify(two["body"], two["headers"])["data"] == {"order": 8}
    tampered = one["body"].replace(b"7", b"9")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, one["headers"])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(one["body"], {**one["headers"], "webhook-id": "msg_forged"})


def test_the_retry_schedule_is_followed_with_one_webhook_id(stack: Stack, token: str) -> None:
    url, secret = endpoint(stack, token, "/fail/3/schedule")
    accepted = notify(stack, token, {"channel": "webhook", "to": url, "data": {"n": 1}})
    done = wait_status(stack, token, accepted["id"], {"delivered", "failed"})
    assert done["status"] == "delivered"
    assert [a["outcome"] for a in done["attempts"]] == ["failed"] * 3 + ["delivered"]
    assert [a["status_code"] for a in done["attempts"]] == [500, 500, 500, 200]
    seen = stack.receiver.requests("/fail/3/schedule")
    assert len(seen) == 4
    assert {r["headers"]["webhook-id"] for r in seen} == {f"msg_{accepted['job_id']}"}
    for r in seen:
        Webhook(secret).verify(r["body"], r["headers"])
    gaps = [seen[i + 1]["at"] - seen[i]["at"] for i in range(3)]
    for gap, planned in zip(
        gaps, stack.settings.section(NotificationSettings).retry_schedule, strict=True
    ):
        assert gap >= planned, (gaps, "retried earlier than the schedule")


def test_an_exhausted_schedule_ends_failed(stack: Stack, token: str) -> None:
    url, _ = endpoint(stack, token, "/fail/99/forever")
    accepted = notify(stack, token, {"channel": "webhook", "to": url, "data": {}})
    done = wait_status(stack, token, accepted["id"], {"delivered", "failed"})
    assert done["status"] == "failed"
    assert (
        len(done["attempts"])
        == len(stack.settings.section(NotificationSettings).retry_schedule) + 1
    )
    assert len(stack.receiver.requests("/fail/99/forever")) == len(done["attempts"])


def test_sms_goes_through_the_http_provider_with_our_idempotency_key(
    stack: Stack, token: str
) -> None:
    accepted = notify(
        stack, token, {"channel": "sms", "to": "+1 650-253-0000", "body": "Your code: 1234"}
    )
    wait_status(stack, token, accepted["id"], {"delivered"})
    (sent,) = stack.receiver.requests("/sms")
    assert json.loads(sent["body"]) == {"to": "+16502530000", "body": "Your code: 1234"}
    assert sent["headers"]["idempotency-key"] == f"{accepted['job_id']}:sms"


def test_webhooks_sharing_a_batch_each_go_out_once_and_a_missing_one_fails_alone(
    stack: Stack,
) -> None:
    own = stack.settings
    url = f"{stack.receiver.base}/ok/batch"
    with transaction(own) as session:
        register_endpoint(session, url, producer="batch-e2e", secret=None, settings=own)
    with transaction(own) as session:  # one transaction: the relay sends them as one batch
        jobs = []
        for n in range(5):
            request = NotificationRequest(channel="webhook", to=url, data={"n": n})
            prepared = prepare(
                session, request, producer="batch-e2e", settings=own.section(NotificationSettings)
            )
            payload = {"notification_id": str(prepared.id)}
            job_id = enqueue(
                session, DELIVER.name, payload, producer="batch-e2e", settings=own
            ).job_id
            record(session, prepared, job_id=job_id)
            jobs.append(job_id)
        ghost = {"notification_id": str(uuid.uuid4())}
        missing = enqueue(session, DELIVER.name, ghost, producer="batch-e2e", settings=own).job_id
    result = finished(own, [*jobs, missing])
    assert all(result[j] == ("succeeded", ["succeeded"]) for j in jobs), result
    assert result[missing] == ("dead", ["dead"])
    received = stack.receiver.requests("/ok/batch")
    assert sorted(r["headers"]["webhook-id"] for r in received) == sorted(f"msg_{j}" for j in jobs)
    assert sorted(json.loads(r["body"])["data"]["n"] for r in received) == list(range(5))
