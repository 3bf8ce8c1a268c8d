"""Switchyard settings: one pydantic-settings tree, read from ``SWITCHYARD_*`` variables."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from errors import SwitchyardError

Environment = Literal["dev", "test", "prod"]
# The core's own queue (beat's work, diagnostic jobs); each domain declares its own queues.
MAINTENANCE_QUEUE = "maintenance"
# Redis keeps a list per priority step of each queue ("name:step").
PRIORITY_STEPS = tuple(range(10))
PRIORITY_SEP = ":"


class SettingsRefusedError(SwitchyardError, ValueError):
    """Settings that validate one by one but cannot run together (a process refuses to start)."""

    code = "settings_refused"


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


# The most attempts any job may be given: by its policy, by its producer, or by a domain's rule.
MAX_ATTEMPTS = 100


class JobPolicy(BaseModel):
    """How one job type is queued, retried and leased."""

    queue: str | None = None
    max_attempts: int = Field(default=5, ge=1, le=MAX_ATTEMPTS)
    backoff_base: float = Field(default=2.0, ge=0)
    backoff_cap: float = Field(default=600.0, ge=0)
    jitter: bool = True
    lease_timeout: int = Field(default=300, ge=1)
    # How many due jobs of this type one broker message may carry (one claim, one task run);
    # unset means the job type's own choice (`JobSpec.batch_size`).
    batch_size: int | None = Field(default=None, ge=1, le=500)
    # Whether a batch's outcomes commit together (workers.group_commit); unset means the job
    # type's own choice (`JobSpec.group_commit`). Turning it on for a type with an external
    # effect repeats that effect for the batch-mates of a job whose worker dies.
    group_commit: bool | None = None


class RelaySettings(BaseModel):
    """The outbox relay."""

    batch_size: int = Field(default=500, ge=1, le=10_000)
    sweep_interval: float = Field(default=5.0, gt=0)
    # While a queue's workers are behind, how long its new rows wait to share messages
    # (0: never wait). Never added while they keep up.
    linger: float = Field(default=0.02, ge=0, le=1)


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
    # Task events (each job attempt's received/started/outcome) feed Flower; they cost a Redis
    # publish per attempt (workers/task_events.py), so a deployment without Flower may turn
    # them off.
    task_events: bool = True


class FlowerSettings(BaseModel):
    """Flower, the operators' live view of workers and tasks."""

    model_config = ConfigDict(hide_input_in_errors=True)  # the input holds the password

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


class Section(BaseModel):
    """A domain's own settings: `SWITCHYARD_<NAME>__…`, read with `settings.section(Model)`."""

    model_config = ConfigDict(hide_input_in_errors=True)  # sections hold secrets
    section_name: ClassVar[str]

    def check(self, settings: Settings) -> None:
        """Refuse the settings around this section (SettingsRefusedError saying why)."""


SectionT = TypeVar("SectionT", bound=Section)


class Settings(BaseSettings):
    """The whole configuration; nested values use ``__`` (``SWITCHYARD_DATABASE__URL``).

    The core's sections are fields; a domain's section is passed by name
    (`Settings(notifications=NotificationSettings(...))`) or read from the environment the
    first time `section()` asks for it.
    """

    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_",
        env_nested_delimiter="__",
        extra="allow",
        hide_input_in_errors=True,  # a validation error must not print a password
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
    # Domain packages to load beside the built-in ones (a plugin, or a test's toy domain).
    extra_domains: list[str] = Field(default_factory=list)

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

    @property
    def resolved_log_format(self) -> Literal["console", "json"]:
        """Console logs in dev, JSON elsewhere, unless set explicitly."""
        if self.log_format:
            return self.log_format
        return "console" if self.env == "dev" else "json"

    def policy_for(self, job_type: str) -> JobPolicy:
        """The policy of one job type: its override, else the default."""
        return self.job_policies.get(job_type, self.default_policy)

    def section(self, kind: type[SectionT]) -> SectionT:
        """A domain's settings section: as passed, else from `SWITCHYARD_<NAME>…` variables."""
        extra = self.__pydantic_extra__
        assert extra is not None  # extra="allow" always keeps a dict
        value = extra.get(kind.section_name)
        if isinstance(value, kind):
            return value
        if value is None:
            value = getattr(_env_reader(kind)(), kind.section_name)
        else:
            value = kind.model_validate(value)
        extra[kind.section_name] = value  # validated once; copies of these settings share it
        return value


class _SectionReader(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
    )


@cache
def _env_reader(kind: type[Section]) -> type[BaseSettings]:
    """A settings class with one field, `kind`'s section, read the way the core's are."""
    field: Any = (kind, Field(default_factory=kind))
    reader: type[BaseSettings] = create_model(
        f"{kind.__name__}FromEnv", __base__=_SectionReader, **{kind.section_name: field}
    )
    return reader


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
