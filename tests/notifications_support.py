"""Real far sides for notification tests: an HTTP receiver process and an SMTP server thread.

Run the receiver as `python -m tests.notifications_support PORT LOG`. Paths:
`/ok` answers 200; `/fail/N/...` answers 500 to its first N requests; `/hang/S/...` sleeps S
seconds before answering its first request; `/delay/MS/...` waits MS milliseconds before every
answer (a far side with some latency); `/redirect?to=URL` answers 302 to URL. Every request
is appended to LOG as one JSON line *before* it is answered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import text

from config import JobPolicy, NotificationSettings, Settings, SmtpSettings
from store.db import transaction
from tests.support import Process, free_port, settings_env, switchyard, wait_until

NOTIFICATION_TABLES = (
    "notification_attempts",
    "notifications",
    "webhook_endpoints",
    "notification_templates",
)


class _Handler(BaseHTTPRequestHandler):
    log_path: Path
    seen: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.lock:
            self.seen[self.path] += 1
            count = self.seen[self.path]
            record = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": base64.b64encode(body).decode(),
                "at": time.time(),
            }
            with self.log_path.open("a") as out:
                out.write(json.dumps(record) + "\n")
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        status, headers = 200, {}
        if segments[0] == "fail" and count <= int(segments[1]):
            status = 500
        elif segments[0] == "hang" and count == 1:
            time.sleep(float(segments[1]))
        elif segments[0] == "delay":
            time.sleep(float(segments[1]) / 1_000)
        elif segments[0] == "redirect":
            status, headers = 302, {"Location": parse_qs(parts.query)["to"][0]}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def serve(port: int, log_path: Path) -> None:
    """Run the receiver until killed."""
    _Handler.log_path = log_path
    ThreadingHTTPServer(("127.0.0.1", port), _Handler).serve_forever()


@dataclass
class Receiver:
    """A receiver process and what it has recorded."""

    process: Process
    base: str
    log_path: Path

    def requests(self, prefix: str = "") -> list[dict[str, Any]]:
        """Recorded requests whose path starts with `prefix`, bodies decoded to bytes."""
        if not self.log_path.exists():
            return []
        out = []
        for line in self.log_path.read_text().splitlines():
            rec = json.loads(line)
            if rec["path"].startswith(prefix):
                rec["body"] = base64.b64decode(rec["body"])
                out.append(rec)
        return out


def start_receiver(logs_dir: Path) -> Receiver:
    """Start a receiver process on a free port and wait until it answers."""
    port = free_port()
    log_path = logs_dir / f"receiver-{port}.jsonl"
    proc = Process(
        [sys.executable, "-m", "tests.notifications_support", str(port), str(log_path)],
        env=settings_env(Settings()),
        log_path=logs_dir / f"receiver-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.post(f"{base}/ping", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=15, what="the webhook receiver")
    return Receiver(proc, base, log_path)


@dataclass
class SmtpSink:
    """An aiosmtpd handler that records every DATA; per recipient, fails or stalls the first."""

    fail_first: dict[str, int] = field(default_factory=dict)
    hang_first: dict[str, float] = field(default_factory=dict)
    received: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the message; answer 451 to a recipient's first `fail_first` ones."""
        rcpt = envelope.rcpt_tos[0]
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        number = sum(1 for rcpts, _ in self.received if rcpt in rcpts)
        if number <= self.fail_first.get(rcpt, 0):
            return "451 4.3.0 try again later"
        if number == 1 and rcpt in self.hang_first:
            await asyncio.sleep(self.hang_first[rcpt])
        return "250 2.0.0 queued"

    def messages(self, to: str) -> list[Message]:
        """Everything received for `to`, parsed."""
        return [message_from_bytes(raw) for rcpts, raw in self.received if to in rcpts]


def start_smtp(sink: SmtpSink) -> Controller:
    """Run an SMTP server for `sink` in a thread on a free port."""
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


def stack_settings(settings: Settings, *, smtp_port: int, **notify: Any) -> Settings:
    """Test settings: its own Redis prefix, loopback allow-listed, a compressed retry schedule."""
    values: dict[str, Any] = {
        "smtp": SmtpSettings(host="127.0.0.1", port=smtp_port, timeout=5),
        "retry_schedule": [0.3, 0.6, 0.9],
        "webhook_allowed_networks": ["127.0.0.0/8", "::1/128"],
        **notify,
    }
    redis = settings.redis.model_copy(
        update={"key_prefix": f"{settings.redis.key_prefix}{uuid.uuid4().hex[:8]}:"}
    )
    policies = {
        **settings.job_policies,
        "notifications.deliver": JobPolicy(lease_timeout=3, backoff_base=0.2, backoff_cap=1.0),
    }
    return settings.model_copy(
        update={
            "redis": redis,
            "notifications": NotificationSettings(**values),
            "job_policies": policies,
        }
    )


def clean_notifications(settings: Settings) -> None:
    """Empty the notification tables of this run."""
    with transaction(settings) as session:
        session.execute(text(f"TRUNCATE {', '.join(NOTIFICATION_TABLES)} CASCADE"))


def drop_redis_keys(settings: Settings) -> None:
    """Delete the keys under these settings' own Redis prefix (a killed worker leaves some)."""
    client = redis.Redis.from_url(settings.redis.url)
    try:
        keys = list(client.scan_iter(match=f"{settings.redis.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def start_beat(settings: Settings, logs_dir: Path) -> Process:
    """Beat (relay sweep and reaper) for these settings."""
    return Process(
        switchyard("beat"),
        env=settings_env(settings),
        log_path=logs_dir / f"beat-{free_port()}.log",
    )


if __name__ == "__main__":
    serve(int(sys.argv[1]), Path(sys.argv[2]))
