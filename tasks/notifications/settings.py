"""The notifications domain's settings section: `SWITCHYARD_NOTIFICATIONS__…`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr

from config import Section, Settings, SettingsRefusedError


class SmtpSettings(BaseModel):
    """The SMTP relay that sends notification emails."""

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = None  # trust this CA bundle instead of the system's
    from_address: str = "switchyard@localhost"
    message_id_domain: str = "switchyard.local"
    timeout: float = Field(default=15.0, gt=0)


class NotificationSettings(Section):
    """The notifications domain: channels, retry schedule, SSRF allow-list, recipient controls."""

    section_name: ClassVar[str] = "notifications"

    secret_key: SecretStr | None = None  # seals webhook secrets; a fixed dev key when unset
    smtp: SmtpSettings = SmtpSettings()
    sms_provider: Literal["log", "http"] = "log"
    sms_endpoint: str | None = None
    sms_token: SecretStr | None = None
    retry_schedule: list[float] = Field(
        default=[5, 300, 1_800, 7_200, 18_000, 36_000, 36_000], min_length=1, max_length=50
    )
    webhook_connect_timeout: float = Field(default=5.0, gt=0)
    webhook_total_timeout: float = Field(default=15.0, gt=0)
    webhook_allowed_networks: list[str] = Field(default_factory=list)
    secret_rotation_grace: float = Field(default=86_400.0, ge=0)
    dedup_window_minutes: float = Field(default=60.0, ge=0)
    rate_limit_count: int = Field(default=10, ge=1)
    rate_limit_period: float = Field(default=60.0, gt=0)
    # A rendered template part (subject, text, html) longer than this is refused (422).
    template_max_chars: int = Field(default=262_144, ge=1_024)

    def check(self, settings: Settings) -> None:
        """In prod, webhook secrets are sealed with a key of the operator's, never the dev one."""
        if settings.env == "prod" and self.secret_key is None:
            raise SettingsRefusedError(
                "SWITCHYARD_NOTIFICATIONS__SECRET_KEY must be set in prod: it seals webhook "
                "secrets (generate one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`)"
            )
