"""The Celery contenders in bench.drain, each timed from its first publish to its last task.

- `stock`: one `bench.noop` message per job, published in pipelined batches of the relay's
  size; done when the last result's `date_done` is stored (Redis result backend);
- `tuned`: the same to the `ignore_result`, prefetch-64 worker; done when its queue and unacked
  set are empty;
- `chunks`: Celery batched the way Switchyard batches, `noop.chunks(…, batch)` (one
  `celery.starmap` message per batch of jobs) to the stock worker; done at the last chunk's
  `date_done`.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import redis
from celery import Celery

from bench.celery_baseline import create_baseline
from bench.common import BenchEnv, Process

POLL = 0.01


def _publish(app: Celery, jobs: int, batch: int) -> list[str]:
    ids: list[str] = []
    with app.producer_or_acquire() as producer:
        for first in range(0, jobs, batch):
            with producer.batch(max_size=batch):
                for _ in range(first, min(jobs, first + batch)):
                    ids.append(app.send_task("bench.noop", producer=producer).id)
    return ids


def _publish_chunks(app: Celery, jobs: int, batch: int) -> list[str]:
    chunks = app.tasks["bench.noop"].chunks([() for _ in range(jobs)], batch)
    return [r.id for r in chunks.group().apply_async().results]


def _wait_for_keys(client: redis.Redis, keys: list[str], deadline: float) -> None:
    """Wait until every key exists, checking a window at a time so polling stays cheap."""
    seen, window = 0, 200
    while seen < len(keys):
        chunk = keys[seen : seen + window]
        if client.exists(*chunk) == len(chunk):
            seen += len(chunk)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"Celery finished {seen}/{len(keys)} results before the deadline")
        time.sleep(POLL)
    if client.exists(*keys) != len(keys):  # results land out of order near the end
        time.sleep(POLL)
        _wait_for_keys(client, keys, deadline)


def _last_result(client: redis.Redis, keyprefix: str, ids: list[str], deadline: float) -> float:
    keys = [f"{keyprefix}celery-task-meta-{i}" for i in ids]
    _wait_for_keys(client, keys, deadline)
    done = [json.loads(raw)["date_done"] for raw in client.mget(keys) if raw is not None]
    return max(datetime.fromisoformat(d).timestamp() for d in done)


def _queue_empty(client: redis.Redis, keyprefix: str, deadline: float) -> float:
    while True:
        pipe = client.pipeline()
        pipe.llen(f"{keyprefix}celery")
        pipe.hlen(f"{keyprefix}unacked")
        if sum(pipe.execute()) == 0:
            return time.time()
        if time.monotonic() > deadline:
            raise RuntimeError("tuned Celery did not finish before the deadline")
        time.sleep(POLL)


def run_celery(env: BenchEnv, contender: str, *, jobs: int, batch: int, timeout: float) -> float:
    """Send `jobs` no-op tasks as `contender` (stock, tuned, chunks); jobs/s to the last."""
    variant = "tuned" if contender == "tuned" else "stock"
    keyprefix = f"{env.redis_prefix}{variant}:"
    app = create_baseline(variant, redis_url=env.settings.redis.url, prefix=env.redis_prefix)
    client = redis.Redis.from_url(env.settings.redis.url)
    deadline = time.monotonic() + timeout
    try:
        start = time.time()
        if contender == "tuned":
            _publish(app, jobs, batch)
            last = _queue_empty(client, keyprefix, deadline)
        else:
            publish = _publish_chunks if contender == "chunks" else _publish
            last = _last_result(client, keyprefix, publish(app, jobs, batch), deadline)
    finally:
        client.close()
        app.close()
    return jobs / (last - start)


def start_worker(env: BenchEnv, variant: str, concurrency: int) -> Process:
    """Start the `variant` (stock, tuned) Celery worker; its log says `ready.` when it is."""
    extra = {
        "BENCH_CELERY_VARIANT": variant,
        "BENCH_CELERY_REDIS_URL": env.settings.redis.url,
        "BENCH_CELERY_PREFIX": env.redis_prefix,
    }
    argv = [sys.executable, "-m", "celery", "-A", "bench.celery_baseline", "worker"]
    argv += ["--concurrency", str(concurrency), "--loglevel", "INFO"]
    argv += ["--hostname", f"bench-{variant}@%h"]
    return env.start(*argv, name=f"worker-{variant}", env={**env.env(), **extra})
