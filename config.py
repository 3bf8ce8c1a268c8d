"""Switchyard settings: one pydantic-settings tree, read from ``SWITCHYARD_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["dev", "test", "prod"]
# The broker's queues, one per domain; Redis keeps a list per priority step ("name:step").
QUEUES = ("iot", "notifications", "payments", "maintenance")
PRIORITY_STEPS = tuple(range(10))
PRIORITY_SEP = ":"


class DatabaseSettings(BaseModel):
    """Where the job ledger lives."""

    url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/switchyard"
    pool_size: int = Field(default=10, ge=1)
    statement_timeout_ms: int = Field(default=30_000, ge=0)


class RedisSettings(BaseModel):
    """The Celery broker."""

    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = ""
    visibility_timeout: int = Field(default=3_600, ge=10)
    unacked_restore_interval: int = Field(default=10, ge=1)


class ApiSettings(BaseModel):
    """The HTTP intake."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1_024)


class JobPolicy(BaseModel):
    """How one job type is queued, retried and leased."""

    queue: str | None = None
    max_attempts: int = Field(default=5, ge=1, le=100)
    backoff_base: float = Field(default=2.0, ge=0)
    backoff_cap: float = Field(default=600.0, ge=0)
    jitter: bool = True
    lease_timeout: int = Field(default=300, ge=1)
    # How many due jobs of this type one broker message may carry (one claim, one task run);
    # unset means the job type's own choice (`JobSpec.batch_size`).
    batch_size: int | None = Field(default=None, ge=1, le=500)


class RelaySettings(BaseModel):
    """The outbox relay."""

    batch_size: int = Field(default=500, ge=1, le=10_000)
    sweep_interval: float = Field(default=5.0, gt=0)


class ReaperSettings(BaseModel):
    """The stuck-job reaper."""

    interval: float = Field(default=30.0, gt=0)
    quarantine_after: int = Field(default=3, ge=1)
    republish_queued_after: float = Field(default=3_600.0, gt=0)


class RetentionSettings(BaseModel):
    """How long finished work is kept."""

    finished_jobs_days: int = Field(default=30, ge=2)
    schedule_fires_days: int = Field(default=7, ge=1)
    interval: float = Field(default=3_600.0, gt=0)


class WorkerSettings(BaseModel):
    """Celery worker defaults."""

    concurrency: int = Field(default=2, ge=1)
    prefetch_multiplier: int = Field(default=4, ge=1)
    # Task events (sent/received/started/succeeded) feed Flower; each costs a Redis publish
    # per task (docs/performance.md), so a deployment without Flower may turn them off.
    task_events: bool = True


class FlowerSettings(BaseModel):
    """Flower, the operators' live view of workers and tasks."""

    host: str = "127.0.0.1"
    port: int = Field(default=5555, ge=0, le=65535)
    user: str | None = None
    password: SecretStr | None = None
    persistent: bool = True
    url_prefix: str = ""

    @model_validator(mode="after")
    def _both_or_neither(self) -> FlowerSettings:
        if (self.user is None) != (self.password is None):
            raise ValueError("flower.user and flower.password go together")
        return self


class MetricsSettings(BaseModel):
    """Prometheus metrics: `/metrics` on the API, and an optional worker-side exporter."""

    multiproc_dir: str | None = None
    worker_port: int | None = Field(default=None, ge=0, le=65535)


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


class NotificationSettings(BaseModel):
    """The notifications domain: channels, retry schedule, SSRF allow-list, recipient controls."""

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


class Settings(BaseSettings):
    """The whole configuration; nested values use ``__`` (``SWITCHYARD_DATABASE__URL``)."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_", env_nested_delimiter="__", extra="ignore"
    )

    env: Environment = "dev"
    log_format: Literal["console", "json"] | None = None
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    api: ApiSettings = ApiSettings()
    relay: RelaySettings = RelaySettings()
    reaper: ReaperSettings = ReaperSettings()
    retention: RetentionSettings = RetentionSettings()
    worker: WorkerSettings = WorkerSettings()
    default_policy: JobPolicy = JobPolicy()
    job_policies: dict[str, JobPolicy] = Field(default_factory=dict)
    data_dir: str = ".switchyard"
    flower: FlowerSettings = FlowerSettings()
    metrics: MetricsSettings = MetricsSettings()
    notifications: NotificationSettings = NotificationSettings()

    @model_validator(mode="after")
    def _lease_fits_visibility(self) -> Settings:
        longest = max(
            [self.default_policy.lease_timeout]
            + [p.lease_timeout for p in self.job_policies.values()]
        )
        if longest >= self.redis.visibility_timeout:
            raise ValueError(
                f"redis.visibility_timeout ({self.redis.visibility_timeout}s) must exceed the "
                f"longest lease_timeout ({longest}s), or Redis redelivers running jobs"
            )
        return self

    @model_validator(mode="after")
    def _flower_credentials_outside_dev(self) -> Settings:
        # Flower can replay and revoke tasks: never serve it unauthenticated beyond a laptop.
        password = self.flower.password
        if self.env != "dev" and password is not None and len(password.get_secret_value()) < 8:
            raise ValueError("flower.password must be at least 8 characters outside dev")
        return self

    def flower_basic_auth(self) -> str | None:
        """`user:password` for Flower; None is allowed only in dev (ValueError elsewhere)."""
        if self.flower.user is None or self.flower.password is None:
            if self.env != "dev":
                raise ValueError(
                    "Flower needs SWITCHYARD_FLOWER__USER and SWITCHYARD_FLOWER__PASSWORD "
                    f"outside dev (env={self.env})"
                )
            return None
        return f"{self.flower.user}:{self.flower.password.get_secret_value()}"

    @model_validator(mode="after")
    def _policy_queues_exist(self) -> Settings:
        policies = {"default_policy": self.default_policy, **self.job_policies}
        for name, policy in policies.items():
            if policy.queue is not None and policy.queue not in QUEUES:
                raise ValueError(
                    f"{name}.queue {policy.queue!r} is not one of the queues {', '.join(QUEUES)}"
                )
        return self

    @property
    def resolved_log_format(self) -> Literal["console", "json"]:
        """Console logs in dev, JSON elsewhere, unless set explicitly."""
        if self.log_format:
            return self.log_format
        return "console" if self.env == "dev" else "json"

    def policy_for(self, job_type: str) -> JobPolicy:
        """The policy of one job type: its override, else the default."""
        return self.job_policies.get(job_type, self.default_policy)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
