"""Notifications under stress: callbacks for every job type, a worker killed mid-send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks.webhooks import Webhook

from devstack.processes import wait_until
from tests.support.api import auth, submit, wait_state
from tests.support.notifications_stack import (
    Stack,
    delivered_callbacks,
    endpoint,
    notify,
    wait_status,
)
from tests.support.stack import start_worker


def test_completion_callbacks_fire_once_per_job(stack: Stack, token: str) -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bodies = {
        "echo": {"type": "system.echo", "payload": {"x": 1}},
        "retried": {"type": "system.fail", "payload": {"times": 2}},
        "dead": {"type": "system.fail", "payload": {"times": 1, "mode": "permanent"}},
        "cancelled": {"type": "system.echo", "payload": {}, "run_at": later},
    }
    jobs = {}
    for name, body in bodies.items():
        cb = {"callback_url": f"{stack.receiver.base}/ok/cb/{name}", "callback_secret": secret}
        resp = submit(stack.base, token, {**body, **cb})
        assert resp.status_code == 202, resp.text
        jobs[name] = resp.json()["id"]
    cancel = httpx.post(f"{stack.base}/v1/jobs/{jobs['cancelled']}/cancel", headers=auth(token))
    assert cancel.status_code == 200
    states = {name: wait_state(stack.base, token, jid)["state"] for name, jid in jobs.items()}
    assert states == {
        "echo": "succeeded",
        "retried": "succeeded",
        "dead": "dead",
        "cancelled": "cancelled",
    }
    listed = wait_until(
        lambda: delivered_callbacks(stack, token, 4), timeout=30, what="4 delivered callbacks"
    )
    assert len(listed) == 4
    for name, job_id in jobs.items():
        (hit,) = stack.receiver.requests(f"/ok/cb/{name}")
        event = Webhook(secret).verify(hit["body"], hit["headers"])
        assert event["type"] == f"job.{states[name]}"
        assert event["data"]["job_id"] == job_id
        assert "traceback" not in (event["data"]["error"] or {})


def test_a_worker_killed_mid_send_resends_with_the_same_ids(stack: Stack, token: str) -> None:
    """At-least-once: the far side may see two deliveries, always with one Message-ID/webhook-id."""
    url, secret = endpoint(stack, token, "/hang/2/kill")
    stack.sink.hang_first["kill@example.com"] = 2.0
    hook = notify(stack, token, {"channel": "webhook", "to": url, "data": {"k": 1}})
    mail = notify(
        stack, token, {"channel": "email", "to": "kill@example.com", "subject": "s", "body": "b"}
    )
    wait_until(lambda: stack.receiver.requests("/hang/2/kill"), what="the webhook to arrive")
    wait_until(lambda: stack.sink.messages("kill@example.com"), what="the email to arrive")
    stack.processes["worker"].kill()  # SIGKILL mid-send: neither outcome was recorded
    stack.processes["worker"].popen.wait(10)
    stack.processes["worker"] = start_worker(stack.settings, stack.logs_dir, name="notify-2")
    for accepted in (hook, mail):
        done = wait_status(stack, token, accepted["id"], {"delivered", "failed"}, timeout=60)
        assert done["status"] == "delivered"
        assert [a["outcome"] for a in done["attempts"]] == ["delivered"]
    hooks = stack.receiver.requests("/hang/2/kill")
    assert len(hooks) == 2
    assert {h["headers"]["webhook-id"] for h in hooks} == {f"msg_{hook['job_id']}"}
    for h in hooks:
        Webhook(secret).verify(h["body"], h["headers"])
    mails = stack.sink.messages("kill@example.com")
    assert len(mails) == 2
    assert {m["Message-ID"] for m in mails} == {f"<{mail['job_id']}@switchyard.local>"}
