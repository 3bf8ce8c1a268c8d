"""Real far sides for notification tests: an SMTP server thread, settings, cleanup.

The webhook receiver process is `devstack.receiver` (the benchmarks use it too).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller

from config import JobPolicy, Settings
from devstack.processes import Process, free_port, settings_env, switchyard
from tasks.notifications.settings import NotificationSettings, SmtpSettings
from tests.support.ledger import clean_tables


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
    clean_tables(settings, domain="notifications")


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
