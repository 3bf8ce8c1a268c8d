"""Calling the intake and reading the ledger from tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, text

from config import Settings
from devstack.processes import wait_until
from store.db import transaction
from store.models import Job, JobAttempt
from tasks.enqueue import enqueue

TERMINAL = {"succeeded", "dead", "cancelled"}


def auth(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}


def submit(api: str, token: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """POST /v1/jobs."""
    return httpx.post(f"{api}/v1/jobs", json=body, headers={**auth(token), **headers}, timeout=10)


def get_job(api: str, token: str, job_id: str) -> dict[str, Any]:
    """GET /v1/jobs/{id}, which must succeed."""
    resp = httpx.get(f"{api}/v1/jobs/{job_id}", headers=auth(token), timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def wait_state(
    api: str, token: str, job_id: str, states: set[str] = TERMINAL, timeout: float = 30
) -> dict[str, Any]:
    """Poll the job until its state is one of `states`."""

    def reached() -> dict[str, Any] | None:
        job = get_job(api, token, job_id)
        return job if job["state"] in states else None

    return wait_until(reached, timeout=timeout, what=f"job {job_id} to reach {states}")


def count_rows(settings: Settings, table: str) -> int:
    """Rows in one of the run's own tables."""
    with transaction(settings) as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def job_state(settings: Settings, job_id: uuid.UUID) -> str:
    """The job's state in the ledger."""
    with transaction(settings) as session:
        return str(session.execute(select(Job.state).where(Job.id == job_id)).scalar_one())


def submit_all(settings: Settings, jobs: list[tuple[str, dict[str, Any]]]) -> list[uuid.UUID]:
    """Enqueue the jobs in one transaction, so the relay finds them due together."""
    with transaction(settings) as session:
        return [
            enqueue(session, kind, payload, producer="tests", settings=settings).job_id
            for kind, payload in jobs
        ]


def finished(settings: Settings, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, list[str]]]:
    """Each job's state and its attempts' outcomes, once all are terminal."""

    def read() -> dict[uuid.UUID, tuple[str, list[str]]] | None:
        with transaction(settings) as s:
            states = dict(s.execute(select(Job.id, Job.state).where(Job.id.in_(ids))).all())
            if set(states.values()) - TERMINAL:
                return None
            rows = s.execute(
                select(JobAttempt.job_id, JobAttempt.outcome)
                .where(JobAttempt.job_id.in_(ids))
                .order_by(JobAttempt.job_id, JobAttempt.number)
            ).all()
        outcomes: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
        for job_id, outcome in rows:
            outcomes[job_id].append(outcome)
        return {i: (states[i], outcomes[i]) for i in ids}

    return wait_until(read, timeout=60, what="every job to finish")
