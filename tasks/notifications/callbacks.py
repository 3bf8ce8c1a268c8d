"""Completion callbacks: what a job stores to get a signed webhook when it ends.

The webhook itself is enqueued by the `jobs_completion_callback` trigger
(`sql/completion_callback.sql`, rendered by `completion_trigger.py`), in the transaction that
records the terminal state, whichever code path moved the job.
"""

from __future__ import annotations

from config import Settings
from errors import InvalidFieldError
from tasks.notifications.secrets import seal, secret_bytes
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import check_url, parse_networks


def callback_columns(url: str | None, secret: str | None, *, settings: Settings) -> dict[str, str]:
    """The job columns for a callback (secret sealed), or {} without one; InvalidFieldError
    naming `callback_url` or `callback_secret` if either cannot be accepted."""
    if url is None:
        if secret is not None:
            raise InvalidFieldError("a callback secret needs a callback_url", field="callback_url")
        return {}
    allowed = parse_networks(settings.section(NotificationSettings).webhook_allowed_networks)
    check_url(url, allowed=allowed, field="callback_url")
    if secret is None:
        raise InvalidFieldError("a callback_url needs a callback_secret", field="callback_secret")
    secret_bytes(secret, field="callback_secret")
    return {"callback_url": url, "callback_secret": seal(secret, settings=settings)}
