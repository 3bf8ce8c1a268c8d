"""The payments domain's job types and their payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.registry import JobSpec

QUEUE = "payments"


class LedgerTickPayload(BaseModel):
    """Beat's ledger upkeep takes no arguments."""

    model_config = ConfigDict(extra="forbid")


LEDGER_TICK = JobSpec(
    "payments.ledger_tick",
    LedgerTickPayload,
    QUEUE,
    "Expires holds past their timeout and rolls up the hot accounts' entries.",
)


class ExecutePayload(BaseModel):
    """Run one provider operation (its row holds everything else)."""

    model_config = ConfigDict(extra="forbid")
    operation_id: str = Field(min_length=1, max_length=40)


EXECUTE = JobSpec(
    "payments.execute",
    ExecutePayload,
    QUEUE,
    "Calls the provider for one operation (authorize, capture, refund, cancel) and applies it.",
)


class ExpirePayload(BaseModel):
    """Beat's authorization expiry takes no arguments."""

    model_config = ConfigDict(extra="forbid")


EXPIRE = JobSpec(
    "payments.expire_authorizations",
    ExpirePayload,
    QUEUE,
    "Cancels authorizations past their expiry and voids their holds.",
)


class JanitorPayload(BaseModel):
    """Beat's janitor takes no arguments."""

    model_config = ConfigDict(extra="forbid")


JANITOR = JobSpec(
    "payments.janitor",
    JanitorPayload,
    QUEUE,
    "Asks the provider again about operations whose outcome is still unknown, with backoff.",
)


class WebhookPayload(BaseModel):
    """Apply one recorded provider webhook event (its row holds the event)."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=255)


WEBHOOK = JobSpec(
    "payments.webhook",
    WebhookPayload,
    QUEUE,
    "Applies one provider webhook event, only as a legal transition.",
)


class ReconcilePayload(BaseModel):
    """Beat's reconciliation takes no arguments."""

    model_config = ConfigDict(extra="forbid")


RECONCILE = JobSpec(
    "payments.reconcile",
    ReconcilePayload,
    QUEUE,
    "Matches the provider's settlement report against the intents and records every exception.",
)
