"""A toy domain plugged in by settings alone: its route, scope, settings section, table,
schedule entry and job run end to end in real processes, and its follow-up job commits
atomically with the job's result, across a worker killed before the commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from config import JobPolicy, Settings
from devstack.processes import Process, isolated, wait_until
from ops.migrate import upgrade
from store.api_keys import create_key
from store.db import transaction
from store.models import Job, ScheduleFire
from tasks.enqueue import enqueue
from tasks.registry import domains
from tests.support.api import auth, finished
from tests.support.ledger import clean_tables
from tests.support.stack import start_api, start_process, start_worker
from tests.support.toy.models import ToyNote
from tests.support.toy.settings import ToySettings

TOY = "tests.support.toy"


@pytest.fixture(scope="module")
def toy(settings: Settings, logs_dir: Path) -> Iterator[tuple[Settings, str]]:
    """The whole pipeline with the toy domain loaded, on a Redis prefix of its own."""
    policies = {
        **settings.job_policies,
        "toy.record": JobPolicy(lease_timeout=2, backoff_base=0.1, backoff_cap=0.2),
    }
    own = isolated(
        settings, extra_domains=[TOY], job_policies=policies, toy=ToySettings(greeting="ahoy")
    )
    upgrade(own)  # the toy's own migration branch
    api, base = start_api(own, logs_dir, name="toy-api")
    processes: list[Process] = [
        api,
        start_process(own, logs_dir, "relay"),
        start_process(own, logs_dir, "beat"),
        start_worker(own, logs_dir, name="toy-worker"),
    ]
    yield own, base
    for proc in processes:
        proc.stop()
    clean_tables(own)


def _key(settings: Settings, *scopes: str) -> str:
    with transaction(settings) as session:
        _, token = create_key(
            session, name="toy-svc", scopes=list(scopes), known=domains(settings).scopes
        )
    return token


def _notes(settings: Settings, job_id: uuid.UUID) -> list[str]:
    with transaction(settings) as session:
        return list(session.scalars(select(ToyNote.text).where(ToyNote.job_id == job_id)))


def _followups(settings: Settings, job_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    with transaction(settings) as session:
        rows = session.execute(
            select(Job.id, Job.state).where(
                Job.type == "system.echo", Job.payload["echo_of"].astext == str(job_id)
            )
        ).all()
    return [(r.id, r.state) for r in rows]


def test_the_toy_route_scope_settings_and_job_work_without_a_core_edit(
    toy: tuple[Settings, str],
) -> None:
    own, base = toy
    assert "/v1/toy/notes" in httpx.get(f"{base}/openapi.json", timeout=5).json()["paths"]
    outsider = _key(own, "jobs:write")
    refused = httpx.post(f"{base}/v1/toy/notes", json={"text": "hi"}, headers=auth(outsider))
    assert refused.status_code == 403 and refused.json()["scope"] == "toy:write"

    token = _key(own, "toy:write")
    answer = httpx.post(f"{base}/v1/toy/notes", json={"text": "hi"}, headers=auth(token))
    assert answer.status_code == 202, answer.text
    job_id = uuid.UUID(answer.json()["job_id"])
    assert finished(own, [job_id])[job_id] == ("succeeded", ["succeeded"])
    # The greeting comes from the toy's settings section, read in the worker's process.
    assert _notes(own, job_id) == ["ahoy hi"]
    listed = httpx.get(f"{base}/v1/toy/notes", headers=auth(token), timeout=5).json()
    assert {"job_id": str(job_id), "kind": "record", "text": "ahoy hi"} in listed
    ((followup, _),) = _followups(own, job_id)
    assert finished(own, [followup])[followup][0] == "succeeded"


def test_a_follow_up_commits_with_its_cause_even_when_the_worker_dies_before_the_commit(
    toy: tuple[Settings, str],
) -> None:
    own, _ = toy
    with transaction(own) as session:
        job_id = enqueue(
            session,
            "toy.record",
            {"text": "crash", "crash_on_attempts": [1]},
            producer="toy-test",
            settings=own,
        ).job_id
    state, outcomes = finished(own, [job_id])[job_id]
    # Attempt 1 wrote its note and its follow-up, then its process was killed: the reaper
    # found the lease expired. Had anything of attempt 1 committed, there would be two.
    assert (state, outcomes) == ("succeeded", ["lost", "succeeded"])
    assert _notes(own, job_id) == ["ahoy crash"]
    assert len(_followups(own, job_id)) == 1


def test_the_toy_schedule_entry_enqueues_one_job_per_fire(toy: tuple[Settings, str]) -> None:
    own, _ = toy

    def fires_and_jobs() -> tuple[int, int] | None:
        with transaction(own) as session:  # one snapshot: a fire and its job commit together
            fires = session.scalar(select(func.count()).where(ScheduleFire.schedule == "toy-tick"))
            jobs = session.scalar(select(func.count()).where(Job.type == "toy.tick"))
        return (int(fires or 0), int(jobs or 0)) if (fires or 0) >= 2 else None

    fires, jobs = wait_until(fires_and_jobs, timeout=20, what="two toy ticks")
    assert fires == jobs

    def ticked() -> list[Any] | None:
        with transaction(own) as session:
            rows = list(session.scalars(select(ToyNote).where(ToyNote.kind == "tick")))
        return rows or None

    assert wait_until(ticked, timeout=20, what="a tick note")[0].text == "tick"
