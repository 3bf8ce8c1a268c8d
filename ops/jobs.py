"""`switchyard jobs`: list, show, retry, cancel and bulk-replay jobs straight from the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from config import get_settings
from ops.output import emit_json, errors, fail, table
from store.states import JobState

jobs_app = typer.Typer(
    help="Inspect and repair jobs in the ledger (every producer's; no API key needed).",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="Only this job type.")]
ProducerOpt = Annotated[str | None, typer.Option(help="Only this producer's jobs.")]
PAGE = 500
STATES = tuple(JobState)


def job_dict(job: Any, attempts: list[Any] | None = None) -> dict[str, Any]:
    """A ledger row as plain JSON-ready data."""
    data = {
        name: getattr(job, name)
        for name in (
            "id", "type", "queue", "state", "priority", "payload", "result", "error", "attempts",
            "max_attempts", "lost_count", "producer", "run_at", "created_at", "updated_at",
            "started_at", "finished_at",
        )
    }  # fmt: skip
    data["id"] = str(job.id)
    if attempts is not None:
        data["history"] = [
            {
                "number": a.number,
                "worker": a.worker,
                "started_at": a.started_at,
                "finished_at": a.finished_at,
                "outcome": a.outcome,
                "error": a.error,
            }
            for a in attempts
        ]
    return data


def _parse_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        fail(f"{value!r} is not a job id")
        raise typer.Exit(2) from exc


def iter_jobs(
    *, states: list[str], job_type: str | None, producer: str | None, limit: int | None
) -> Iterator[Any]:
    """Matching jobs newest first, page by page (each page its own short transaction)."""
    from store.db import transaction
    from store.queries import list_jobs

    before: uuid.UUID | None = None
    seen = 0
    while limit is None or seen < limit:
        size = PAGE if limit is None else min(PAGE, limit - seen)
        with transaction() as session:
            page = list_jobs(
                session,
                producer=producer,
                states=states,
                job_type=job_type,
                before=before,
                limit=size,
            )
        yield from page
        seen += len(page)
        if len(page) < size:
            return
        before = page[-1].id


@jobs_app.command("list")
def list_cmd(
    state: Annotated[
        list[str] | None, typer.Option(help=f"Repeat to match several: {', '.join(STATES)}.")
    ] = None,
    job_type: TypeOpt = None,
    producer: ProducerOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Jobs newest first, filtered by state, type and producer."""
    unknown = set(state or []) - set(STATES)
    if unknown:
        fail(f"unknown state {', '.join(sorted(unknown))}; states are {', '.join(STATES)}")
        raise typer.Exit(2)
    rows = list(iter_jobs(states=state or [], job_type=job_type, producer=producer, limit=limit))
    if as_json:
        emit_json([job_dict(j) for j in rows])
        return
    table(
        f"{len(rows)} job(s)",
        ["id", "type", "state", "attempts", "producer", "created", "error"],
        (
            (j.id, j.type, j.state, f"{j.attempts}/{j.max_attempts}", j.producer, j.created_at,
             (j.error or {}).get("message"))
            for j in rows
        ),
    )  # fmt: skip


@jobs_app.command("show")
def show_cmd(
    job_id: Annotated[str, typer.Argument(help="The job's id.")], as_json: JsonOpt = False
) -> None:
    """One job: state, payload, result, error and every attempt."""
    jid = _parse_id(job_id)
    job, history = _load_or_exit(jid)
    data = job_dict(job, history)
    if as_json:
        emit_json(data)
        return
    table(f"job {jid}", ["field", "value"], ((k, v) for k, v in data.items() if k != "history"))
    table(
        "attempts",
        ["#", "worker", "started", "finished", "outcome", "error"],
        (
            (a["number"], a["worker"], a["started_at"], a["finished_at"], a["outcome"],
             (a["error"] or {}).get("message"))
            for a in data["history"]
        ),
    )  # fmt: skip


def _load_or_exit(jid: uuid.UUID) -> tuple[Any, list[Any]]:
    """The job and its attempts, or exit 1 saying it does not exist."""
    from store.db import transaction
    from store.queries import attempts_of, find_job

    with transaction() as session:
        job = find_job(session, jid, producer=None)
        history = attempts_of(session, job) if job else []
    if job is None:
        fail(f"no job {jid}")
        raise typer.Exit(1)
    return job, history


def _replay_one(jid: uuid.UUID, job_type: str) -> bool:
    from store.db import transaction
    from store.job_actions import replay_job

    budget = get_settings().policy_for(job_type).max_attempts
    with transaction() as session:
        return replay_job(session, jid, extra_attempts=budget)


@jobs_app.command("retry")
def retry_cmd(
    job_id: Annotated[str, typer.Argument(help="A dead job's id.")], as_json: JsonOpt = False
) -> None:
    """Replay one dead job with a fresh budget of attempts."""
    jid = _parse_id(job_id)
    job, _ = _load_or_exit(jid)
    if not _replay_one(jid, job.type):
        fail(f"job {jid} is {job.state}, not dead")
        raise typer.Exit(1)
    if as_json:
        emit_json({"id": str(jid), "state": JobState.RETRYING})
    else:
        typer.echo(f"job {jid} replayed: retrying now")


@jobs_app.command("cancel")
def cancel_cmd(
    job_id: Annotated[str, typer.Argument(help="The job's id.")], as_json: JsonOpt = False
) -> None:
    """Cancel a job that has not started running."""
    from store.db import transaction
    from store.job_actions import cancel_job

    jid = _parse_id(job_id)
    with transaction() as session:
        cancelled = cancel_job(session, jid)
    if not cancelled:
        fail(f"job {jid} does not exist, is running or has finished")
        raise typer.Exit(1)
    if as_json:
        emit_json({"id": str(jid), "state": JobState.CANCELLED})
    else:
        typer.echo(f"job {jid} cancelled")


@jobs_app.command("replay")
def replay_cmd(
    job_type: TypeOpt = None,
    producer: ProducerOpt = None,
    error_type: Annotated[
        str | None, typer.Option(help="Only jobs whose error has this type, e.g. worker_lost.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would run; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay every dead job matching the filters (quarantined ones too), with a progress bar."""
    matching = [
        j
        for j in iter_jobs(states=[JobState.DEAD], job_type=job_type, producer=producer, limit=None)
        if error_type is None or (j.error or {}).get("type") == error_type
    ][:limit]
    if dry_run:
        if as_json:
            emit_json(
                {"dry_run": True, "count": len(matching), "jobs": [job_dict(j) for j in matching]}
            )
            return
        table(
            f"{len(matching)} dead job(s) would be replayed (dry run)",
            ["id", "type", "producer", "finished", "error"],
            ((j.id, j.type, j.producer, j.finished_at, (j.error or {}).get("message"))
             for j in matching),
        )  # fmt: skip
        return
    replayed: list[str] = []
    skipped: list[str] = []
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=as_json) as progress:
        for job in progress.track(matching, total=len(matching)):
            (replayed if _replay_one(job.id, job.type) else skipped).append(str(job.id))
    if as_json:
        emit_json(
            {"dry_run": False, "count": len(replayed), "replayed": replayed, "skipped": skipped}
        )
    else:
        typer.echo(f"replayed {len(replayed)} dead job(s); {len(skipped)} had moved on meanwhile")
