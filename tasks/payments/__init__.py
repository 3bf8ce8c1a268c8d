"""Payments: intents, a double-entry ledger with holds, provider attempts and reconciliation."""

from __future__ import annotations

from config import Settings
from tasks.payments import models
from tasks.payments.schemas import (
    EXECUTE,
    EXPIRE,
    JANITOR,
    LEDGER_TICK,
    QUEUE,
    RECONCILE,
    WEBHOOK,
)
from tasks.payments.settings import PaymentSettings
from tasks.registry import Domain, Every


def _ledger_interval(settings: Settings) -> float:
    return settings.section(PaymentSettings).ledger_interval


def _recon_interval(settings: Settings) -> float:
    return settings.section(PaymentSettings).recon_interval


DOMAIN = Domain(
    name="payments",
    job_types=(LEDGER_TICK, EXECUTE, EXPIRE, JANITOR, WEBHOOK, RECONCILE),
    queues=(QUEUE,),
    scopes=("payments:write", "payments:read"),
    handlers="tasks.payments.jobs",
    routes=("tasks.payments.routes", "tasks.payments.webhook_routes"),
    metrics="tasks.payments.metrics",
    schedule={
        "payments-ledger": Every(job_type=LEDGER_TICK.name, seconds=_ledger_interval),
        "payments-expiry": Every(job_type=EXPIRE.name, seconds=_ledger_interval),
        "payments-janitor": Every(job_type=JANITOR.name, seconds=_ledger_interval),
        "payments-reconcile": Every(job_type=RECONCILE.name, seconds=_recon_interval),
    },
    settings=PaymentSettings,
    metadata=models.metadata,
    tables=(
        "pay_idempotency_keys",
        "pay_recon_exceptions",
        "pay_recon_runs",
        "pay_disputes",
        "pay_webhook_events",
        "pay_operations",
        "pay_intent_events",
        "pay_intents",
        "pay_hot_entries",
        "pay_transfers",
        "pay_accounts",
    ),
)
