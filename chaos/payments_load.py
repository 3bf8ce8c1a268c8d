"""The payments load: intents driven through the HTTP API step by step, as a careful client.

Each flow creates an intent and walks it to an end (captured in parts and partly refunded,
canceled after authorization, paid and refunded at once, declined, canceled before
confirmation), waiting for the worker between steps. Every POST carries an `Idempotency-Key`
of its own, so a request whose answer was lost is resent with it: the API answers it once.

The burst: 50 concurrent creates, all with one `Idempotency-Key`, then 50 concurrent confirms
of the intent they named, all with another, while the faults run; one intent and one
authorization are the only acceptable effects.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

P = "/v1/payment-intents"
CURRENCY = "USD"
UNIT = 1_000  # every amount a multiple: 290 bps of it is whole, so fees never round
RETRY_STATUSES = {500, 502, 503, 504}
# (flow, weight)
MIX = (
    ("manual-partial", 35),
    ("manual-cancel", 15),
    ("automatic-refund", 25),
    ("declined", 10),
    ("cancel-early", 15),
)
BURST = 50
BURST_FLOW = "burst"  # the `chaos_flow` metadata of the burst's intent


@dataclass
class Flow:
    """One intent's walk through the API, and how far it got."""

    n: int
    kind: str
    units: int  # the amount in UNITs
    intent_id: str | None = None
    steps: list[str] = field(default_factory=list)  # "confirm:202", "capture:409", …
    finished: bool = False  # reached the end its kind aims at (or a decline)
    answers: Counter[str] = field(default_factory=Counter)


@dataclass
class Burst:
    """The concurrent same-key creates of one intent, then its concurrent same-key confirms."""

    key: str = ""  # the creates' key; the confirms' is `<key>:confirm`
    intent_ids: set[str] = field(default_factory=set)  # the ids the creates were answered with
    created: Counter[str] = field(default_factory=Counter)  # the creates' answers
    answers: Counter[str] = field(default_factory=Counter)  # the confirms' answers

    @property
    def intent_id(self) -> str | None:
        """The burst's intent: the one id every create was answered with (None: not one)."""
        return next(iter(self.intent_ids)) if len(self.intent_ids) == 1 else None


def plan(count: int, *, seed: int) -> list[Flow]:
    """`count` flows drawn from MIX (the same for the same seed)."""
    rng = random.Random(seed)
    kinds, weights = [k for k, _ in MIX], [w for _, w in MIX]
    return [Flow(n, rng.choices(kinds, weights)[0], rng.randint(10, 50)) for n in range(count)]


class Client:
    """Requests with a deadline: GETs retried on anything, POSTs as the module says."""

    def __init__(self, http: httpx.AsyncClient, *, deadline: float) -> None:
        self.http = http
        self.deadline = deadline

    def has_time(self) -> bool:
        """True until the deadline."""
        return time.monotonic() < self.deadline

    async def get(self, path: str) -> Any:
        """The JSON of a 200 (retried until the deadline; None after it)."""
        while self.has_time():
            try:
                resp = await self.http.get(path)
                if resp.status_code == 200:
                    return resp.json()
            except httpx.TransportError:
                pass
            await asyncio.sleep(1.0)
        return None

    async def post(
        self, path: str, body: dict[str, Any], *, key: str, answers: Counter[str]
    ) -> httpx.Response | None:
        """POST with `Idempotency-Key: key`, resent with it after a lost answer (a connection
        error, a 5xx) until answered; the answer (None: none before the deadline)."""
        attempt = 0
        while self.has_time():
            try:
                resp = await self.http.post(path, json=body, headers={"Idempotency-Key": key})
                answers[str(resp.status_code)] += 1
                if resp.status_code not in RETRY_STATUSES:
                    return resp
            except httpx.TransportError as exc:
                answers[type(exc).__name__] += 1
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
            attempt += 1
        return None


async def _effect(client: Client, flow: Flow, step: str, body: dict[str, Any]) -> bool:
    """POST one step of the flow, with a key of its own; True when it was taken (202)."""
    key = f"flow-{flow.n}:{len(flow.steps)}:{step}"
    resp = await client.post(f"{P}/{flow.intent_id}/{step}", body, key=key, answers=flow.answers)
    status = None if resp is None else resp.status_code
    flow.steps.append(f"{step}:{status}")
    return status == 202


async def _until(client: Client, flow: Flow, done: Callable[[dict[str, Any]], bool]) -> Any:
    """Poll the intent until `done` (or it failed, or the deadline); its last view."""
    while True:
        view = await client.get(f"{P}/{flow.intent_id}")
        if view is None or done(view) or view["status"] in ("failed", "canceled"):
            return view
        await asyncio.sleep(1.0)


async def _create(client: Client, flow: Flow) -> bool:
    manual = flow.kind.startswith("manual")
    body: dict[str, Any] = {
        "amount": flow.units * UNIT,
        "currency": CURRENCY,
        "capture_method": "manual" if manual else "automatic",
        "metadata": {"chaos_flow": str(flow.n)},
    }
    if flow.kind != "cancel-early":
        body["payment_method"] = "pm_card_chargeDeclined" if flow.kind == "declined" else (
            "pm_card_visa"
        )  # fmt: skip
    resp = await client.post(P, body, key=f"flow-{flow.n}:create", answers=flow.answers)
    if resp is None or resp.status_code != 201:
        return False
    flow.intent_id = str(resp.json()["id"])
    return True


async def run_flow(client: Client, flow: Flow) -> Flow:
    """Walk one flow as far as the faults and the deadline allow."""
    if not await _create(client, flow):
        return flow
    if flow.kind == "cancel-early":
        # canceled at once (no provider call to wait for)
        flow.finished = await _effect(client, flow, "cancel", {})
        return flow
    if not await _effect(client, flow, "confirm", {}):
        return flow
    authorized = "succeeded" if flow.kind in ("automatic-refund", "declined") else (
        "requires_capture"
    )  # fmt: skip
    view = await _until(client, flow, lambda v: v["status"] == authorized)
    if view is None or view["status"] != authorized:
        flow.finished = view is not None and view["status"] == "failed"  # declined: its end
        return flow
    units = flow.units
    if flow.kind == "manual-cancel":
        if await _effect(client, flow, "cancel", {}):
            view = await _until(client, flow, lambda v: False)
            flow.finished = view is not None and view["status"] == "canceled"
        return flow
    if flow.kind == "manual-partial":
        first, second = units * 4 // 10 * UNIT, units * 3 // 10 * UNIT
        if not await _effect(client, flow, "capture", {"amount": first}):
            return flow
        if await _until(client, flow, lambda v: v["amount_received"] >= first) is None:
            return flow
        if not await _effect(client, flow, "capture", {"amount": second, "final": True}):
            return flow
        view = await _until(client, flow, lambda v: v["status"] == "succeeded")
        if view is None or view["status"] != "succeeded":
            return flow
    refund = max(1, units // 5) * UNIT
    if await _effect(client, flow, "refunds", {"amount": refund}):
        view = await _until(client, flow, lambda v: v["amount_refunded"] >= refund)
        flow.finished = view is not None and view["amount_refunded"] >= refund
    return flow


async def _same_key(
    client: Client, path: str, body: dict[str, Any], *, key: str, answers: Counter[str]
) -> list[httpx.Response]:
    """BURST concurrent POSTs with one key, each resent with it until answered; the answers."""
    sent = await asyncio.gather(
        *(client.post(path, body, key=key, answers=answers) for _ in range(BURST))
    )
    return [resp for resp in sent if resp is not None]


async def run_burst(http: httpx.AsyncClient, burst: Burst, *, deadline: float) -> None:
    """BURST concurrent creates with one key, then BURST concurrent confirms of the intent
    they named with another."""
    client = Client(http, deadline=deadline)
    body = {"amount": 10 * UNIT, "currency": CURRENCY, "capture_method": "manual",
            "payment_method": "pm_card_visa", "metadata": {"chaos_flow": BURST_FLOW}}  # fmt: skip
    burst.key = f"chaos-burst-{uuid.uuid4().hex[:12]}"
    made = await _same_key(client, P, body, key=burst.key, answers=burst.created)
    burst.intent_ids = {str(r.json()["id"]) for r in made if r.status_code == 201}
    if burst.intent_id is None:
        return
    confirm = f"{P}/{burst.intent_id}/confirm"
    await _same_key(client, confirm, {}, key=f"{burst.key}:confirm", answers=burst.answers)


async def _drive(
    base: str, token: str, flows: list[Flow], burst: Burst, *, duration: float, burst_at: float,
    deadline: float,
) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=BURST + 20, max_keepalive_connections=20)
    http = httpx.AsyncClient(base_url=base, headers=headers, timeout=10, limits=limits)
    async with http:
        start = time.monotonic()
        client = Client(http, deadline=deadline)

        async def later(flow: Flow) -> Flow:
            # flows start over the first 70 % of the load, so most end while faults still run
            await asyncio.sleep(flow.n * 0.7 * duration / max(1, len(flows)))
            return await run_flow(client, flow)

        async def burst_later() -> None:
            await asyncio.sleep(max(0.0, start + burst_at - time.monotonic()))
            await run_burst(http, burst, deadline=deadline)

        await asyncio.gather(burst_later(), *(later(f) for f in flows))


def drive(
    base: str, token: str, flows: list[Flow], burst: Burst, *, duration: float, burst_at: float,
    deadline: float,
) -> None:  # fmt: skip
    """Run every flow and the burst (in this thread's own event loop) until each ends or
    `deadline` (monotonic) passes."""
    asyncio.run(
        _drive(base, token, flows, burst, duration=duration, burst_at=burst_at, deadline=deadline)
    )
