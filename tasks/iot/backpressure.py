"""Backpressure, never silent loss: a device over its rate gets 429, and while the iot queue
is behind, ingestion answers 503; both say when to come back (`Retry-After`)."""

from __future__ import annotations

import math
import threading
import time

import redis

from config import Settings
from errors import SwitchyardError, UnavailableError
from store.db import autocommit
from store.stats import oldest_ready_age
from tasks.iot.cache import client
from tasks.iot.schemas import QUEUE
from tasks.iot.settings import IotSettings


class RateLimitedError(SwitchyardError):
    """The device sent more batches than its rate allows."""

    status, code = 429, "rate_limited"
    members = ("retry_after",)

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:  # type: ignore[override]
        """`Retry-After`: the seconds left in the device's window."""
        return {"Retry-After": str(self.retry_after)}


class IngestBehindError(UnavailableError):
    """The iot queue is behind: accepting more now would only grow the backlog."""

    code = "ingest_behind"


def check_rate(device: str, *, settings: Settings, now: float) -> None:
    """Count one batch in the device's window; 429 past the limit (Redis down: let it in)."""
    own = settings.section(IotSettings)
    window = int(now // own.rate_window)
    key = f"{settings.redis.key_prefix}iot:rate:{device}:{window}"
    try:
        pipe = client(settings.redis.url).pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, own.rate_window + 1)
        count = int(pipe.execute()[0])
    except redis.RedisError:
        return  # the limit protects the service; an outage of it must not stop ingestion
    if count > own.rate_limit:
        left = max(1, math.ceil((window + 1) * own.rate_window - now))
        raise RateLimitedError(
            f"more than {own.rate_limit} batches in {own.rate_window}s", retry_after=left
        )


class LagGauge:
    """The iot queue's lag, read from the ledger at most every `lag_check` seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._lag: float | None = None

    def check(self, settings: Settings) -> None:
        """503 while the oldest due iot job has waited longer than `max_lag`."""
        own = settings.section(IotSettings)
        with self._lock:
            if time.monotonic() - self._read_at >= own.lag_check:
                with autocommit(settings) as session:
                    self._lag = oldest_ready_age(session, QUEUE)
                self._read_at = time.monotonic()
            lag = self._lag
        if lag is not None and lag > own.max_lag:
            raise IngestBehindError(f"ingestion is {lag:.0f}s behind; try again shortly")
