"""Prometheus metrics shared by every process, and the ledger's figures read at scrape time.

Counters and histograms live in each process through prometheus-client. With
`PROMETHEUS_MULTIPROC_DIR` set (the `switchyard` CLI sets it from
`SWITCHYARD_METRICS__MULTIPROC_DIR`), every process on a host — the API, each worker pool
child — writes its values to files there and the API's `/metrics` sums them. The
ledger's gauges (jobs per state, ready work, relay lag, Redis depth) are read fresh on
each scrape, so they are right whichever process answers.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Iterator

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    Metric,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from store.states import WorkerOutcome
from store.stats import QueueReport, RelayLag

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

JOBS_ACCEPTED = Counter(
    "switchyard_jobs_accepted", "Jobs committed to the ledger by the intake.", ["job_type"]
)
JOBS_SUCCEEDED = Counter("switchyard_jobs_succeeded", "Attempts that succeeded.", ["job_type"])
JOBS_RETRIED = Counter(
    "switchyard_jobs_retried", "Attempts that failed and scheduled a retry.", ["job_type"]
)
JOBS_DEAD = Counter("switchyard_jobs_dead", "Attempts that left the job dead.", ["job_type"])
# The exported name predates "batch": kept, so that dashboards and alerts keep working.
JOBS_NOT_RUN = Counter(
    "switchyard_deliveries_dropped",
    "Jobs a batch did not run: duplicates (dropped), lost leases, released unstarted.",
    ["job_type", "reason"],
)
POISON_MESSAGES = Counter(
    "switchyard_poison_messages",
    "Messages (or job ids in one) a worker discarded as unreadable, unknown or misrouted.",
    ["reason"],
)
WAIT_SECONDS = Histogram(
    "switchyard_job_wait_seconds",
    "Accepted to first started: how long a job waited for a worker.",
    ["job_type"],
    buckets=LATENCY_BUCKETS,
)
RUN_SECONDS = Histogram(
    "switchyard_job_run_seconds",
    "Started to finished, per attempt, whatever its outcome.",
    ["job_type"],
    buckets=LATENCY_BUCKETS,
)
_OUTCOME_COUNTERS = {
    WorkerOutcome.SUCCEEDED: JOBS_SUCCEEDED,
    WorkerOutcome.RETRYING: JOBS_RETRIED,
    WorkerOutcome.DEAD: JOBS_DEAD,
}


def job_accepted(job_type: str, *, created: bool = True) -> None:
    """Count a job the intake committed (an idempotent replay, `created=False`, is not counted)."""
    if created:
        JOBS_ACCEPTED.labels(job_type=job_type).inc()


def job_started(job_id: uuid.UUID, *, job_type: str, attempt: int) -> None:
    """Observe accepted → started on a job's first attempt (the id is a UUIDv7: its birth time)."""
    if attempt == 1:
        born = (job_id.int >> 80) / 1000.0
        WAIT_SECONDS.labels(job_type=job_type).observe(max(0.0, time.time() - born))


def attempt_finished(job_type: str, *, outcome: WorkerOutcome, seconds: float | None) -> None:
    """Count what a worker did with one job, and its run time when it ran."""
    counter = _OUTCOME_COUNTERS.get(outcome)
    if counter is None:
        JOBS_NOT_RUN.labels(job_type=job_type, reason=outcome).inc()
        return
    counter.labels(job_type=job_type).inc()
    if seconds is not None:
        RUN_SECONDS.labels(job_type=job_type).observe(seconds)


def poison_discarded(reason: str, *, count: int = 1) -> None:
    """Count `count` poison messages (or job ids) discarded for `reason`."""
    POISON_MESSAGES.labels(reason=reason).inc(count)


def multiprocess_dir() -> str | None:
    """The shared metrics directory of this host, if multiprocess mode is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def process_metrics() -> bytes:
    """This host's counters in the text format: summed over processes in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry)


class LedgerSnapshot(Collector):
    """Gauges read from the ledger, Redis and the domains for one scrape."""

    def __init__(
        self,
        *,
        states: dict[str, int],
        queues: Iterable[QueueReport],
        relay: RelayLag,
        domains: Iterable[Metric] = (),
    ) -> None:
        self.states = states
        self.queues = list(queues)
        self.relay = relay
        self.domains = list(domains)  # the domains' own gauges, read for this scrape

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges."""
        jobs = GaugeMetricFamily("switchyard_ledger_jobs", "Jobs in the ledger.", labels=["state"])
        for state, count in sorted(self.states.items()):
            jobs.add_metric([state], count)
        yield jobs
        depth = GaugeMetricFamily(
            "switchyard_queue_depth", "Messages waiting in Redis.", labels=["queue"]
        )
        ready = GaugeMetricFamily(
            "switchyard_queue_ready_jobs", "Due jobs not yet running (ledger).", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "switchyard_queue_oldest_ready_seconds",
            "Age of the oldest due job not yet running (0 when none).",
            labels=["queue"],
        )
        for q in self.queues:
            if q.depth is not None:
                depth.add_metric([q.name], q.depth)
            ready.add_metric([q.name], q.ready)
            oldest.add_metric([q.name], q.oldest_ready_seconds or 0.0)
        yield from (depth, ready, oldest)
        yield GaugeMetricFamily(
            "switchyard_relay_backlog",
            "Due outbox rows not yet published.",
            value=self.relay.backlog,
        )
        yield GaugeMetricFamily(
            "switchyard_relay_lag_seconds",
            "Age of the oldest due outbox row (0 when the relay is caught up).",
            value=self.relay.oldest_age_seconds or 0.0,
        )
        yield from self.domains

    def render(self) -> bytes:
        """The snapshot in the text format."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry)
