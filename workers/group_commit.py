"""Group commit: the outcomes of one batch's jobs in one transaction, one WAL flush for all.

For a job type that declares `group_commit` (see `JobSpec`), every job of a batch records its
outcome (succeeded, or retrying/dead) in one transaction on a connection of the batch's own,
and a handler that writes (`ctx.session`) does so in a SAVEPOINT of it, with its outcome. A
job whose handler fails rolls back to its savepoint alone, and a finish whose guard finds the
job moved (lease lost) writes nothing; the batch-mates commit with one COMMIT at the batch's
end. The price: a worker that dies before that COMMIT loses every outcome of the batch, and
the reaper runs those jobs again once their lease expires. A job is run again after such a
crash whatever the grouping; grouping widens it to the batch-mates, which is why only a type
whose effects all live in the ledger (or are harmless to repeat) declares it, and one with an
external effect (an HTTP call, a provider charge) keeps its per-job commit.

What is reported about a job — its task events for Flower, its log line, its metrics — waits
for the COMMIT, so nothing shows a job as finished before the ledger says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings
from logs import get_logger
from store.db import new_session
from store.jobs import ClaimedJob

log = get_logger("switchyard.worker")
Report = Callable[[], None]


class GroupCommit:
    """One batch's transaction, begun by its first job, committed by `commit`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: Session | None = None
        self._reports: list[tuple[ClaimedJob, Report]] = []

    @property
    def session(self) -> Session:
        """The group's transaction (begun on first use), for an outcome that is one statement:
        a guarded finish that finds its job moved writes nothing, so it needs no savepoint."""
        if self._session is None:
            self._session = new_session(self._settings)
            self._session.begin()
        return self._session

    @contextmanager
    def job(self) -> Iterator[Session]:
        """A savepoint for one job's writes (its handler's `ctx.session`): released on
        success, rolled back (that job's writes only) on any error, which propagates."""
        with self.session.begin_nested():
            yield self.session

    def after_commit(self, job: ClaimedJob, report: Report) -> None:
        """Run `report` once the job's outcome has committed (never, if it does not)."""
        self._reports.append((job, report))

    @property
    def broken(self) -> bool:
        """True if the transaction's connection dropped: nothing more can commit in it."""
        if self._session is None:
            return False
        try:
            return self._session.connection().invalidated
        except SQLAlchemyError:
            return True

    def commit(self) -> list[ClaimedJob]:
        """Commit what the batch's jobs recorded, then report them; returns the jobs whose
        outcomes did not commit (left `running` under their lease, for the reaper)."""
        session, self._session = self._session, None
        reports, self._reports = self._reports, []
        if session is None:
            return []
        try:
            session.commit()
        except SQLAlchemyError as exc:  # its connection dropped, or an earlier error doomed it
            lost = [job for job, _ in reports]
            log.warning("group_commit_failed", job_ids=[str(j.id) for j in lost], error=str(exc))
            return lost
        finally:
            _close(session)
        for _, report in reports:
            report()
        return []

    def close(self) -> None:
        """Roll back whatever was not committed (a batch that ended in an exception)."""
        if self._session is not None:
            _close(self._session)
            self._session = None
            self._reports = []


def _close(session: Session) -> None:
    """Close the group's session; its ROLLBACK on a dead connection must not replace the
    error (or the hand-back) that is on its way, so the connection is dropped instead."""
    try:
        session.close()
    except SQLAlchemyError:
        session.invalidate()
