"""The payments domain's handlers: parse, call the service, return a result."""

from __future__ import annotations

from typing import Any

from tasks.context import JobContext
from tasks.payments import (
    idempotency,
    ledger,
    operations,
    reconciliation,
    service,
    webhook_events,
)
from tasks.payments.gateways import gateway_for
from tasks.payments.schemas import (
    EXECUTE,
    EXPIRE,
    JANITOR,
    LEDGER_TICK,
    RECONCILE,
    WEBHOOK,
    ExecutePayload,
    WebhookPayload,
)
from tasks.registry import NoArguments, handles


@handles(LEDGER_TICK.name)
def ledger_tick(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Expire overdue holds, then fold hot-account entries into balances."""
    expired = ledger.expire_pending(ctx.session)
    return {"expired": expired, "rolled_up": ledger.roll_up_hot(ctx.session)}


@handles(EXECUTE.name)
def execute(ctx: JobContext, payload: ExecutePayload) -> dict[str, Any]:
    """Run one provider operation; an unknown outcome retries (asking the provider first)."""
    return operations.execute(
        ctx.session,
        payload.operation_id,
        recorder=ctx.autocommit,
        gateway=gateway_for(ctx.settings),
        settings=ctx.settings,
    )


@handles(EXPIRE.name)
def expire(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Cancel authorizations past their expiry; forget Idempotency-Keys past theirs."""
    return {
        "expired": service.expire_authorizations(ctx.session, settings=ctx.settings),
        "keys_forgotten": idempotency.forget_expired(ctx.session),
    }


@handles(JANITOR.name)
def janitor(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Enqueue a question to the provider for each operation unknown for too long."""
    return {"asked": service.ask_about_unknowns(ctx.session, settings=ctx.settings)}


@handles(WEBHOOK.name)
def webhook(ctx: JobContext, payload: WebhookPayload) -> dict[str, Any]:
    """Apply one recorded provider event (asking the provider about unknowns first)."""
    return webhook_events.process(
        ctx.session,
        payload.event_id,
        recorder=ctx.autocommit,
        gateway=gateway_for(ctx.settings),
        settings=ctx.settings,
    )


@handles(RECONCILE.name)
def reconcile(ctx: JobContext, payload: NoArguments) -> dict[str, Any]:
    """Reconcile the provider's settlement report (a provider that keeps none is skipped)."""
    return reconciliation.run(ctx.session, settings=ctx.settings)
