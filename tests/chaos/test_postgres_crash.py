"""kill -9 of PostgreSQL (a cluster the test starts, never the run's shared server) under load.

Claims and the relay's mark-sent commit asynchronously: a crash may forget them. What it may
not do is lose a job that was answered 202, or let a job that succeeded run to success again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from chaos.servers import OwnPostgres
from config import Settings
from devstack.processes import Process, free_port, isolated, wait_until
from ops.migrate import upgrade
from store.api_keys import create_key
from store.db import dispose_engines, transaction
from tasks.registry import domains
from tests.support.api import auth, submit_all
from tests.support.stack import start_api, start_process, start_worker

pytestmark = pytest.mark.chaos
ECHO = {"type": "system.echo", "payload": {"survives": "a postgres crash"}}


@pytest.fixture
def crashable(settings: Settings) -> Iterator[tuple[OwnPostgres, Settings]]:
    """A migrated PostgreSQL of the test's own, and the run's settings pointed at it."""
    # Not under tmp_path: another pytest session makes /tmp/pytest-of-<user> private again,
    # and the server's own user must keep reaching its data directory.
    root = Path(tempfile.mkdtemp(prefix="switchyard-pgcrash-"))
    # wal_writer_delay at its maximum: an asynchronous commit then waits up to 10 s in the WAL
    # buffers (a kill -9 loses no WAL already handed to the kernel), so the kill finds some.
    server = OwnPostgres(
        root,
        port=free_port(),
        hosts=["127.0.0.1"],
        trusted=[],
        config={"wal_writer_delay": "10s"},
    )
    server.init()
    database = settings.database.model_copy(update={"url": server.url()})
    own = isolated(settings, database=database)
    upgrade(own)
    try:
        yield server, own
    finally:
        dispose_engines()
        if server.running():
            server.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def crash_and_restart(server: OwnPostgres) -> None:
    """kill -9 of the postmaster, then start it again (recovery replays what was flushed)."""
    server.kill()
    server.start()
    dispose_engines()  # this process's pooled connections died with the server


def ledger(settings: Settings, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, list[str]]]:
    """Each job's state and its attempts' outcomes, once every one of them has succeeded."""

    def read() -> dict[uuid.UUID, tuple[str, list[str]]] | None:
        with transaction(settings) as s:
            states: dict[uuid.UUID, str] = dict(
                s.execute(
                    text("SELECT id, state FROM jobs WHERE id = ANY(:ids)"), {"ids": ids}
                ).all()
            )
            if len(states) < len(ids) or set(states.values()) != {"succeeded"}:
                return None
            rows = s.execute(
                text(
                    "SELECT job_id, outcome FROM job_attempts WHERE job_id = ANY(:ids)"
                    " ORDER BY job_id, number, id"
                ),
                {"ids": ids},
            ).all()
        outcomes: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
        for job_id, outcome in rows:
            outcomes[job_id].append(outcome)
        return {i: (states[i], outcomes[i]) for i in ids}

    try:  # long enough for a claim that outlived its worker's batch to expire and run again
        return wait_until(read, timeout=60, interval=0.5, what="every promised job to succeed")
    except AssertionError:
        raise AssertionError(f"jobs that did not succeed: {unfinished(settings, ids)}") from None


def unfinished(settings: Settings, ids: list[uuid.UUID]) -> list[dict[str, object]]:
    """The jobs among `ids` that have not succeeded, with what the ledger says of them."""
    with transaction(settings) as s:
        rows = s.execute(
            text(
                "SELECT id, state, attempts, lost_count, claim_token, updated_at,"
                " EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = jobs.id) AS in_outbox"
                " FROM jobs WHERE id = ANY(:ids) AND state <> 'succeeded'"
            ),
            {"ids": ids},
        ).mappings()
        found = [dict(r) for r in rows]
        known = set(s.scalars(text("SELECT id FROM jobs WHERE id = ANY(:ids)"), {"ids": ids}))
    return found + [{"id": i, "state": "missing"} for i in ids if i not in known]


def successes_logged(*workers: Process) -> Counter[str]:
    """How many times each job was logged `job_succeeded` (after its outcome's commit)."""
    seen: Counter[str] = Counter()
    for worker in workers:
        for line in worker.output().splitlines():
            if '"job_succeeded"' in line:
                seen[json.loads(line[line.index("{") :])["job_id"]] += 1
    return seen


def api_key(settings: Settings) -> str:
    with transaction(settings) as session:
        _, token = create_key(
            session,
            name="crash-svc",
            scopes=["jobs:write", "jobs:read"],
            known=domains(settings).scopes,
        )
    return token


class Submitter(threading.Thread):
    """POSTs echo jobs until stopped; keeps the id of every one answered 202 (the promise)."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.promised: list[uuid.UUID] = []
        self.refused = 0  # 503s and transport errors: nothing was promised for those
        self.unexpected: list[str] = []  # any other answer
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers=auth(self.token), timeout=10) as client:
            while not self.stop.is_set():
                key = {"Idempotency-Key": uuid.uuid4().hex}
                try:
                    resp = client.post("/v1/jobs", json=ECHO, headers=key)
                except httpx.HTTPError:
                    self.refused += 1
                    continue
                if resp.status_code == 202:
                    self.promised.append(uuid.UUID(resp.json()["id"]))
                elif resp.status_code == 503:
                    self.refused += 1
                else:
                    self.unexpected.append(f"{resp.status_code} {resp.text[:200]}")


@pytest.mark.timeout(300)  # its stages' own waits say what they waited for
def test_a_postgres_crash_under_load_loses_no_accepted_job_and_runs_none_twice(
    crashable: tuple[OwnPostgres, Settings], logs_dir: Path
) -> None:
    server, own = crashable
    api, base = start_api(own, logs_dir, name="api-pgcrash")
    relay = start_process(own, logs_dir, "relay")
    beat = start_process(own, logs_dir, "beat")  # the reaper, for claims that survived
    workers = [start_worker(own, logs_dir, name=f"worker-pgcrash-{n}") for n in range(2)]
    submitters = [Submitter(base, api_key(own)) for _ in range(2)]

    def promised() -> int:
        return sum(len(s.promised) for s in submitters)

    try:
        for submitter in submitters:
            submitter.start()
        wait_until(lambda: promised() >= 200, timeout=60, what="load before the crash")
        before = promised()
        crash_and_restart(server)
        wait_until(lambda: promised() >= before + 200, timeout=90, what="load after the crash")
        for submitter in submitters:
            submitter.stop.set()
            submitter.join(30)
        assert [u for s in submitters for u in s.unexpected] == []
        ids = [i for s in submitters for i in s.promised]
        result = ledger(own, ids)
        # Every 202 is in the ledger and succeeded, by exactly one attempt recorded so.
        assert all(outcomes.count("succeeded") == 1 for _, outcomes in result.values()), [
            r for r in result.items() if r[1][1].count("succeeded") != 1
        ]
        logged = successes_logged(*workers)
        assert max(logged[str(i)] for i in ids) == 1, "a job ran to success twice"
    finally:
        for submitter in submitters:
            submitter.stop.set()
        for process in (*workers, beat, relay, api):
            process.stop()


def test_claims_the_crash_forgot_run_again_and_their_first_run_records_nothing(
    crashable: tuple[OwnPostgres, Settings], logs_dir: Path
) -> None:
    server, own = crashable
    relay = start_process(own, logs_dir, "relay")
    beat = start_process(own, logs_dir, "beat")
    worker = start_worker(own, logs_dir, name="worker-forgotten", concurrency=2)
    forgotten: dict[uuid.UUID, uuid.UUID] = {}  # job → the token of its forgotten claim
    ids: list[uuid.UUID] = []
    try:
        # A crash forgets a claim only if its WAL had not left PostgreSQL's buffers yet: a
        # round whose claims were written out in time is tried again, at most three times.
        for _ in range(3):
            batch = submit_all(own, [("system.sleep", {"seconds": 1.5})] * 4)
            ids += batch
            held = wait_until(partial(claims, own, batch), interval=0.01, what="a claim")
            crash_and_restart(server)
            # First claims all: one whose job holds no token any more was forgotten.
            after = {job: token for job, _, token in tokens(own, list(held))}
            forgotten.update({j: t for j, t in held.items() if after[j] is None})
            if forgotten:
                break
        assert forgotten, "no round's claims were still in the WAL buffers at the kill"
        result = ledger(own, ids)
        assert all(outcomes.count("succeeded") == 1 for _, outcomes in result.values()), result
        assert max(successes_logged(worker)[str(i)] for i in ids) == 1
        # Each forgotten claim's own run could record nothing (its finish found another claim,
        # or no server): it handed its message back, and a new claim ran the job once more.
        assert '"batch_handed_back"' in worker.output()
        assert all(t != forgotten[j] for j, _, t in tokens(own, list(forgotten)))
    finally:
        for process in (worker, beat, relay):
            process.stop()


def tokens(
    settings: Settings, ids: list[uuid.UUID]
) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
    """(job, state, claim token) of the jobs."""
    with transaction(settings) as s:
        rows = s.execute(
            text("SELECT id, state, claim_token FROM jobs WHERE id = ANY(:ids)"), {"ids": ids}
        ).all()
    return [(r.id, r.state, r.claim_token) for r in rows]


def claims(settings: Settings, ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID] | None:
    """The claim tokens of those of the jobs that are running, if any is."""
    held = {
        job: token
        for job, state, token in tokens(settings, ids)
        if state == "running" and token is not None
    }
    return held or None
