"""A payment provider simulator: the subset of Stripe's API the gateway adapter uses.

Run with `python -m devstack.payment_simulator --port N`. It honours Stripe's idempotency keys
(the same key and parameters replay the stored response; other parameters are a 400), answers
by Stripe's test tokens, and injects seeded faults set through `POST /_sim/faults`: declines,
latency, 5xx before the call is applied, and a hang after it was applied (the client times
out on a charge that happened). `GET /_sim/truth` is the ground truth for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from devstack.payment_disputes import dispute_routes
from devstack.payment_search import search_routes
from devstack.payment_settlement import settlement_routes
from devstack.payment_webhooks import WebhookControls, Webhooks, webhook_routes

DECLINING = {"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"}


@dataclass
class Faults:
    """Seeded fault rates (0..1) and delays (seconds)."""

    seed: int = 0
    decline_rate: float = 0.0
    error_rate: float = 0.0  # a 500 before anything is applied
    hang_rate: float = 0.0  # applied, then no answer for `hang_seconds`
    hang_seconds: float = 30.0
    latency: float = 0.0


@dataclass
class Provider:
    """The simulator's state: objects, stored responses by idempotency key, faults, clock."""

    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    clock_offset: float = 0.0
    dispute_fee: int = 1_500  # in the provider's units, whatever the currency (as Stripe)

    def __post_init__(self) -> None:
        self.webhooks = Webhooks(self.now)

    def now(self) -> int:
        """The simulator's clock (advanced by `POST /_sim/clock`)."""
        return int(time.time() + self.clock_offset)


def _form(raw: bytes) -> dict[str, Any]:
    """Stripe's form encoding, with `metadata[key]` nested one level."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode(), keep_blank_values=True):
        if "[" in key and key.endswith("]"):
            outer, inner = key[:-1].split("[", 1)
            out.setdefault(outer, {})[inner] = value
        else:
            out[key] = value
    return out


def _error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, **extra}}


def create_app(provider: Provider | None = None) -> FastAPI:
    """The simulator's ASGI app."""
    sim = provider or Provider()
    app = FastAPI(title="payment provider simulator")
    lock = asyncio.Lock()

    async def stripe_call(request: Request, apply: Any) -> JSONResponse:
        params = _form(await request.body())
        key = request.headers.get("Idempotency-Key")
        fingerprint = json.dumps([request.url.path, params], sort_keys=True)
        f = sim.faults
        if f.latency:
            await asyncio.sleep(f.latency)
        async with lock:
            if key and key in sim.replies:
                seen, status, body = sim.replies[key]
                if seen != fingerprint:
                    status, body = _error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with "
                        "the same parameters they were first used with.",
                    )
                return JSONResponse(
                    body, status_code=status, headers={"Idempotent-Replayed": "true"}
                )
            if sim.rng.random() < f.error_rate:
                status, body = _error(500, "api_error", "simulated provider error")
                return JSONResponse(body, status_code=status)
            status, body = apply(params, key)
            if key:
                sim.replies[key] = (fingerprint, status, body)
            hang = sim.rng.random() < f.hang_rate
        if hang:
            await asyncio.sleep(f.hang_seconds)
        return JSONResponse(body, status_code=status)

    def create_intent(p: dict[str, Any], key: str | None) -> tuple[int, dict[str, Any]]:
        pid = "pi_" + secrets.token_hex(12)
        method = p.get("payment_method", "")
        manual = p.get("capture_method") == "manual"
        amount = int(p["amount"])
        intent = {
            "id": pid,
            "object": "payment_intent",
            "amount": amount,
            "currency": p["currency"],
            "payment_method": method,
            "capture_method": "manual" if manual else "automatic",
            "metadata": p.get("metadata", {}),
            "created": sim.now(),
            "amount_capturable": 0,
            "amount_received": 0,
            "status": "requires_confirmation",
        }
        sim.intents[pid] = intent
        if p.get("confirm") != "true":
            return 200, intent
        hook = sim.webhooks.emit
        hook("payment_intent.processing", {**intent, "status": "processing"}, key=key)
        if method in DECLINING or sim.rng.random() < sim.faults.decline_rate:
            intent["status"] = "requires_payment_method"
            hook("payment_intent.payment_failed", intent, key=key)
            return _error(
                402,
                "card_error",
                "Your card was declined.",
                code="card_declined",
                payment_intent=intent,
            )
        intent["latest_charge"] = "ch_" + secrets.token_hex(12)
        if manual:
            intent.update(status="requires_capture", amount_capturable=amount)
            hook("payment_intent.amount_capturable_updated", intent, key=key)
        else:
            intent.update(status="succeeded", amount_received=amount)
            hook("payment_intent.succeeded", intent, key=key)
        return 200, intent

    def capture(pid: str, p: dict[str, Any], key: str | None) -> tuple[int, dict[str, Any]]:
        intent = sim.intents.get(pid)
        if intent is None or intent["status"] != "requires_capture":
            return _error(400, "invalid_request_error", "This PaymentIntent cannot be captured.")
        amount = int(p.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"]:
            return _error(400, "invalid_request_error", "amount_to_capture is too large.")
        intent["amount_received"] += amount
        final = p.get("final_capture", "true") != "false"
        intent["amount_capturable"] = 0 if final else intent["amount_capturable"] - amount
        if final or not intent["amount_capturable"]:
            intent["status"] = "succeeded"
            sim.webhooks.emit("payment_intent.succeeded", intent, key=key)
        else:
            sim.webhooks.emit("payment_intent.amount_capturable_updated", intent, key=key)
        return 200, intent

    def cancel(pid: str, key: str | None) -> tuple[int, dict[str, Any]]:
        intent = sim.intents.get(pid)
        if intent is None or intent["status"] in ("succeeded", "canceled"):
            return _error(400, "invalid_request_error", "This PaymentIntent cannot be canceled.")
        intent.update(status="canceled", amount_capturable=0)
        sim.webhooks.emit("payment_intent.canceled", intent, key=key)
        return 200, intent

    def refund(p: dict[str, Any], key: str | None) -> tuple[int, dict[str, Any]]:
        intent = sim.intents.get(p.get("payment_intent", ""))
        if intent is None:
            return _error(404, "invalid_request_error", "No such payment_intent.")
        done = sum(r["amount"] for r in sim.refunds.values() if r["payment_intent"] == intent["id"])
        amount = int(p.get("amount", intent["amount_received"] - done))
        if amount > intent["amount_received"] - done:
            return _error(400, "invalid_request_error", "Refund amount is greater than unrefunded.")
        rid = "re_" + secrets.token_hex(12)
        sim.refunds[rid] = {
            "id": rid,
            "object": "refund",
            "amount": amount,
            "payment_intent": intent["id"],
            "status": "succeeded",
            "currency": intent["currency"],
            "created": sim.now(),
        }
        sim.webhooks.emit("charge.refunded", charge_of(intent), key=key)
        return 200, sim.refunds[rid]

    def charge_of(intent: dict[str, Any]) -> dict[str, Any]:
        refunded = sum(
            r["amount"] for r in sim.refunds.values() if r["payment_intent"] == intent["id"]
        )
        return {
            "id": intent.get("latest_charge"),
            "object": "charge",
            "payment_intent": intent["id"],
            "amount": intent["amount"],
            "amount_captured": intent["amount_received"],
            "amount_refunded": refunded,
            "refunded": refunded == intent["amount_received"],
            "currency": intent["currency"],
        }

    @app.post("/v1/payment_intents")
    async def _create(request: Request) -> JSONResponse:
        return await stripe_call(request, create_intent)

    @app.post("/v1/payment_intents/{pid}/capture")
    async def _capture(pid: str, request: Request) -> JSONResponse:
        return await stripe_call(request, lambda p, key: capture(pid, p, key))

    @app.post("/v1/payment_intents/{pid}/cancel")
    async def _cancel(pid: str, request: Request) -> JSONResponse:
        return await stripe_call(request, lambda p, key: cancel(pid, key))

    @app.post("/v1/refunds")
    async def _refund(request: Request) -> JSONResponse:
        return await stripe_call(request, refund)

    @app.post("/_sim/faults")
    async def _faults(request: Request) -> dict[str, Any]:
        sim.faults = Faults(**await request.json())
        sim.rng = random.Random(sim.faults.seed)
        return sim.faults.__dict__

    @app.post("/_sim/clock")
    async def _clock(request: Request) -> dict[str, int]:
        sim.clock_offset += float((await request.json())["advance"])
        return {"now": sim.now()}

    webhook_routes(app, sim.webhooks)
    dispute_routes(app, sim)
    search_routes(app, sim)
    settlement_routes(app, sim)

    @app.get("/_sim/truth")
    async def _truth() -> dict[str, Any]:
        return {
            "payment_intents": list(sim.intents.values()),
            "refunds": list(sim.refunds.values()),
            "disputes": list(sim.disputes.values()),
        }

    @app.get("/healthz")
    async def _health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(
    *, host: str, port: int, webhook_url: str | None = None, webhook_secret: str | None = None
) -> None:
    """Serve the simulator until stopped, sending webhooks to `webhook_url` if given."""
    provider = Provider()
    if webhook_url:
        secrets_ = [webhook_secret] if webhook_secret else []
        provider.webhooks.configure(WebhookControls(url=webhook_url, secrets=secrets_))
    uvicorn.run(create_app(provider), host=host, port=port, log_level="warning")


def main() -> None:
    """`python -m devstack.payment_simulator [--host H] [--port N] [--webhook-url U
    --webhook-secret S]`."""
    parser = argparse.ArgumentParser(description="payment provider simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None)
    parser.add_argument("--webhook-secret", default=None)
    args = parser.parse_args()
    serve(
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
    )


if __name__ == "__main__":
    main()
