"""The simulator's webhooks: events signed Stripe's way, delivered with seeded faults.

Every state change of a simulated object becomes an event (`evt_…`, the object's snapshot in
`data.object`). Events go to the configured URL signed `Stripe-Signature: t=<ts>,v1=<hmac>`
(one `v1` per secret: while a secret is rotated Stripe signs with both) and may be delivered
twice, late, or not at all (`duplicate_rate`, `delay`, `drop_rate`); with `hold`, they wait
until the test delivers chosen events in a chosen order, any number of times.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request


@dataclass
class WebhookControls:
    """Where events go, signed with what, and the faults of their delivery."""

    url: str | None = None
    secrets: list[str] = field(default_factory=list)
    hold: bool = False
    seed: int = 0
    duplicate_rate: float = 0.0
    drop_rate: float = 0.0
    delay: float = 0.0


def signature(payload: bytes, *, timestamp: int, keys: list[str]) -> str:
    """Stripe's signature header: HMAC-SHA256 of `<timestamp>.<payload>` under each key."""
    signed = f"{timestamp}.".encode() + payload
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(k.encode(), signed, hashlib.sha256).hexdigest()}" for k in keys]
    return ",".join(parts)


class Webhooks:
    """The events the simulator made, and their deliveries."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.controls = WebhookControls()
        self.rng = random.Random(0)
        self.events: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def configure(self, controls: WebhookControls) -> None:
        """Set the controls (and reseed the faults)."""
        self.controls = controls
        self.rng = random.Random(controls.seed)

    def emit(self, kind: str, obj: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
        """Record an event about `obj` (its snapshot now) and send it unless held."""
        event: dict[str, Any] = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2024-06-20",
            "created": self.clock(),
            "type": kind,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": key},
            "data": {"object": copy.deepcopy(obj)},
        }
        self.events[event["id"]] = event
        c = self.controls
        if c.url and not c.hold and self.rng.random() >= c.drop_rate:
            times = 2 if self.rng.random() < c.duplicate_rate else 1
            task = asyncio.get_running_loop().create_task(self._later(event, times, c.delay))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return event

    async def _later(self, event: dict[str, Any], times: int, delay: float) -> None:
        await asyncio.sleep(delay)
        for _ in range(times):
            await self.deliver(event)

    async def deliver(self, event: dict[str, Any], *, keys: list[str] | None = None) -> int:
        """POST the event to the URL, signed now; the answer's status (0: no answer)."""
        url = self.controls.url
        if url is None:
            return 0
        payload = json.dumps(event, separators=(",", ":")).encode()
        header = signature(
            payload, timestamp=self.clock(), keys=self.controls.secrets if keys is None else keys
        )
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(
                    url,
                    content=payload,
                    headers={"Content-Type": "application/json", "Stripe-Signature": header},
                )
            status = answer.status_code
        except httpx.HTTPError:
            status = 0
        self.deliveries.append({"event": event["id"], "type": event["type"], "status": status})
        return status


def webhook_routes(app: FastAPI, hooks: Webhooks) -> None:
    """The controls: `POST /_sim/webhooks` (where, secrets, faults), `GET /_sim/events` (every
    event and delivery), `POST /_sim/webhooks/deliver` (chosen events, in the order given)."""

    @app.post("/_sim/webhooks")
    async def _webhooks(request: Request) -> dict[str, Any]:
        hooks.configure(WebhookControls(**await request.json()))
        return {"configured": True}

    @app.get("/_sim/events")
    async def _events() -> dict[str, Any]:
        return {"events": list(hooks.events.values()), "deliveries": hooks.deliveries}

    @app.post("/_sim/webhooks/deliver")
    async def _deliver(request: Request) -> dict[str, Any]:
        body = await request.json()
        keys = body.get("secrets")
        return {"statuses": [await hooks.deliver(hooks.events[e], keys=keys) for e in body["ids"]]}
