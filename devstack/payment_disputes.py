"""The simulator's disputes: a cardholder's bank disputes a charge, and the dispute is won or
lost; each step sends its webhook (`charge.dispute.created`, `charge.dispute.closed`)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from devstack.payment_simulator import Provider


def _refused(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": "invalid_request_error", "message": message}}, status_code=400
    )


def dispute_routes(app: FastAPI, sim: Provider) -> None:
    """`POST /_sim/disputes {payment_intent, amount?, fee?}` and `…/{id}/close {status}`."""

    @app.post("/_sim/disputes")
    async def _dispute(request: Request) -> JSONResponse:
        body = await request.json()
        intent = sim.intents.get(body.get("payment_intent", ""))
        if intent is None or not intent["amount_received"]:
            return _refused("This charge is not captured.")
        did = "dp_" + secrets.token_hex(12)
        amount = int(body.get("amount", intent["amount_received"]))
        fee = int(body.get("fee", sim.dispute_fee))
        sim.disputes[did] = {
            "id": did,
            "object": "dispute",
            "amount": amount,
            "currency": intent["currency"],
            "charge": intent.get("latest_charge"),
            "payment_intent": intent["id"],
            "status": "needs_response",
            "reason": body.get("reason", "fraudulent"),
            "balance_transactions": [{"amount": -amount, "fee": fee, "net": -amount - fee}],
            "created": sim.now(),
        }
        sim.webhooks.emit("charge.dispute.created", sim.disputes[did])
        return JSONResponse(sim.disputes[did])

    @app.post("/_sim/disputes/{did}/close")
    async def _close(did: str, request: Request) -> JSONResponse:
        dispute = sim.disputes.get(did)
        status = (await request.json()).get("status")
        if dispute is None or status not in ("won", "lost"):
            return _refused("A dispute open here closes as won or lost.")
        dispute["status"] = status
        sim.webhooks.emit("charge.dispute.closed", dispute)
        return JSONResponse(dispute)
