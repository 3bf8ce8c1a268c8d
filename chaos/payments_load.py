"""The payments load: intents driven through the HTTP API step by step, as a careful client.

Each flow creates an intent and walks it to an end (captured in parts and partly refunded,
canceled after authorization, paid and refunded at once, declined, canceled before
confirmation), waiting for the worker between steps. The payments API takes no
`Idempotency-Key`, so a careful client never blindly resends a request whose answer it lost: it
reads the intent's operations first and resends only if the call left no trace. A create whose
answer was lost is resent (the orphan it may leave is canceled by the sweep, chaos.payments).

The burst: 50 concurrent confirms of one intent, all with the same `Idempotency-Key`, while
the faults run; one authorization is the only acceptable effect.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
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
    """The concurrent same-key confirms of one intent."""

    intent_id: str | None = None
    key: str = ""
    answers: Counter[str] = field(default_factory=Counter)


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
        self,
        flow: Flow,
        path: str,
        body: dict[str, Any],
        *,
        left_a_trace: Callable[[], Awaitable[bool]] | None = None,
    ) -> int | None:
        """POST until answered; after a lost answer, resend only if `left_a_trace` says no.
        The status (202 assumed when the trace shows it was taken; None: never answered)."""
        attempt = 0
        while self.has_time():
            try:
                resp = await self.http.post(path, json=body)
                flow.answers[str(resp.status_code)] += 1
                if resp.status_code not in RETRY_STATUSES:
                    return resp.status_code
            except httpx.TransportError as exc:
                flow.answers[type(exc).__name__] += 1
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
            attempt += 1
            if left_a_trace is not None and await left_a_trace():
                return 202
        return None


async def _ops(client: Client, intent_id: str, kind: str) -> int | None:
    found = await client.get(f"{P}/{intent_id}/operations")
    return None if found is None else sum(1 for op in found if op["kind"] == kind)


async def _effect(client: Client, flow: Flow, step: str, body: dict[str, Any]) -> bool:
    """POST one step of the flow; True when it was taken (202)."""
    assert flow.intent_id is not None
    kind = {"confirm": "authorize", "capture": "capture", "refunds": "refund"}.get(step, step)
    before = await _ops(client, flow.intent_id, kind)
    if before is None:
        return False

    async def taken() -> bool:
        now = await _ops(client, flow.intent_id or "", kind)
        return now is not None and now > before

    status = await client.post(flow, f"{P}/{flow.intent_id}/{step}", body, left_a_trace=taken)
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
    while client.has_time():
        try:
            resp = await client.http.post(P, json=body)
            flow.answers[str(resp.status_code)] += 1
            if resp.status_code == 201:
                flow.intent_id = str(resp.json()["id"])
                return True
            if resp.status_code not in RETRY_STATUSES:
                return False
        except httpx.TransportError as exc:
            flow.answers[type(exc).__name__] += 1
        await asyncio.sleep(1.0)
    return False


async def run_flow(client: Client, flow: Flow) -> Flow:
    """Walk one flow as far as the faults and the deadline allow."""
    if not await _create(client, flow):
        return flow
    if flow.kind == "cancel-early":
        status = await client.post(flow, f"{P}/{flow.intent_id}/cancel", {})
        flow.finished = status == 202  # canceled at once (no provider call to wait for)
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


async def run_burst(http: httpx.AsyncClient, burst: Burst, *, deadline: float) -> None:
    """Create an intent, then send BURST confirms of it at once, all with one key; a lost
    answer is resent with the same key."""
    client = Client(http, deadline=deadline)
    body = {"amount": 10 * UNIT, "currency": CURRENCY, "capture_method": "manual",
            "payment_method": "pm_card_visa", "metadata": {"chaos_flow": "burst"}}  # fmt: skip
    while burst.intent_id is None and client.has_time():
        try:
            resp = await http.post(P, json=body)
            if resp.status_code == 201:
                burst.intent_id = str(resp.json()["id"])
        except httpx.TransportError:
            pass
        if burst.intent_id is None:
            await asyncio.sleep(1.0)
    if burst.intent_id is None:
        return
    burst.key = f"chaos-burst-{uuid.uuid4().hex[:12]}"
    headers = {"Idempotency-Key": burst.key}
    path = f"{P}/{burst.intent_id}/confirm"

    async def one() -> None:
        while client.has_time():
            try:
                resp = await http.post(path, json={}, headers=headers)
            except httpx.TransportError as exc:
                burst.answers[type(exc).__name__] += 1
            else:
                burst.answers[str(resp.status_code)] += 1
                if resp.status_code not in RETRY_STATUSES:
                    return
            await asyncio.sleep(0.5)

    await asyncio.gather(*(one() for _ in range(BURST)))


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
