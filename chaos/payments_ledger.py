"""What the payments tables and the provider's ground truth hold at the end of a run."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from config import Settings
from store.db import transaction

TERMINAL = frozenset({"succeeded", "canceled", "failed"})


@dataclass(frozen=True)
class IntentRow:
    """One local intent, as far as the invariants care."""

    id: str
    status: str
    amount_capturable: int
    amount_captured: int
    amount_refunded: int
    provider_ref: str | None
    history: tuple[str, ...]  # the status after each entry of its history, oldest first
    flow: str | None = None  # its `chaos_flow` metadata: the flow that created it


@dataclass(frozen=True)
class OperationRow:
    """One provider operation of an intent."""

    id: str
    intent_id: str
    kind: str
    status: str
    attempt: int


@dataclass(frozen=True)
class ProviderIntent:
    """One payment intent at the provider (its ground truth)."""

    id: str
    status: str
    amount_capturable: int
    amount_received: int
    refunded: int
    key: str  # the `switchyard_key` metadata: the attempt that made it


@dataclass
class PaymentSnapshot:
    """The intents, operations, open holds and books here, and the provider's truth."""

    intents: dict[str, IntentRow]
    operations: list[OperationRow]
    open_holds: dict[str, int]  # intent id -> the amount its unresolved holds keep
    imbalance: dict[str, tuple[int, int]]  # currency -> (posted, pending) debits - credits
    provider: list[ProviderIntent]
    unknown_asked: int = 0  # operations the provider was asked about again (asks > 0)
    webhook_events: Counter[str] = field(default_factory=Counter)  # status -> events


def _rows(session: Any, sql: str) -> list[Any]:
    return list(session.execute(text(sql)).all())


def truth(simulator: str) -> list[ProviderIntent]:
    """The simulator's ground truth: every payment intent with what was refunded of it."""
    found = httpx.get(f"{simulator}/_sim/truth", timeout=30).json()
    refunded: Counter[str] = Counter()
    for r in found["refunds"]:
        if r["status"] == "succeeded":
            refunded[r["payment_intent"]] += int(r["amount"])
    return [
        ProviderIntent(
            p["id"],
            p["status"],
            int(p["amount_capturable"]),
            int(p["amount_received"]),
            refunded[p["id"]],
            str(p.get("metadata", {}).get("switchyard_key", "")),
        )
        for p in found["payment_intents"]
    ]


def snapshot(settings: Settings, provider: list[ProviderIntent]) -> PaymentSnapshot:
    """Read the payments tables in one transaction (beside the provider's truth, read first)."""
    with transaction(settings) as s:
        history: dict[str, list[str]] = defaultdict(list)
        for r in _rows(s, "SELECT intent_id, to_status FROM pay_intent_events ORDER BY id"):
            history[r.intent_id].append(r.to_status)
        intents = {
            r.id: IntentRow(
                r.id,
                r.status,
                r.amount_capturable,
                r.amount_captured,
                r.amount_refunded,
                r.provider_ref,
                tuple(history[r.id]),
                r.flow,
            )
            for r in _rows(
                s,
                "SELECT id, status, amount_capturable, amount_captured, amount_refunded,"
                " provider_ref, metadata->>'chaos_flow' AS flow FROM pay_intents",
            )
        }
        operations = [
            OperationRow(r.id, r.intent_id, r.kind, r.status, r.attempt)
            for r in _rows(s, "SELECT id, intent_id, kind, status, attempt FROM pay_operations")
        ]
        holds = {
            r.account.removeprefix("intent:"): int(r.held)
            for r in _rows(
                s,
                "SELECT p.credit_account_id AS account, sum(p.amount) AS held"
                " FROM pay_transfers p WHERE p.kind = 'pending'"
                " AND p.credit_account_id LIKE 'intent:%' AND NOT EXISTS"
                " (SELECT 1 FROM pay_transfers r WHERE r.pending_id = p.id)"
                " GROUP BY p.credit_account_id",
            )
        }
        imbalance = {
            r.currency: (int(r.posted), int(r.pending))
            for r in _rows(s, "SELECT currency, posted, pending FROM pay_ledger_imbalance()")
            if r.posted or r.pending
        }
        asked = int(
            s.execute(text("SELECT count(*) FROM pay_operations WHERE asks > 0")).scalar_one()
        )
        events = Counter(
            {
                r.status: int(r.n)
                for r in _rows(
                    s, "SELECT status, count(*) AS n FROM pay_webhook_events GROUP BY status"
                )
            }
        )
    return PaymentSnapshot(intents, operations, holds, imbalance, provider, asked, events)


def open_exceptions(settings: Settings) -> list[tuple[str, str]]:
    """(kind, provider ref) of every reconciliation exception still open."""
    with transaction(settings) as s:
        return [
            (r.kind, r.provider_ref)
            for r in _rows(
                s,
                "SELECT kind, provider_ref FROM pay_recon_exceptions WHERE resolved_at IS NULL"
                " ORDER BY id",
            )
        ]
