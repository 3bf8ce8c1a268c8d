"""Completion callbacks: what a job stores to get a signed webhook when it ends.

The webhook itself is enqueued by the `jobs_completion_callback` trigger (migration 0002), in the
transaction that records the terminal state, whichever code path moved the job.
"""

from __future__ import annotations

from config import Settings
from errors import SwitchyardError
from tasks.notifications.secrets import SecretFormatError, seal, secret_bytes
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import BlockedAddressError, check_url, parse_networks


class CallbackError(SwitchyardError):
    """A callback URL or secret cannot be accepted; `field` names which."""

    code = "invalid_field"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def callback_columns(url: str | None, secret: str | None, *, settings: Settings) -> dict[str, str]:
    """The job columns for a callback (secret sealed), or {} without one."""
    if url is None:
        if secret is not None:
            raise CallbackError("a callback secret needs a callback_url", field="callback_url")
        return {}
    try:
        check_url(
            url,
            allowed=parse_networks(settings.section(NotificationSettings).webhook_allowed_networks),
        )
    except BlockedAddressError as exc:
        raise CallbackError(str(exc), field="callback_url") from exc
    if secret is None:
        raise CallbackError("a callback_url needs a callback_secret", field="callback_secret")
    try:
        secret_bytes(secret)
    except SecretFormatError as exc:
        raise CallbackError(str(exc), field="callback_secret") from exc
    return {"callback_url": url, "callback_secret": seal(secret, settings=settings)}
