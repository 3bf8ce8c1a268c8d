"""What `switchyard dev` sets in its children's notifications settings, and what it leaves to
the developer (no I/O)."""

from __future__ import annotations

from config import Settings
from devstack.dev_defaults import (
    allow_loopback_webhooks,
    smtp_env,
    wants_mail_sink,
)
from tasks.notifications.settings import NotificationSettings, SmtpSettings
from tasks.notifications.ssrf import ALLOWED_NETWORKS_SETTING as ALLOWED_NETWORKS_ENV


def test_dev_admits_loopback_webhooks_and_says_which_setting() -> None:
    env: dict[str, str] = {}
    note = allow_loopback_webhooks(Settings(), env)
    assert env[ALLOWED_NETWORKS_ENV] == '["127.0.0.0/8", "::1/128"]'
    assert note is not None and ALLOWED_NETWORKS_ENV in note


def test_an_allow_list_of_the_developers_is_kept() -> None:
    env = {ALLOWED_NETWORKS_ENV: "[]"}
    assert allow_loopback_webhooks(Settings(), env) is None
    assert env == {ALLOWED_NETWORKS_ENV: "[]"}
    given = Settings(notifications=NotificationSettings(webhook_allowed_networks=[]))
    assert allow_loopback_webhooks(given, {}) is None


def test_the_mail_sink_stands_in_only_for_an_smtp_server_nobody_set() -> None:
    assert wants_mail_sink(Settings(), {})
    assert not wants_mail_sink(Settings(), {"SWITCHYARD_NOTIFICATIONS__SMTP__HOST": "mail"})
    given = Settings(notifications=NotificationSettings(smtp=SmtpSettings(host="mail")))
    assert not wants_mail_sink(given, {})
    assert smtp_env(2525)["SWITCHYARD_NOTIFICATIONS__SMTP__PORT"] == "2525"
