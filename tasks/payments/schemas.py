"""The payments domain's job types and their payloads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tasks.registry import JobSpec, NoArguments

QUEUE = "payments"


LEDGER_TICK = JobSpec(
    "payments.ledger_tick",
    NoArguments,
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


EXPIRE = JobSpec(
    "payments.expire_authorizations",
    NoArguments,
    QUEUE,
    "Cancels authorizations past their expiry and voids their holds.",
)


JANITOR = JobSpec(
    "payments.janitor",
    NoArguments,
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


RECONCILE = JobSpec(
    "payments.reconcile",
    NoArguments,
    QUEUE,
    "Matches the provider's settlement report against the intents and records every exception.",
)
