"""The operator's CLI against the run's ledger: `jobs`, `queues`, `keys list`, as subprocesses."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings
from devstack.processes import settings_env, switchyard
from store.db import transaction
from store.jobs import claim_jobs, mark_dead
from store.models import Job
from tasks.enqueue import enqueue
from tasks.registry import domains
from tests.support.keys import MakeKey


def cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `switchyard ARGS` with the run's settings."""
    done = subprocess.run(
        switchyard(*args), env=settings_env(settings), capture_output=True, text=True, timeout=60
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def cli_json(settings: Settings, *args: str) -> Any:
    """Run a command with `--json` and parse what it printed."""
    return json.loads(cli(settings, *args, "--json").stdout)


def make_dead(settings: Settings, *, job_type: str, payload: dict[str, Any], error: str) -> str:
    """A job that ran once and died with an error of type `error`."""
    with transaction(settings) as session:
        job_id = enqueue(session, job_type, payload, producer="ops-cli", settings=settings).job_id
        [claimed] = claim_jobs(
            session, [job_id], job_type=job_type, worker="test", lease_seconds=30
        )
        mark_dead(session, claimed, error={"type": error, "message": f"{error} on purpose"})
    return str(job_id)


def test_tables_show_bracketed_text_as_it_is(settings: Settings, clean_ledger: None) -> None:
    """A producer's error text is not rich markup: `[red]` is not applied, `[/x]` breaks nothing."""
    wide = {**settings_env(settings), "COLUMNS": "400"}
    message = "[/x] boom [red]"
    with transaction(settings) as session:
        job_id = enqueue(session, "system.fail", {}, producer="ops-cli", settings=settings).job_id
        [claimed] = claim_jobs(
            session, [job_id], job_type="system.fail", worker="test", lease_seconds=30
        )
        mark_dead(session, claimed, error={"type": "Boom", "message": message})
    for args in (("jobs", "list", "--state", "dead"), ("jobs", "replay", "--dry-run")):
        done = subprocess.run(
            switchyard(*args), env=wide, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert message in done.stdout


def state_of(settings: Settings, job_id: str) -> str:
    """The job's state in the ledger."""
    with transaction(settings) as session:
        return session.get(Job, uuid.UUID(job_id)).state  # type: ignore[union-attr]


def test_jobs_list_show_and_bulk_replay_with_dry_run(
    settings: Settings, clean_ledger: None
) -> None:
    lost = [
        make_dead(settings, job_type="system.fail", payload={"times": 0}, error="worker_lost")
        for _ in range(3)
    ]
    other = make_dead(settings, job_type="system.echo", payload={"x": 1}, error="ValueError")

    listed = cli_json(settings, "jobs", "list", "--state", "dead", "--producer", "ops-cli")
    assert {j["id"] for j in listed} == {*lost, other}
    assert all(j["state"] == "dead" for j in listed)

    shown = cli_json(settings, "jobs", "show", other)
    assert shown["payload"] == {"x": 1}
    assert [a["outcome"] for a in shown["history"]] == ["dead"]

    dry = cli_json(settings, "jobs", "replay", "--error-type", "worker_lost", "--dry-run")
    assert dry["dry_run"] is True and dry["count"] == 3
    assert {j["id"] for j in dry["jobs"]} == set(lost)
    assert all(state_of(settings, j) == "dead" for j in lost)  # a dry run changes nothing
    people = cli(settings, "jobs", "replay", "--error-type", "worker_lost", "--dry-run").stdout
    assert "3 dead job(s) would be replayed (dry run)" in people

    done = cli(settings, "jobs", "replay", "--error-type", "worker_lost", "--json")
    result = json.loads(done.stdout)
    assert result["count"] == 3 and set(result["replayed"]) == set(lost)
    assert all(state_of(settings, j) != "dead" for j in lost)
    assert state_of(settings, other) == "dead"  # outside the filter

    again = cli_json(settings, "jobs", "replay", "--error-type", "worker_lost", "--dry-run")
    assert again["count"] == 0


def test_jobs_retry_and_cancel_refuse_what_they_cannot_do(
    settings: Settings, clean_ledger: None
) -> None:
    dead = make_dead(settings, job_type="system.echo", payload={}, error="ValueError")
    with transaction(settings) as session:
        later = enqueue(
            session, "system.echo", {}, producer="ops-cli", settings=settings,
            run_at=datetime.now(UTC) + timedelta(hours=1),
        ).job_id  # fmt: skip
    assert cli_json(settings, "jobs", "retry", dead)["state"] == "retrying"
    refused = cli(settings, "jobs", "retry", str(later), check=False)
    assert refused.returncode == 1
    assert "not dead" in refused.stderr
    assert cli_json(settings, "jobs", "cancel", str(later)) == {
        "id": str(later),
        "state": "cancelled",
    }
    assert cli(settings, "jobs", "cancel", str(later), check=False).returncode == 1
    assert cli(settings, "jobs", "show", "not-a-uuid", check=False).returncode == 2


def test_queues_and_keys_list_for_scripts(settings: Settings, make_key: MakeKey) -> None:
    make_key("ops-cli-key", ("metrics:read",))
    report = cli_json(settings, "queues")
    names = {q["name"] for q in report["queues"]}
    assert set(domains(settings).queues) <= names and "notifications" in names
    assert all(isinstance(q["depth"], int) for q in report["queues"])
    assert set(report["relay"]) == {"backlog", "oldest_age_seconds"}
    keys = cli_json(settings, "keys", "list")
    mine = [k for k in keys if k["name"] == "ops-cli-key"]
    assert mine and mine[0]["scopes"] == ["metrics:read"]
    assert all("secret" not in json.dumps(k) for k in keys)


def test_every_command_has_help() -> None:
    top = subprocess.run(switchyard("--help"), capture_output=True, text=True, timeout=60)
    for command in ("dev", "api", "worker", "beat", "relay", "flower", "migrate", "keys", "jobs",
                    "queues"):  # fmt: skip
        assert command in top.stdout
    jobs = subprocess.run(switchyard("jobs", "--help"), capture_output=True, text=True, timeout=60)
    for command in ("list", "show", "retry", "cancel", "replay"):
        assert command in jobs.stdout
    replay = subprocess.run(
        switchyard("jobs", "replay", "--help"), capture_output=True, text=True, timeout=60
    )
    assert "--dry-run" in replay.stdout and "--error-type" in replay.stdout
