"""The domains the core loops over, and what each declares: job types, queues, scopes, routes,
schedule, settings, tables.

Adding a domain is a package whose `__init__` holds `DOMAIN = Domain(...)`, one entry in
`BUILT_IN` (or `settings.extra_domains` for a plugin), and its migration.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import MetaData

from config import MAINTENANCE_QUEUE, Section, Settings, SettingsRefusedError, get_settings
from errors import InvalidFieldError
from store.models import LEDGER_TABLES
from store.models import Base as LedgerBase
from tasks.context import Handler

if TYPE_CHECKING:  # prometheus-client is imported only once multiprocess mode is chosen
    from prometheus_client import Metric
    from sqlalchemy.orm import Session

# The list of built-in domains: each module's `DOMAIN`.
BUILT_IN = ("tasks.system", "tasks.notifications", "tasks.payments", "tasks.iot")
CORE_SCOPES = frozenset({"jobs:write", "jobs:read", "metrics:read", "admin"})


class NoArguments(BaseModel):
    """The payload of a job that takes none (beat's upkeep jobs): `{}` and nothing else."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class JobSpec:
    """The public contract of a job type."""

    name: str
    payload: type[BaseModel]
    queue: str
    description: str
    # The most jobs of this type one batch (one broker message) may carry. A batch is claimed
    # in one statement and its jobs run one after another in one worker process, so only short
    # handlers should batch; anything that may run for long keeps 1.
    batch_size: int = 1
    # Whether a batch's outcomes commit together (one WAL flush) rather than one by one
    # (workers.group_commit). A worker dying before that commit runs every job of the batch
    # again, so only a type whose effects all live in the ledger (or are harmless to repeat)
    # declares it; one with an external effect keeps the default, a commit per job.
    group_commit: bool = False


@dataclass(frozen=True)
class Every:
    """A beat entry: enqueue a job of `job_type` every `seconds`, once per slot across beats."""

    job_type: str
    seconds: float | Callable[[Settings], float]
    payload: Mapping[str, Any] = field(default_factory=dict)

    def interval(self, settings: Settings) -> float:
        """The period in seconds (some come from settings)."""
        return self.seconds(settings) if callable(self.seconds) else self.seconds


CallbackColumns = Callable[..., dict[str, str]]


@dataclass(frozen=True)
class Domain:
    """Everything the core needs to know of one domain, declared once in its package."""

    name: str
    job_types: tuple[JobSpec, ...] = ()
    queues: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    # Modules imported only by the processes that need them: workers bind handlers
    # (`@handles`), the API mounts each routes module's `router`.
    handlers: str | None = None
    routes: tuple[str, ...] = ()
    schedule: Mapping[str, Every] = field(default_factory=dict)
    settings: type[Section] | None = None
    metadata: MetaData | None = None
    # The domain's tables, emptied between tests (TRUNCATE … CASCADE).
    tables: tuple[str, ...] = ()
    # An Alembic version directory of the domain's own; built-in domains use migrations/.
    migrations: Path | None = None
    # A module whose `collect(session)` yields the domain's gauges, read at each scrape of
    # `/metrics` (imported only by the API).
    metrics: str | None = None
    # The domain that delivers completion callbacks turns a job's callback URL and secret
    # into the job's columns (validated, sealed); at most one domain declares it.
    callback_columns: CallbackColumns | None = None


class UnknownJobTypeError(InvalidFieldError):
    """No job type of that name is declared (the request's `type`)."""

    code = "unknown_job_type"

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown job type {name!r}", field="type")

    @property
    def detail(self) -> str:
        """The message alone: it names the field already."""
        return str(self)


_handlers: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    """Decorator binding a handler function to a declared job type."""

    def bind(fn: Handler) -> Handler:
        if name in _handlers:
            raise ValueError(f"job type {name!r} has two handlers")
        _handlers[name] = fn
        return fn

    return bind


@dataclass(frozen=True)
class Registry:
    """The loaded domains, and the core's view of them."""

    domains: tuple[Domain, ...]
    specs: Mapping[str, JobSpec]

    @property
    def queues(self) -> tuple[str, ...]:
        """Every broker queue: the core's, then each domain's."""
        return tuple(
            dict.fromkeys([MAINTENANCE_QUEUE, *(q for d in self.domains for q in d.queues)])
        )

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope an API key may carry."""
        return CORE_SCOPES | {s for d in self.domains for s in d.scopes}

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table a test may write: the domains' first (they point at the ledger's)."""
        return (*(t for d in self.domains for t in d.tables), *LEDGER_TABLES)

    @property
    def metadata(self) -> list[MetaData]:
        """The ledger's ORM metadata and each domain's (Alembic's target)."""
        found = [LedgerBase.metadata, *(d.metadata for d in self.domains if d.metadata)]
        return list({id(m): m for m in found}.values())

    @property
    def migrations(self) -> list[Path]:
        """Alembic version directories of domains that keep their own."""
        return [d.migrations for d in self.domains if d.migrations is not None]

    def spec(self, name: str) -> JobSpec:
        """The job type called `name`."""
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownJobTypeError(name)
        return spec

    @property
    def callback_columns(self) -> CallbackColumns | None:
        """How a job's callback URL and secret become its columns (None: no domain sends them)."""
        return next((d.callback_columns for d in self.domains if d.callback_columns), None)

    def batch_size(self, settings: Settings, name: str) -> int:
        """How many jobs of type `name` one batch may carry: the policy's, else the type's
        (1 for a type this process does not know: a relay older than the job's producer)."""
        spec = self.specs.get(name)
        return settings.policy_for(name).batch_size or (spec.batch_size if spec else 1)

    def schedule(self) -> dict[str, Every]:
        """Every domain's beat entries by name."""
        return {name: every for d in self.domains for name, every in d.schedule.items()}

    def handlers(self) -> dict[str, Handler]:
        """Import every domain's handlers and return them by job type."""
        for domain in self.domains:
            if domain.handlers:
                importlib.import_module(domain.handlers)
        missing = set(self.specs) - set(_handlers)
        if missing:
            raise RuntimeError(f"job types without a handler: {', '.join(sorted(missing))}")
        return {name: _handlers[name] for name in self.specs}

    def routers(self) -> list[Any]:
        """Import every domain's routes and return their FastAPI routers."""
        return [importlib.import_module(m).router for d in self.domains for m in d.routes]

    def gauges(self, session: Session) -> list[Metric]:
        """Every domain's gauges, read now."""
        return [
            family
            for d in self.domains
            if d.metrics
            for family in importlib.import_module(d.metrics).collect(session)
        ]

    def check(self, settings: Settings) -> None:
        """Refuse settings that name an unknown queue or job type, or a bad domain section."""
        policies = {"default_policy": settings.default_policy, **settings.job_policies}
        for name, policy in policies.items():
            if policy.queue is not None and policy.queue not in self.queues:
                raise SettingsRefusedError(
                    f"{name}.queue {policy.queue!r} is not one of the queues "
                    f"{', '.join(self.queues)}"
                )
        for domain in self.domains:
            if domain.settings is not None:
                settings.section(domain.settings).check(settings)


def domains(settings: Settings | None = None) -> Registry:
    """The built-in domains and the settings' extra ones."""
    settings = settings or get_settings()
    return _load((*BUILT_IN, *settings.extra_domains))


@cache
def _load(modules: tuple[str, ...]) -> Registry:
    loaded = tuple(importlib.import_module(m).DOMAIN for m in dict.fromkeys(modules))
    _refuse_clashes(loaded)
    specs = {spec.name: spec for d in loaded for spec in d.job_types}
    return Registry(domains=loaded, specs=specs)


def _refuse_clashes(loaded: Iterable[Domain]) -> None:
    names: set[str] = set()
    types: set[str] = set()
    seen: list[Domain] = []
    for domain in loaded:
        if domain.name in names:
            raise ValueError(f"domain {domain.name!r} declared twice")
        names.add(domain.name)
        own_queues = {MAINTENANCE_QUEUE, *domain.queues}
        for spec in domain.job_types:
            if spec.name in types:
                raise ValueError(f"job type {spec.name!r} declared twice")
            if spec.queue not in own_queues:
                raise ValueError(f"job type {spec.name!r} uses undeclared queue {spec.queue!r}")
            types.add(spec.name)
        if domain.callback_columns and any(d.callback_columns for d in seen):
            raise ValueError(f"domain {domain.name!r}: only one domain may deliver callbacks")
        seen.append(domain)
        for entry, every in domain.schedule.items():
            if every.job_type not in {s.name for s in domain.job_types}:
                raise ValueError(f"schedule {entry!r} names unknown job type {every.job_type!r}")
