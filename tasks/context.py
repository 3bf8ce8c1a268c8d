"""What a handler gets besides its payload: the claimed job and its ways to the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from config import Settings
from store.job_statements import Completion
from store.jobs import ClaimedJob


@dataclass
class JobContext:
    """What a handler gets besides its payload: the claimed job and ways to the ledger.

    - `autocommit` is the batch's own connection, each statement committing on its own: for
      reads, and for one-statement writes that must stand even if the job fails.
    - `session` is the job's transaction, begun on first use; it commits with `succeeded`.
    - `on_success` adds writes to the very statement that records `succeeded`: they apply only
      if the job still holds its lease, and a handler that needs nothing else ends in one round
      trip with no transaction held open while it works.

    `batch` holds every job of the batch this one came in (itself included) and `memo`
    is shared by their handlers, so one job may load, in one query, what all of them need.
    """

    job: ClaimedJob
    settings: Settings
    log: logging.Logger | Any
    autocommit: Session
    begin: Callable[[], Session]
    batch: Sequence[ClaimedJob] = ()
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
