"""A whole notifications pipeline for e2e tests: API, relay, beat, worker, SMTP sink, receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from config import Settings
from devstack.processes import Process, wait_until
from devstack.receiver import Receiver, start_receiver
from tests.support.api import auth
from tests.support.notifications import (
    SmtpSink,
    clean_notifications,
    drop_redis_keys,
    stack_settings,
    start_beat,
    start_smtp,
)
from tests.support.stack import start_api, start_process, start_worker

SCOPES = ("notifications:write", "notifications:read", "jobs:write", "jobs:read")


@dataclass
class Stack:
    """A whole pipeline with notification test settings, and the far sides it talks to."""

    base: str
    settings: Settings
    sink: SmtpSink
    receiver: Receiver
    processes: dict[str, Process]
    logs_dir: Path


def run_stack(settings: Settings, logs_dir: Path) -> Iterator[Stack]:
    sink = SmtpSink()
    smtp = start_smtp(sink)
    receiver = start_receiver(logs_dir)
    own = stack_settings(
        settings, smtp_port=smtp.port, sms_provider="http", sms_endpoint=f"{receiver.base}/sms"
    )
    api, base = start_api(own, logs_dir, name="api-notify")
    processes = {
        "api": api,
        "relay": start_process(own, logs_dir, "relay"),
        "beat": start_beat(own, logs_dir),  # the reaper, for the killed-worker test
        "worker": start_worker(own, logs_dir, name="notify"),
    }
    yield Stack(base, own, sink, receiver, processes, logs_dir)
    for proc in reversed(processes.values()):
        proc.stop()
    receiver.process.stop()
    smtp.stop()
    drop_redis_keys(own)


def token_for(stack: Stack, make_key: Callable[..., str]) -> Iterator[str]:
    yield make_key(scopes=SCOPES)
    clean_notifications(stack.settings)


def notify(stack: Stack, token: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = httpx.post(f"{stack.base}/v1/notifications", json=body, headers=auth(token), timeout=10)
    assert resp.status_code == 202, resp.text
    return resp.json()  # type: ignore[no-any-return]


def wait_status(
    stack: Stack, token: str, notification_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        resp = httpx.get(
            f"{stack.base}/v1/notifications/{notification_id}", headers=auth(token), timeout=5
        )
        assert resp.status_code == 200, resp.text
        return resp.json() if resp.json()["status"] in statuses else None

    return wait_until(reached, timeout=timeout, what=f"notification to be {statuses}")


def endpoint(stack: Stack, token: str, path: str) -> tuple[str, str]:
    url = f"{stack.receiver.base}{path}"
    resp = httpx.post(
        f"{stack.base}/v1/webhook-endpoints", json={"url": url}, headers=auth(token), timeout=5
    )
    assert resp.status_code == 201, resp.text
    return url, resp.json()["secret"]


def first_endpoint_id(stack: Stack, token: str) -> str:
    listed = httpx.get(f"{stack.base}/v1/webhook-endpoints", headers=auth(token)).json()
    return str(listed[0]["id"])


def delivered_callbacks(stack: Stack, token: str, n: int) -> list[dict[str, Any]] | None:
    resp = httpx.get(
        f"{stack.base}/v1/notifications",
        params={"status": "delivered", "channel": "webhook"},
        headers=auth(token),
    )
    items = [i for i in resp.json()["items"] if i["kind"] == "callback"]
    return items if len(items) >= n else None
