"""Reconciliation: the provider's settlement report matched against the intents (see
`settlement`), its payouts booked in the ledger (see `payouts`), its differences recorded as
typed exceptions, provider events no operation of
ours explains raised as `unexplained` ones, and operators resolving them.

An exception stays open until an operator resolves it; the same difference is not recorded
twice while it is open (one open `unexplained` per provider ref: a later such event of the
same intent is kept, marked `unexplained`, in `pay_webhook_events`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from config import Settings
from errors import ConflictError, NotFoundError
from tasks.payments import payouts, settlement
from tasks.payments.gateway import SettlementLine
from tasks.payments.gateways import gateway_for
from tasks.payments.models import Intent, ReconException, ReconRun, WebhookEvent
from tasks.payments.settings import PaymentSettings


class Resolution(StrEnum):
    """What an operator decided about an exception."""

    PROVIDER_CORRECTED = "provider_corrected"  # the provider fixed its report
    LEDGER_CORRECTED = "ledger_corrected"  # we fixed our side
    WRITTEN_OFF = "written_off"  # accepted as a loss or gain
    FALSE_ALARM = "false_alarm"


# The exceptions of one run in one statement (`rows`: a JSON array), each skipped while the
# same difference is open; returns the ids recorded.
RECORD = text(
    "INSERT INTO pay_recon_exceptions (run_id, kind, provider_ref, intent_id, expected, actual,"
    " detail) SELECT :run, kind, provider_ref, intent_id, expected, actual, detail"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(kind text, provider_ref text,"
    " intent_id text, expected bigint, actual bigint, detail text)"
    " ON CONFLICT (kind, provider_ref) WHERE resolved_at IS NULL DO NOTHING RETURNING id"
)


@dataclass(frozen=True)
class Summary:
    """One run: lines read, intents checked, exceptions found and newly recorded, payouts
    newly booked."""

    run_id: int
    lines: int
    intents: int
    found: int
    recorded: int
    payouts: int


def reconcile(
    session: Session,
    report: Iterable[SettlementLine],
    *,
    overrides: Mapping[str, int],
    settle_after: float,
) -> Summary:
    """Stage and match the report, book its new payouts, and record its exceptions (one open
    per difference)."""
    lines = settlement.stage(session, report, overrides=overrides)
    now = session.scalar(select(func.now()))
    assert now is not None
    before = now - timedelta(seconds=settle_after)
    found = settlement.match(session, settled_before=before)
    paid_out, unbooked = payouts.book(session)
    found += unbooked
    run = ReconRun(
        lines=lines, intents=settlement.booked(session, settled_before=before),
        exceptions=len(found),
    )  # fmt: skip
    session.add(run)
    session.flush()
    rows = json.dumps([{**asdict(m), "kind": m.kind.value} for m in found])
    recorded = len(session.execute(RECORD, {"run": run.id, "rows": rows}).all())
    return Summary(run.id, lines, run.intents, len(found), recorded, paid_out)


def run(session: Session, *, settings: Settings) -> dict[str, Any]:
    """Reconcile the configured provider's report now (a provider that keeps none is skipped)."""
    cfg = settings.section(PaymentSettings)
    report = gateway_for(settings).settlement()
    if report is None:
        return {"skipped": "the provider keeps no settlement report"}
    summary = reconcile(
        session, report, overrides=cfg.provider_exponents, settle_after=cfg.recon_settle_after
    )
    return asdict(summary)


def raise_unexplained(session: Session, event: WebhookEvent, intent: Intent) -> bool:
    """Record the event as an `unexplained` exception of the intent (its outcome as detail);
    False if one is open for the intent already."""
    raised = session.execute(
        insert(ReconException)
        .values(
            webhook_event_id=event.id,
            kind=settlement.Kind.UNEXPLAINED.value,
            provider_ref=intent.provider_ref or event.object_id or intent.id,
            intent_id=intent.id,
            detail=f"{event.type} {event.id}: {event.outcome}"[:500],
        )
        .on_conflict_do_nothing(
            index_elements=["kind", "provider_ref"],
            index_where=ReconException.resolved_at.is_(None),
        )
        .returning(ReconException.id)
    ).first()
    return raised is not None


class ReconExceptionNotFoundError(NotFoundError):
    """No reconciliation exception of that id."""

    code = "recon_exception_not_found"


class ReconExceptionResolvedError(ConflictError):
    """The exception was already resolved (a resolution is final)."""

    code = "recon_exception_resolved"


def resolve(
    session: Session, exception_id: int, *, resolution: Resolution, by: str, note: str
) -> ReconException:
    """Close an open exception with who decided what and why (kept; never changed after)."""
    row = session.get(ReconException, exception_id)
    if row is None:
        raise ReconExceptionNotFoundError(f"no reconciliation exception {exception_id}")
    moved = session.execute(
        update(ReconException)
        .where(ReconException.id == exception_id, ReconException.resolved_at.is_(None))
        .values(resolved_at=func.now(), resolution=resolution.value, resolved_by=by, note=note)
        .returning(ReconException.id)
    ).first()
    if moved is None:
        raise ReconExceptionResolvedError(f"exception {exception_id} is already resolved")
    session.refresh(row)
    return row


def open_exceptions(session: Session) -> list[ReconException]:
    """The exceptions no operator has resolved, oldest first."""
    stmt = select(ReconException).where(ReconException.resolved_at.is_(None))
    return list(session.scalars(stmt.order_by(ReconException.id)))
