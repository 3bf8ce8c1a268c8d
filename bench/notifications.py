"""Webhooks/s through the whole pipeline against a bare httpx loop posting the same signed requests.

Both contenders post to the same local receiver process, in the same run, alternating rounds.
The pipeline round commits N notifications in one transaction (the service's own accept path),
then times commit → the last notification's `delivered_at` (stamped after its POST returned):
outbox → relay → Redis → worker (claim, sign, POST through the SSRF-guarded client, attempt
row, `succeeded`). Completion is polled every 250 ms; the poll does not set the end time.
The bare loop is one `httpx.Client` posting the same body with freshly signed headers, in series.
Each is run against a receiver answering at once and one answering after a little latency.

    python -m bench.notifications [--count 600] [--rounds 5] [--concurrency 4] [--delays 0,20]
"""

from __future__ import annotations

import argparse
import json
import time
import uuid

import httpx
from sqlalchemy import ARRAY, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import UUID

from bench.common import (
    Series,
    bench_env,
    machine,
    progress,
    settings_env,
    switchyard,
    wait_until,
)
from bench.common import wait_ready as wait_marker
from config import Settings
from devstack.receiver import start_receiver
from store.db import transaction
from tasks.enqueue import enqueue
from tasks.notifications.channels.webhook import signed_headers
from tasks.notifications.endpoints import register_endpoint
from tasks.notifications.models import Notification
from tasks.notifications.schemas import DELIVER, NotificationRequest
from tasks.notifications.service import prepare, record
from tasks.notifications.settings import NotificationSettings
from tasks.registry import domains

BODY = json.dumps({"type": "bench", "timestamp": "2026-01-01T00:00:00Z", "data": {"n": 1}}).encode()


def bare_round(url: str, secret: str, count: int, offset: int) -> float:
    """Signed POSTs in a plain loop; returns requests/s."""
    with httpx.Client(timeout=15) as client:
        start = time.perf_counter()
        for i in range(count):
            headers = signed_headers(f"msg_bare_{offset + i}", BODY, secrets=[secret])
            client.post(url, content=BODY, headers=headers).raise_for_status()
        return count / (time.perf_counter() - start)


def delivered(settings: Settings, ids: list[uuid.UUID]) -> tuple[int, float | None]:
    """How many of these notifications are delivered, and when the last one was."""
    with transaction(settings) as session:
        count, last = session.execute(
            select(func.count(), func.extract("epoch", func.max(Notification.delivered_at))).where(
                Notification.id == any_(bindparam("ids", ids, type_=ARRAY(UUID(as_uuid=True)))),
                Notification.delivered_at.is_not(None),
            )
        ).one()
    return int(count), None if last is None else float(last)


def pipeline_round(settings: Settings, url: str, count: int) -> float:
    """Commit `count` webhook notifications, then wait for all of them to be delivered."""
    ids: list[uuid.UUID] = []
    with transaction(settings) as session:
        for i in range(count):
            req = NotificationRequest(channel="webhook", to=url, data={"n": i})
            prepared = prepare(
                session, req, producer="bench", settings=settings.section(NotificationSettings)
            )
            ids.append(prepared.id)
            job_id = enqueue(
                session,
                DELIVER.name,
                {"notification_id": str(prepared.id)},
                producer="bench",
                settings=settings,
            ).job_id
            record(session, prepared, job_id=job_id)
    start = time.time()
    wait_until(
        lambda: delivered(settings, ids)[0] >= count,
        timeout=600,
        interval=0.25,
        what=f"{count} webhooks to be delivered",
    )
    last = delivered(settings, ids)[1]
    assert last is not None
    return count / (last - start)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--delays", default="0,20", help="Receiver latencies to try, in ms (comma-separated)."
    )
    args = parser.parse_args()
    results: list[tuple[int, Series, Series]] = []
    with bench_env("notifications", concurrency=args.concurrency) as env:
        notify = NotificationSettings(
            webhook_allowed_networks=["127.0.0.0/8"], rate_limit_count=1_000_000
        )
        settings = env.settings.model_copy(update={"notifications": notify})
        receiver = start_receiver(env.logs)
        procs = [
            env.start(*switchyard("relay"), name="relay", env=settings_env(settings)),
            env.start(*switchyard("worker"), name="worker", env=settings_env(settings)),
        ]
        try:
            wait_marker(procs[1], "ready.", what="the worker")
            for delay in (int(d) for d in args.delays.split(",")):
                url = f"{receiver.base}/delay/{delay}/bench"
                with transaction(settings) as session:
                    _, secret = register_endpoint(
                        session, url, producer="bench", secret=None, settings=settings
                    )
                progress(f"receiver latency {delay} ms: warming up")
                # A batch for every pool child, so none starts cold (TLS context, SQL cache).
                pipeline_round(
                    settings,
                    url,
                    args.concurrency * domains(settings).batch_size(settings, DELIVER.name),
                )
                bare_round(url, secret, 20, offset=-20)
                ours, bare = Series("pipeline (relay + worker)"), Series("bare httpx loop")
                for n in range(1, args.rounds + 1):
                    bare.values.append(bare_round(url, secret, args.count, offset=n * args.count))
                    ours.values.append(pipeline_round(settings, url, args.count))
                    progress(
                        f"round {n}: pipeline {ours.values[-1]:.0f}/s, bare {bare.values[-1]:.0f}/s"
                    )
                results.append((delay, bare, ours))
        finally:
            for proc in reversed(procs):
                proc.stop()
            receiver.process.stop()
    print(f"webhooks delivered per second ({args.count} per round, {machine()},")
    print(f"worker concurrency {args.concurrency}, one local receiver process)")
    for delay, bare, ours in results:
        print(f" receiver answers after {delay} ms:")
        print(bare.row())
        print(ours.row(bare))


if __name__ == "__main__":
    main()
