"""`/metrics` on a real API process, and the ledger/Redis figures behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from config import Settings
from store.db import transaction
from store.metrics import LedgerSnapshot, attempt_finished, job_started
from store.states import WorkerOutcome
from store.stats import broker_depths, queue_report, ready_by_queue, relay_lag, state_counts
from tasks.enqueue import enqueue
from tests.support.keys import MakeKey
from tests.support.metrics import scrape
from tests.support.servers import REDIS_URL


def test_metrics_need_the_metrics_scope(api: str, make_key: MakeKey) -> None:
    assert httpx.get(f"{api}/metrics", timeout=5).status_code == 401
    writer = make_key("svc", ("jobs:write",))
    denied = httpx.get(f"{api}/metrics", headers={"Authorization": f"Bearer {writer}"}, timeout=5)
    assert denied.status_code == 403
    assert denied.json()["scope"] == "metrics:read"


def test_an_accepted_job_moves_the_counter_and_the_ledger_gauges(
    api: str, make_key: MakeKey
) -> None:
    token = make_key("ops", ("jobs:write", "jobs:read", "metrics:read"))
    before = scrape(api, token)
    resp = httpx.post(
        f"{api}/v1/jobs",
        json={"type": "system.echo", "payload": {}, "run_at": "2999-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "metrics-1"},
        timeout=10,
    )
    assert resp.status_code == 202
    replay = httpx.post(
        f"{api}/v1/jobs",
        json={"type": "system.echo", "payload": {}, "run_at": "2999-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "metrics-1"},
        timeout=10,
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    after = scrape(api, token)
    key = 'switchyard_jobs_accepted_total{job_type="system.echo"}'
    assert after[key] - before.get(key, 0.0) == 1  # the idempotent replay is not counted
    accepted = 'switchyard_ledger_jobs{state="accepted"}'
    assert after[accepted] - before[accepted] == 1
    for name in ("switchyard_relay_backlog", "switchyard_relay_lag_seconds"):
        assert name in after
    assert 'switchyard_queue_depth{queue="maintenance"}' in after
    assert 'switchyard_queue_oldest_ready_seconds{queue="notifications"}' in after


def test_ledger_figures_count_due_work_and_its_age(settings: Settings, clean_ledger: None) -> None:
    past = datetime.now(UTC) - timedelta(seconds=120)
    with pytest.raises(RuntimeError, match="rolled back"), transaction(settings) as session:
        # Never committed: no relay or worker of this run can touch these rows.
        for _ in range(2):
            enqueue(session, "system.echo", {}, producer="p", run_at=past, settings=settings)
        enqueue(
            session, "system.echo", {}, producer="p", run_at=past + timedelta(days=1),
            settings=settings,
        )  # fmt: skip
        ready = ready_by_queue(session)["maintenance"]
        assert ready.count == 2
        assert 119 <= (ready.oldest_age_seconds or 0) < 600
        lag = relay_lag(session)
        assert lag.backlog >= 2
        assert (lag.oldest_age_seconds or 0) >= 119
        assert state_counts(session)["accepted"] >= 3
        report = {q.name: q for q in queue_report(session, settings, queues=["maintenance"])}
        assert report["maintenance"].ready == 2
        text = LedgerSnapshot(states=state_counts(session), queues=report.values(), relay=lag)
        rendered = text.render().decode()
        assert 'switchyard_queue_ready_jobs{queue="maintenance"} 2.0' in rendered
        raise RuntimeError("rolled back")


def test_broker_depth_sums_every_priority_list(settings: Settings) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    prefix = settings.redis.key_prefix
    keys = [f"{prefix}depth-probe", f"{prefix}depth-probe:3", f"{prefix}depth-probe:9"]
    try:
        for n, key in enumerate(keys, start=1):
            client.rpush(key, *[b"m"] * n)
        assert broker_depths(client, ["depth-probe", "nothing-here"], prefix=prefix) == {
            "depth-probe": 6,
            "nothing-here": 0,
        }
    finally:
        client.delete(*keys)
        client.close()


def test_worker_outcomes_feed_counters_and_histograms() -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    job_type = "probe.type"
    before = sample("switchyard_jobs_retried_total", job_type=job_type)
    attempt_finished(job_type, outcome=WorkerOutcome.RETRYING, seconds=0.2)
    attempt_finished(job_type, outcome=WorkerOutcome.DROPPED, seconds=None)
    assert sample("switchyard_jobs_retried_total", job_type=job_type) == before + 1
    assert sample("switchyard_deliveries_dropped_total", job_type=job_type, reason="dropped") >= 1
    assert sample("switchyard_job_run_seconds_count", job_type=job_type) >= 1
    from store.ids import uuid7

    waits = sample("switchyard_job_wait_seconds_count", job_type=job_type)
    job_started(uuid7(), job_type=job_type, attempt=1)
    job_started(uuid7(), job_type=job_type, attempt=2)  # only first starts measure the wait
    assert sample("switchyard_job_wait_seconds_count", job_type=job_type) == waits + 1
