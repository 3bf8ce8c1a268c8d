"""The simulator's settlement report: Stripe's balance transactions — one per captured charge
and one per refund, each with the provider's fee, and a dispute's adjustments (type
`adjustment`, reporting category `dispute` for the withdrawal with its fee, and
`dispute_reversal` for the amount back when won), and one per payout (type `payout`, the
amount paid to the bank as a negative amount, its source the payout `po_…`) — listed by
`GET /v1/balance_transactions` (Stripe's list format, `limit`/`starting_after` paging,
`expand[]=data.source`).

`POST /_sim/payouts {currency?, amount?}` pays out `amount` (any currency, as a real provider
may pay out one we never charged in), by default all that is available in the currency: the
net of its lines less earlier payouts (400 when that is nothing); it answers the payout.

`POST /_sim/settlement {fee_bps?, fee_fixed?, inject: [{kind, payment_intent?, delta?}]}` sets
the provider's fee and injects mismatches into the report (the truth is left alone): `missing`
drops an intent's lines, `unexpected` adds a charge for an intent nobody made, `over`/`under`
move a charge's amount by `delta`, `currency` reports it in another currency, `fee` moves its
fee by `delta`, `duplicate` settles the same charge twice, `dispute` moves a dispute's
withdrawal by `delta`, and `payout` reports a payout (`payout: po_…`) a second time, its
amount moved by `delta`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from devstack.payment_simulator import Provider

KINDS = (
    "missing", "unexpected", "over", "under", "currency", "fee", "duplicate", "dispute", "payout"
)  # fmt: skip


@dataclass
class Settlement:
    """The provider's fee, its payouts' balance transactions and the mismatches injected
    into its report."""

    fee_bps: int = 290
    fee_fixed: int = 0
    inject: list[dict[str, Any]] = field(default_factory=list)
    payouts: list[dict[str, Any]] = field(default_factory=list)

    def fee(self, amount: int) -> int:
        """The provider's fee on a charge: bps rounded half up, plus the fixed part, ≤ amount."""
        return min(amount, (amount * self.fee_bps + 5_000) // 10_000 + self.fee_fixed)


def _charge(intent: dict[str, Any], settlement: Settlement) -> dict[str, Any]:
    amount = int(intent["amount_received"])
    fee = settlement.fee(amount)
    charge = intent.get("latest_charge") or "ch_" + intent["id"].removeprefix("pi_")
    return {
        "id": "txn_" + charge.removeprefix("ch_"),
        "object": "balance_transaction",
        "type": "charge",
        "reporting_category": "charge",
        "amount": amount,
        "fee": fee,
        "net": amount - fee,
        "currency": intent["currency"],
        "created": intent["created"],
        "source": {"id": charge, "object": "charge", "payment_intent": intent["id"]},
    }


def _refund(refund: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "txn_" + refund["id"].removeprefix("re_"),
        "object": "balance_transaction",
        "type": "refund",
        "reporting_category": "refund",
        "amount": -int(refund["amount"]),
        "fee": 0,
        "net": -int(refund["amount"]),
        "currency": refund["currency"],
        "created": refund["created"],
        "source": {
            "id": refund["id"],
            "object": "refund",
            "payment_intent": refund["payment_intent"],
        },
    }


def _disputed(dispute: dict[str, Any]) -> list[dict[str, Any]]:
    """A dispute's adjustments: the withdrawal with the dispute fee, and (won) the reversal."""
    amount = int(dispute["amount"])
    (withdrawal,) = dispute["balance_transactions"]
    source = {"id": dispute["id"], "object": "dispute", "payment_intent": dispute["payment_intent"]}
    line = {
        "object": "balance_transaction", "type": "adjustment", "currency": dispute["currency"],
        "created": dispute["created"], "source": source,
    }  # fmt: skip
    lines = [
        {**line, "id": "txn_" + dispute["id"].removeprefix("dp_"), **withdrawal,
         "reporting_category": "dispute"},
    ]  # fmt: skip
    if dispute["status"] == "won":
        lines.append(
            {**line, "id": "txn_back_" + dispute["id"].removeprefix("dp_"), "amount": amount,
             "fee": 0, "net": amount, "reporting_category": "dispute_reversal"}
        )  # fmt: skip
    return lines


def _payout(payout_id: str, *, amount: int, currency: str, now: int) -> dict[str, Any]:
    return {
        "id": "txn_" + payout_id.removeprefix("po_"), "object": "balance_transaction",
        "type": "payout", "reporting_category": "payout", "amount": -amount, "fee": 0,
        "net": -amount, "currency": currency, "created": now,
        "source": {"id": payout_id, "object": "payout"},
    }  # fmt: skip


def _truth(sim: Provider, settlement: Settlement) -> list[dict[str, Any]]:
    lines = [_charge(i, settlement) for i in sim.intents.values() if i["amount_received"]]
    lines += [_refund(r) for r in sim.refunds.values() if r["status"] == "succeeded"]
    lines += [line for d in sim.disputes.values() for line in _disputed(d)]
    return lines + settlement.payouts


def pay_out(
    sim: Provider, settlement: Settlement, *, currency: str, amount: int | None
) -> dict[str, Any] | None:
    """A payout of `amount` (default: the currency's available balance) to the bank; None
    when there is nothing to pay out."""
    if amount is None:
        lines = _truth(sim, settlement)
        amount = sum(line["net"] for line in lines if line["currency"] == currency)
    if amount <= 0:
        return None
    line = _payout("po_" + secrets.token_hex(12), amount=amount, currency=currency, now=sim.now())
    settlement.payouts.append(line)
    return {"id": line["source"]["id"], "object": "payout", "amount": -line["amount"],
            "currency": currency, "balance_transaction": line["id"]}  # fmt: skip


def report(sim: Provider, settlement: Settlement) -> list[dict[str, Any]]:
    """Every balance transaction, with the injected mismatches applied."""
    lines = _truth(sim, settlement)
    for n, fault in enumerate(settlement.inject):
        lines = _inject(lines, fault, n=n, now=sim.now())
    return lines


def _inject(
    lines: list[dict[str, Any]], fault: dict[str, Any], *, n: int, now: int
) -> list[dict[str, Any]]:
    """`lines` with one fault applied (the same each time the report is read)."""
    kind, delta = fault["kind"], int(fault.get("delta", 100))
    if kind == "unexpected":
        stray = {
            "id": f"txn_unexpected_{n}", "object": "balance_transaction",
            "type": "charge", "reporting_category": "charge", "amount": delta, "fee": 0,
            "net": delta, "currency": "usd",
            "created": now,
            "source": {"id": f"ch_unexpected_{n}", "object": "charge",
                       "payment_intent": f"pi_unexpected_{n}"},
        }  # fmt: skip
        return [*lines, stray]
    if kind == "payout":  # the payout reported again, its amount (negative) moved by delta
        again = [
            {**line, "id": f"{line['id']}_again", "amount": line["amount"] - delta,
             "net": line["net"] - delta}
            for line in lines if line["source"]["id"] == fault.get("payout")
        ]  # fmt: skip
        return lines + again
    pid = fault.get("payment_intent")
    if kind == "missing":
        return [line for line in lines if line["source"].get("payment_intent") != pid]
    wanted = "dispute" if kind == "dispute" else "charge"
    out: list[dict[str, Any]] = []
    done = False
    for line in lines:
        if (
            done
            or line["reporting_category"] != wanted
            or line["source"].get("payment_intent") != pid
        ):
            out.append(line)
            continue
        done = True
        if kind == "dispute":  # the withdrawal (negative) moved by delta
            amount = line["amount"] - delta
            out.append({**line, "amount": amount, "net": amount - line["fee"]})
        elif kind == "duplicate":
            out += [line, {**line, "id": f"{line['id']}_again"}]
        elif kind in ("over", "under"):
            amount = line["amount"] + (delta if kind == "over" else -delta)
            out.append({**line, "amount": amount, "net": amount - line["fee"]})
        elif kind == "currency":
            out.append({**line, "currency": "eur" if line["currency"] != "eur" else "usd"})
        else:  # fee
            out.append({**line, "fee": line["fee"] + delta, "net": line["net"] - delta})
    return out


def _listing(lines: list[dict[str, Any]], params: dict[str, str], expand: bool) -> dict[str, Any]:
    limit = max(1, min(100, int(params.get("limit", 10))))
    start = 0
    after = params.get("starting_after")
    if after:
        start = next((n + 1 for n, line in enumerate(lines) if line["id"] == after), len(lines))
    page = lines[start : start + limit]
    if not expand:
        page = [{**line, "source": line["source"]["id"]} for line in page]
    return {
        "object": "list",
        "url": "/v1/balance_transactions",
        "has_more": start + limit < len(lines),
        "data": page,
    }


def settlement_routes(app: FastAPI, sim: Provider) -> Settlement:
    """Serve the report and its controls; returns the settlement state."""
    settlement = Settlement()

    @app.get("/v1/balance_transactions")
    async def _list(request: Request) -> dict[str, Any]:
        query = request.query_params
        # Stripe's clients send lists as `expand[0]=…` (or `expand[]=…`).
        expand = any(k.startswith("expand") and v == "data.source" for k, v in query.multi_items())
        return _listing(report(sim, settlement), dict(query), expand)

    @app.post("/_sim/settlement")
    async def _control(request: Request) -> JSONResponse:
        body = await request.json()
        faults = body.get("inject", [])
        if any(f.get("kind") not in KINDS for f in faults):
            return JSONResponse({"error": f"kind must be one of {KINDS}"}, status_code=400)
        settlement.fee_bps = int(body.get("fee_bps", settlement.fee_bps))
        settlement.fee_fixed = int(body.get("fee_fixed", settlement.fee_fixed))
        settlement.inject = list(faults)
        return JSONResponse({"fee_bps": settlement.fee_bps, "inject": settlement.inject})

    @app.post("/_sim/payouts")
    async def _pay_out(request: Request) -> JSONResponse:
        body = await request.json()
        currency, amount = body.get("currency", "usd"), body.get("amount")
        if not isinstance(currency, str) or len(currency) != 3:
            return JSONResponse({"error": "currency must be 3 letters"}, status_code=400)
        if amount is not None and (type(amount) is not int or amount <= 0):
            return JSONResponse({"error": "amount must be a positive integer"}, status_code=400)
        payout = pay_out(sim, settlement, currency=currency.lower(), amount=amount)
        if payout is None:
            return JSONResponse({"error": "nothing available to pay out"}, status_code=400)
        return JSONResponse(payout)

    return settlement
