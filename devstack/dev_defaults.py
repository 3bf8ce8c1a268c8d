"""What `switchyard dev` changes in the notifications settings it hands its children, unless
the developer set them: email goes to the stack's SMTP sink, webhooks may reach loopback."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from config import Settings
from tasks.notifications.ssrf import ALLOWED_NETWORKS_SETTING as ALLOWED_NETWORKS_ENV

SMTP_ENV = "SWITCHYARD_NOTIFICATIONS__SMTP__"
LOOPBACK = '["127.0.0.0/8", "::1/128"]'


def _section(settings: Settings) -> set[str]:
    """The notifications settings given to `settings` directly (not through the environment)."""
    section: Any = (settings.__pydantic_extra__ or {}).get("notifications")
    if isinstance(section, BaseModel):
        return set(section.model_fields_set)
    return set(section) if isinstance(section, dict) else set()


def wants_mail_sink(settings: Settings, env: dict[str, str]) -> bool:
    """True unless the developer configured an SMTP server of their own."""
    return not any(k.startswith(SMTP_ENV) for k in env) and "smtp" not in _section(settings)


def smtp_env(port: int) -> dict[str, str]:
    """The children's SMTP settings for a sink on 127.0.0.1:`port`."""
    return {f"{SMTP_ENV}HOST": "127.0.0.1", f"{SMTP_ENV}PORT": str(port),
            f"{SMTP_ENV}SECURITY": "none"}  # fmt: skip


def allow_loopback_webhooks(settings: Settings, env: dict[str, str]) -> str | None:
    """Admit loopback webhooks in `env` unless the allow-list is set; returns the note to log.

    Dev's receivers run on this machine. Outside dev the SSRF guard refuses loopback, and its
    refusal names the setting that admits it.
    """
    if ALLOWED_NETWORKS_ENV in env or "webhook_allowed_networks" in _section(settings):
        return None
    env[ALLOWED_NETWORKS_ENV] = LOOPBACK
    return (
        f"webhooks may reach loopback in dev ({ALLOWED_NETWORKS_ENV}={LOOPBACK}); "
        "set it to [] to try the SSRF guard"
    )
