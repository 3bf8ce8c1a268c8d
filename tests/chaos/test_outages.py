"""PostgreSQL down → 503 and nothing written; Redis down → 202 and the job completes later."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from config import Settings
from devstack.processes import isolated, wait_until
from tests.chaos.proxy import Proxy
from tests.chaos.test_crashes import running
from tests.support.api import auth, count_rows, finished, submit, submit_all, wait_state
from tests.support.keys import MakeKey
from tests.support.own_redis import OwnRedis
from tests.support.stack import start_api, start_process, start_worker

pytestmark = pytest.mark.chaos
ECHO = {"type": "system.echo", "payload": {"survives": "outages"}}


def through_proxy(settings: Settings) -> tuple[Proxy, Settings]:
    """A proxy in front of the run's PostgreSQL, and settings that connect through it."""
    url = make_url(settings.database.url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    via = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    database = settings.database.model_copy(update={"url": via})
    return proxy, settings.model_copy(update={"database": database})


def test_postgres_down_is_503_and_writes_nothing_then_recovers(
    settings: Settings, make_key: MakeKey, logs_dir: Path
) -> None:
    proxy, proxied = through_proxy(settings)
    api, base = start_api(proxied, logs_dir, name="api-pg-proxy")
    token = make_key()
    try:
        assert submit(base, token, ECHO).status_code == 202
        proxy.cut()
        down = submit(base, token, ECHO)
        assert down.status_code == 503
        assert down.json()["code"] == "database_unavailable"
        assert down.headers["retry-after"] == "5"
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 503
        assert count_rows(settings, "jobs") == 1
        proxy.restore()
        wait_until(
            lambda: submit(base, token, ECHO).status_code == 202,
            timeout=20,
            what="the intake to accept again",
        )
    finally:
        api.stop()
        proxy.close()


def test_redis_down_at_accept_time_is_202_and_the_job_completes_when_it_returns(
    settings: Settings, make_key: MakeKey, logs_dir: Path, own_redis: OwnRedis
) -> None:
    own = own_redis.settings_for(settings)
    api, base = start_api(own, logs_dir, name="api-own-redis")
    relay = start_process(own, logs_dir, "relay")
    worker = start_worker(own, logs_dir, name="worker-own-redis")
    token = make_key()
    try:
        own_redis.kill()
        resp = submit(base, token, ECHO)
        assert resp.status_code == 202
        job_id = resp.json()["id"]
        assert httpx.get(f"{base}/readyz", timeout=10).json()["checks"]["redis"] != "ok"
        assert httpx.get(f"{base}/v1/jobs/{job_id}", headers=auth(token)).json()["state"] == (
            "accepted"
        )
        own_redis.start()
        job = wait_state(base, token, job_id, timeout=60)
        assert job["state"] == "succeeded"
        assert job["attempts"] == 1
        assert job["result"] == ECHO["payload"]
    finally:
        worker.stop()
        relay.stop()
        api.stop()


def test_a_worker_cut_off_from_postgres_hands_the_message_back_and_finishes_later(
    settings: Settings, make_key: MakeKey, logs_dir: Path
) -> None:
    own = isolated(settings)
    proxy, cut_off = through_proxy(own)
    api, base = start_api(own, logs_dir, name="api-pgcut")
    relay = start_process(own, logs_dir, "relay")
    worker = start_worker(cut_off, logs_dir, name="worker-pgcut")
    token = make_key()
    try:
        proxy.cut()
        job_id = submit(base, token, ECHO).json()["id"]
        wait_until(
            lambda: "claim_failed_database_unavailable" in worker.output(),
            timeout=30,
            what="the worker to fail its claim",
        )
        assert httpx.get(f"{base}/v1/jobs/{job_id}", headers=auth(token)).json()["state"] in {
            "accepted",
            "queued",
        }
        proxy.restore()
        job = wait_state(base, token, job_id, timeout=60)
        assert job["state"] == "succeeded"
        assert job["attempts"] == 1
    finally:
        worker.stop()
        relay.stop()
        api.stop()
        proxy.close()


def test_a_batch_whose_ledger_connection_drops_records_each_job_once(
    settings: Settings, logs_dir: Path, clean_ledger: None
) -> None:
    sleep = settings.policy_for("system.sleep").model_copy(update={"batch_size": 3})
    own = isolated(settings, job_policies={**settings.job_policies, "system.sleep": sleep})
    proxy, via_proxy = through_proxy(own)
    relay = start_process(own, logs_dir, "relay")
    worker = start_worker(via_proxy, logs_dir, name="worker-pgdrop", concurrency=1)
    try:
        # One batch of three 0.5 s jobs (the test lease is 3 s: all start before half of it).
        ids = submit_all(own, [("system.sleep", {"seconds": 0.5})] * 3)
        wait_until(lambda: running(own, ids) == 3, interval=0.02, what="the batch's claim")
        proxy.cut()  # drops the batch's connection while its first job sleeps
        proxy.restore()
        result = finished(own, ids)
        # The first job's success is recorded on a new connection; the other two are handed
        # back and run in a new batch (SQLAlchemy would have reconnected the old session
        # without autocommit: nothing they recorded would have committed). Each ran once.
        assert all(r == ("succeeded", ["succeeded"]) for r in result.values()), result
        assert '"why": "connection_lost"' in worker.output()
    finally:
        worker.stop()
        relay.stop()
        proxy.close()
