"""Job types: what each accepts (schema, queue) and, for workers, what runs it (handler)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from config import Settings
from errors import SwitchyardError
from store.job_statements import Completion
from store.jobs import ClaimedJob

DOMAINS = ("tasks.system", "tasks.notifications")


@dataclass(frozen=True)
class JobSpec:
    """The public contract of a job type."""

    name: str
    payload: type[BaseModel]
    queue: str
    description: str
    # The most jobs of this type one delivery may carry. A delivery claims them in one
    # statement and runs them one after another in one worker process, so only short
    # handlers should batch; anything that may run for long keeps 1.
    batch_size: int = 1


@dataclass
class JobContext:
    """What a handler gets besides its payload: the claimed job and ways to the ledger.

    - `autocommit` is the delivery's own connection, each statement committing on its own: for
      reads, and for one-statement writes that must stand even if the job fails.
    - `session` is the job's transaction, begun on first use; it commits with `succeeded`.
    - `on_success` adds writes to the very statement that records `succeeded`: they apply only
      if the job still holds its lease, and a handler that needs nothing else ends in one round
      trip with no transaction held open while it works.

    `delivery` holds every job of the delivery this one came in (itself included) and `memo`
    is shared by their handlers, so one job may load, in one query, what all of them need.
    """

    job: ClaimedJob
    settings: Settings
    log: logging.Logger | Any
    autocommit: Session
    begin: Callable[[], Session]
    delivery: Sequence[ClaimedJob] = ()
    memo: dict[str, Any] = field(default_factory=dict)
    writes: tuple[Completion, ...] = ()
    write_params: dict[str, Any] = field(default_factory=dict)
    opened: Session | None = None

    @property
    def session(self) -> Session:
        """The job's transaction (begun now if this is its first use)."""
        if self.opened is None:
            self.opened = self.begin()
        return self.opened

    def on_success(self, writes: Sequence[Completion], params: dict[str, Any]) -> None:
        """Commit `writes` (bound to `params`) in the statement that records `succeeded`.

        Each write is a module-level function (the statement is built once per combination)
        whose bound parameters carry a prefix of its own (`d_…`), apart from the finish's.
        """
        self.writes += tuple(writes)
        self.write_params.update(params)


Handler = Callable[[JobContext, Any], Any]

_specs: dict[str, JobSpec] = {}
_handlers: dict[str, Handler] = {}


class UnknownJobTypeError(SwitchyardError):
    """No job type of that name is registered."""

    code = "unknown_job_type"


def register(spec: JobSpec) -> JobSpec:
    """Add a job type; its name must be new."""
    if spec.name in _specs:
        raise ValueError(f"job type {spec.name!r} registered twice")
    _specs[spec.name] = spec
    return spec


def handles(name: str) -> Callable[[Handler], Handler]:
    """Decorator binding a handler function to a registered job type."""

    def bind(fn: Handler) -> Handler:
        if name in _handlers:
            raise ValueError(f"job type {name!r} has two handlers")
        _handlers[name] = fn
        return fn

    return bind


def load_specs() -> dict[str, JobSpec]:
    """Import every domain's schemas and return all job types by name."""
    _import_schemas()
    return dict(_specs)


@cache
def _import_schemas() -> None:
    for domain in DOMAINS:
        importlib.import_module(f"{domain}.schemas")


def load_handlers() -> dict[str, Handler]:
    """Import every domain's jobs and return all handlers by job type."""
    load_specs()
    for domain in DOMAINS:
        importlib.import_module(f"{domain}.jobs")
    missing = set(_specs) - set(_handlers)
    if missing:
        raise RuntimeError(f"job types without a handler: {', '.join(sorted(missing))}")
    return dict(_handlers)


def batch_size_for(settings: Settings, name: str) -> int:
    """How many jobs of type `name` one delivery may carry: the policy's, else the type's
    (1 for a type this process does not know: a relay older than the job's producer)."""
    _import_schemas()
    spec = _specs.get(name)
    return settings.policy_for(name).batch_size or (spec.batch_size if spec else 1)


def get_spec(name: str) -> JobSpec:
    """The job type called `name`."""
    _import_schemas()
    spec = _specs.get(name)
    if spec is None:
        raise UnknownJobTypeError(f"unknown job type {name!r}")
    return spec
