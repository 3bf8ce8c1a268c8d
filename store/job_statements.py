"""Prebuilt SQL for the worker's hot path: the claim, the end of an attempt, the release.

Each is one statement (data-modifying CTEs), so a transition costs one round trip, and each is
built once per shape: an execution only binds its parameters (no statement construction or
cache-key walk per job). The claim commits without waiting for its WAL flush (`ASYNC_COMMIT`);
every outcome waits for it (docs/architecture.md, "Writes per job").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    CTE,
    Interval,
    Select,
    String,
    any_,
    bindparam,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.sql.dml import UpdateBase

from store.models import Job, JobAttempt, table_of
from store.states import JobState
from store.transitions import Transition, state_guard

# A write that commits with a job's success: given `moved` (the job's id, if it still held its
# lease), an INSERT/UPDATE that applies only with it. Module-level functions, so the statement
# built with them is cached like the rest.
Completion = Callable[[CTE], UpdateBase]

_CLAIMED_COLUMNS = (
    *("id", "type", "queue", "payload", "priority", "attempts", "max_attempts", "producer"),
    "claim_token",
)
# `SET LOCAL synchronous_commit = off` as an expression: the transaction that evaluates it
# commits without waiting for its WAL to reach the disk. Only for writes a crash may undo
# safely — a claim, a relay's mark-sent — never for an acceptance or an outcome. PostgreSQL
# forgets only a tail of its WAL, so a forgotten claim is one no durable outcome followed.
ASYNC_COMMIT = func.set_config("synchronous_commit", "off", True)


@cache
def claim_statement() -> Select[Any]:
    """The claim: move the claimable jobs among `claim_ids` whose type is `claim_type` to
    `running` under the token `claim_token`, by `claim_worker` from now, in one statement that
    commits asynchronously."""
    jobs = table_of(Job)
    # One statement: one round trip for a whole batch, and atomic on its own, so the worker
    # runs it without BEGIN/COMMIT. The open attempt is the job row's (`claimed_by`,
    # `claimed_at`): its `job_attempts` row is written once, by the finish. Built once: each
    # execution then only binds its parameters.
    ids = bindparam("claim_ids", type_=ARRAY(UUID(as_uuid=True)))
    claimed = (
        update(jobs)
        .where(
            jobs.c.id == any_(ids),
            # A message only moves jobs of the type its task runs: a forged or misrouted one
            # (another task's job id) leaves the job to its own task.
            jobs.c.type == bindparam("claim_type", type_=String),
            state_guard(jobs.c.state, Transition.CLAIM),
            jobs.c.run_at <= func.now(),
        )
        .values(
            state=JobState.RUNNING,
            attempts=jobs.c.attempts + 1,
            lease_until=func.now() + bindparam("claim_lease", type_=Interval),
            started_at=func.coalesce(jobs.c.started_at, func.now()),
            updated_at=func.now(),
            claim_token=bindparam("claim_token", type_=UUID(as_uuid=True)),
            claimed_by=bindparam("claim_worker", type_=String),
            claimed_at=func.now(),
        )
        .returning(*(jobs.c[name] for name in _CLAIMED_COLUMNS))
        .cte("claimed")
    )
    # The claim runs in autocommit: evaluating ASYNC_COMMIT with each claimed row sets it for
    # the statement's own transaction, at no round trip of its own (no row claimed, no write).
    return select(claimed, ASYNC_COMMIT.label("async_commit"))


@cache
def finish_statement(
    transition: Transition,
    columns: tuple[str, ...],
    now: tuple[str, ...],
    writes: tuple[Completion, ...] = (),
) -> Select[Any]:
    """End an attempt by `transition`: set `columns` (bound) and `now` (now()) on the job; write
    the attempt's row; apply the handler's `writes` — all only if the claim `finish_token` still
    holds the job (a claim PostgreSQL forgot may have left its attempt number to a newer one)."""
    jobs, attempts = table_of(Job), table_of(JobAttempt)
    # One round trip: the guarded UPDATE of the job and the insert of its ended attempt's row.
    values: dict[str, Any] = {c: bindparam(f"set_{c}", type_=jobs.c[c].type) for c in columns}
    values.update({c: func.now() for c in now})
    error = bindparam("finish_error", type_=jobs.c.error.type)
    moved = (
        update(jobs)
        .where(
            jobs.c.id == bindparam("finish_id"),
            state_guard(jobs.c.state, transition),
            jobs.c.claim_token == bindparam("finish_token", type_=UUID(as_uuid=True)),
        )
        .values(lease_until=null(), error=error, updated_at=func.now(), **values)
        .returning(jobs.c.id, jobs.c.attempts, jobs.c.claimed_by, jobs.c.claimed_at)
        .cte("moved")
    )
    ended = insert(attempts).from_select(
        ["job_id", "number", "worker", "started_at", "finished_at", "outcome", "error"],
        select(
            moved.c.id,
            moved.c.attempts,
            moved.c.claimed_by,
            moved.c.claimed_at,
            func.now(),
            bindparam("finish_outcome", type_=String),
            bindparam("finish_error", type_=attempts.c.error.type),
        ),
    )
    statement = select(moved.c.id).add_cte(ended.cte("ended"))
    for n, write in enumerate(writes):
        statement = statement.add_cte(write(moved).cte(f"write_{n}"))
    return statement
