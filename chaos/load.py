"""A mixed load over HTTP, retried like a careful client: same Idempotency-Key on every retry.

Each planned request is sent at its slot of an even schedule (an open loop: an outage does not
slow the arrivals, it piles retries up to `max_in_flight`). A connection error, a timeout or a
5xx is retried with backoff until `give_up_after` seconds have passed since the first try;
the retry carries the same `Idempotency-Key` (jobs) or `dedup_key` (notifications), so it can
never create a second job.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_STATUSES = {500, 502, 503, 504}
# (label, weight): the mix of a run; labels are what the report and the invariants group by.
MIX = (
    ("echo", 40),
    ("echo+callback", 10),
    ("sleep", 8),
    ("fail-retryable", 10),
    ("fail-permanent", 5),
    ("fail-permanent+callback", 2),
    ("webhook", 20),
    ("webhook-slow", 5),
)


@dataclass(frozen=True)
class Planned:
    """One logical request: where it goes, what it says, its idempotency key."""

    n: int
    label: str
    path: str
    body: dict[str, Any]
    key: str


@dataclass
class Outcome:
    """What one logical request got, over all its tries."""

    planned: Planned
    status: int | None = None  # the last answer's status (None: never answered)
    job_id: str | None = None
    tries: int = 0
    job_ids: set[str] = field(default_factory=set)  # every 202's job id (must be one)
    answers: Counter[str] = field(default_factory=Counter)  # "202", "503", "ConnectError", …


@dataclass(frozen=True)
class Targets:
    """Where the load's webhooks and callbacks go."""

    hooks: str  # a registered endpoint answering at once
    slow_hooks: str  # a registered endpoint answering after a while
    callbacks: str
    callback_secret: str


def _body(label: str, n: int, rng: random.Random, targets: Targets) -> tuple[str, dict[str, Any]]:
    callback = {"callback_url": targets.callbacks, "callback_secret": targets.callback_secret}
    if label.startswith("webhook"):
        to = targets.slow_hooks if label == "webhook-slow" else targets.hooks
        return "/v1/notifications", {
            "channel": "webhook", "to": to, "data": {"n": n}, "dedup_key": f"chaos-{n}",
        }  # fmt: skip
    job: dict[str, Any] = {
        "echo": {"type": "system.echo", "payload": {"n": n}},
        "sleep": {"type": "system.sleep", "payload": {"seconds": rng.choice((0.1, 0.3, 0.5))}},
        "fail-retryable": {"type": "system.fail", "payload": {"times": 1}},
        "fail-permanent": {"type": "system.fail", "payload": {"times": 1, "mode": "permanent"}},
    }[label.removesuffix("+callback")]
    return "/v1/jobs", {**job, **callback} if label.endswith("+callback") else job


def plan(count: int, *, seed: int, targets: Targets) -> list[Planned]:
    """`count` requests drawn from MIX (the same ones for the same seed)."""
    rng = random.Random(seed)
    labels, weights = zip(*MIX, strict=True)
    out = []
    for n in range(count):
        label = rng.choices(labels, weights)[0]
        path, body = _body(label, n, rng, targets)
        out.append(Planned(n, label, path, body, f"chaos-{seed}-{n}-{uuid.uuid4().hex[:8]}"))
    return out


async def _send(
    client: httpx.AsyncClient, item: Planned, *, give_up_after: float, rng: random.Random
) -> Outcome:
    outcome = Outcome(item)
    headers = {"Idempotency-Key": item.key}
    first = time.monotonic()
    for attempt in range(1_000):
        outcome.tries += 1
        try:
            resp = await client.post(item.path, json=item.body, headers=headers)
        except httpx.TransportError as exc:
            outcome.answers[type(exc).__name__] += 1
            outcome.status = None
        else:
            outcome.answers[str(resp.status_code)] += 1
            outcome.status = resp.status_code
            if resp.status_code == 202:
                data = resp.json()
                outcome.job_id = str(data.get("job_id") or data["id"])
                outcome.job_ids.add(outcome.job_id)
                return outcome
            if resp.status_code not in RETRY_STATUSES:
                return outcome
        if time.monotonic() - first > give_up_after:
            return outcome
        await asyncio.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + rng.random()))
    return outcome


async def _drive(
    base: str, token: str, items: list[Planned], *, duration: float, max_in_flight: int,
    give_up_after: float,
) -> list[Outcome]:  # fmt: skip
    gate = asyncio.Semaphore(max_in_flight)
    rng = random.Random(len(items))
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    headers = {"Authorization": f"Bearer {token}"}
    client = httpx.AsyncClient(base_url=base, headers=headers, timeout=10, limits=limits)
    async with client:
        start = time.monotonic()

        async def one(item: Planned) -> Outcome:
            await asyncio.sleep(max(0.0, start + item.n * duration / len(items) - time.monotonic()))
            async with gate:
                return await _send(client, item, give_up_after=give_up_after, rng=rng)

        return list(await asyncio.gather(*(one(i) for i in items)))


def drive(
    base: str, token: str, items: list[Planned], *, duration: float, max_in_flight: int = 24,
    give_up_after: float = 90.0,
) -> list[Outcome]:  # fmt: skip
    """Send every planned request over `duration` seconds; returns each one's outcome."""
    return asyncio.run(
        _drive(base, token, items, duration=duration, max_in_flight=max_in_flight,
               give_up_after=give_up_after)
    )  # fmt: skip
