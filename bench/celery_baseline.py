"""The drain baselines: bare Celery apps running a no-op task on the benchmark's Redis.

`stock` is Celery as shipped: a plain `@app.task`, the Redis result backend, default prefetch.
`tuned` is bare Celery tuned for throughput: `ignore_result=True`, prefetch multiplier 64.
Both have `bench.noop` (the drain) and `bench.stamp`, which returns its start time (the latency).
The variant, Redis URL and key prefix come from the environment, so that the worker
(`celery -A bench.celery_baseline worker`) and the benchmark build the same app.
"""

from __future__ import annotations

import os
import time

from celery import Celery

VARIANTS = ("stock", "tuned")


def _noop() -> None:
    """Do nothing."""


def _stamp() -> float:
    """When the task started (bench.latency reads it from the result backend)."""
    return time.time()


def create_baseline(variant: str, *, redis_url: str, prefix: str) -> Celery:
    """A bare Celery app whose broker and result keys all live under `prefix`."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}")
    keyprefix = f"{prefix}{variant}:"
    app = Celery(f"bench-{variant}", broker=redis_url, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": keyprefix}
    app.conf.broker_connection_retry_on_startup = True
    app.conf.worker_hijack_root_logger = True
    if variant == "stock":
        app.conf.result_backend = redis_url
        app.conf.result_backend_transport_options = {"global_keyprefix": keyprefix}
    else:
        app.conf.worker_prefetch_multiplier = 64

    ignore = variant == "tuned"
    app.task(name="bench.noop", ignore_result=ignore)(_noop)
    app.task(name="bench.stamp", ignore_result=ignore)(_stamp)
    return app


app = create_baseline(
    os.environ.get("BENCH_CELERY_VARIANT", "stock"),
    redis_url=os.environ.get("BENCH_CELERY_REDIS_URL", "redis://127.0.0.1:6379/0"),
    prefix=os.environ.get("BENCH_CELERY_PREFIX", "switchyard-bench-adhoc:"),
)
