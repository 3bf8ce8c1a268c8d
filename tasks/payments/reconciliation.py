"""Reconciliation: the provider's settlement report matched against the intents, line by line.

Per payment intent, the report's charges, refunds and fees (in ISO minor units) must equal
what the intent recorded as captured, refunded and charged as fee, in its currency. Every
difference is a typed exception: `missing` (captured here, not in the report), `unexpected`
(in the report, no intent here), `over`/`under` (the report settles more/less than was
captured or refunded), `currency_mismatch`, `fee_mismatch`, and `duplicate` (one charge
settled twice). An exception stays open until an operator resolves it; the same difference is
not recorded twice while it is open. `match` is pure; `reconcile` reads and writes the ledger.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from config import Settings
from errors import ConflictError, NotFoundError
from tasks.payments.currencies import exponent, from_provider
from tasks.payments.gateway import SettlementLine
from tasks.payments.gateways import gateway_for
from tasks.payments.models import Intent, ReconException, ReconRun
from tasks.payments.settings import PaymentSettings


class Kind(StrEnum):
    """The types of reconciliation exception."""

    MISSING = "missing"
    UNEXPECTED = "unexpected"
    OVER = "over"
    UNDER = "under"
    CURRENCY = "currency_mismatch"
    FEE = "fee_mismatch"
    DUPLICATE = "duplicate"


class Resolution(StrEnum):
    """What an operator decided about an exception."""

    PROVIDER_CORRECTED = "provider_corrected"  # the provider fixed its report
    LEDGER_CORRECTED = "ledger_corrected"  # we fixed our side
    WRITTEN_OFF = "written_off"  # accepted as a loss or gain
    FALSE_ALARM = "false_alarm"


@dataclass(frozen=True)
class Booked:
    """What one intent recorded, in ISO minor units."""

    intent_id: str
    provider_ref: str
    currency: str
    captured: int
    refunded: int
    fee: int


@dataclass(frozen=True)
class Line:
    """A settlement line in ISO minor units (amount positive, `kind` charge or refund)."""

    id: str
    kind: str
    provider_ref: str | None
    amount: int
    fee: int
    currency: str


@dataclass(frozen=True)
class Mismatch:
    """One difference between the report and the intents."""

    kind: Kind
    provider_ref: str
    intent_id: str | None = None
    expected: int | None = None
    actual: int | None = None
    detail: str = ""


def match(lines: Sequence[Line], booked: Mapping[str, Booked]) -> list[Mismatch]:
    """Every difference between the report's `lines` and the `booked` intents (by provider
    ref); an intent of `booked` with captured money and no line is `missing`."""
    by_ref: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        if line.provider_ref and line.kind in ("charge", "refund"):
            by_ref[line.provider_ref].append(line)
    found: list[Mismatch] = []
    for ref, group in by_ref.items():
        intent = booked.get(ref)
        if intent is None:
            total = sum(line.amount for line in group if line.kind == "charge")
            found.append(Mismatch(Kind.UNEXPECTED, ref, actual=total, detail="no such intent"))
            continue
        found += _compare(intent, group)
    for ref, intent in booked.items():
        if ref not in by_ref and intent.captured:
            found.append(
                Mismatch(Kind.MISSING, ref, intent.intent_id, expected=intent.captured, actual=0)
            )
    return found


def _compare(intent: Booked, group: list[Line]) -> list[Mismatch]:
    if len(group) == 1 and not intent.refunded:  # the common case, checked in one step
        line = group[0]
        if (line.kind, line.currency, line.amount, line.fee) == (
            "charge", intent.currency, intent.captured, intent.fee,
        ):  # fmt: skip
            return []
    ref, iid = intent.provider_ref, intent.intent_id
    foreign = sorted({line.currency for line in group} - {intent.currency})
    if foreign:
        return [
            Mismatch(Kind.CURRENCY, ref, iid, detail=f"{intent.currency} here, {foreign} there")
        ]
    charges = [line for line in group if line.kind == "charge"]
    found: list[Mismatch] = []
    if len(charges) > 1 and len({(c.amount, c.fee) for c in charges}) == 1:
        # The same charge settled more than once (a multi-capture intent's charges differ).
        extra = sum(c.amount for c in charges[1:])
        found.append(
            Mismatch(
                Kind.DUPLICATE,
                ref,
                iid,
                expected=intent.captured,
                actual=intent.captured + extra,
                detail=f"{len(charges)} lines",
            )
        )
        charges = charges[:1]
    for label, expected, actual in (
        ("charges", intent.captured, sum(c.amount for c in charges)),
        ("refunds", intent.refunded, sum(line.amount for line in group if line.kind == "refund")),
    ):
        if actual != expected:
            kind = Kind.OVER if actual > expected else Kind.UNDER
            found.append(Mismatch(kind, ref, iid, expected=expected, actual=actual, detail=label))
    fee = sum(c.fee for c in charges)
    if charges and fee != intent.fee:  # no charge at all is already `under`
        found.append(Mismatch(Kind.FEE, ref, iid, expected=intent.fee, actual=fee))
    return found


def to_lines(
    session: Session, report: Iterable[SettlementLine], *, overrides: Mapping[str, int]
) -> list[Line]:
    """The report in ISO minor units (refunds positive)."""
    exponents: dict[str, tuple[int, bool]] = {}  # ISO exponent, and whether the provider's differs
    lines = []
    for raw in report:
        cur = raw.currency
        if cur not in exponents:
            iso_exponent = exponent(session, cur)
            exponents[cur] = (iso_exponent, overrides.get(cur, iso_exponent) != iso_exponent)
        iso_exponent, shifted = exponents[cur]
        amount, fee = abs(raw.amount), raw.fee
        if shifted:  # rare (ISK, UGX at Stripe): converted exactly, or refused
            amount, fee = (
                from_provider(v, cur, iso_exponent=iso_exponent, overrides=overrides)
                for v in (amount, fee)
            )
        lines.append(Line(raw.id, raw.kind, raw.provider_ref, amount, fee, cur))
    return lines


def booked_intents(session: Session, *, settled_before: datetime) -> dict[str, Booked]:
    """The intents with a provider ref that last moved before `settled_before` (six columns
    each: loading whole ORM rows cost a report of 20,000 lines three quarters of its time)."""
    rows = session.execute(
        select(
            Intent.id, Intent.provider_ref, Intent.currency, Intent.amount_captured,
            Intent.amount_refunded, Intent.fee,
        ).where(Intent.provider_ref.is_not(None), Intent.updated_at < settled_before)
    )  # fmt: skip
    return {
        ref: Booked(iid, ref, cur, captured, refunded, fee)
        for iid, ref, cur, captured, refunded, fee in rows
        if ref
    }


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
    """One run: lines read, intents checked, exceptions found and newly recorded."""

    run_id: int
    lines: int
    intents: int
    found: int
    recorded: int


def reconcile(
    session: Session,
    report: Iterable[SettlementLine],
    *,
    overrides: Mapping[str, int],
    settle_after: float,
) -> Summary:
    """Match the report and record its exceptions (one open exception per difference)."""
    lines = to_lines(session, report, overrides=overrides)
    now = session.scalar(select(func.now()))
    assert now is not None
    booked = booked_intents(session, settled_before=now - timedelta(seconds=settle_after))
    # An intent too recent to be expected in the report may still appear there: known, not
    # unexpected, and compared only when it is old enough.
    refs = {line.provider_ref for line in lines if line.provider_ref}
    recent = set(
        session.scalars(
            select(Intent.provider_ref).where(Intent.provider_ref.in_(refs - set(booked)))
        )
    )
    found = [m for m in match(lines, booked) if m.provider_ref not in recent]
    run = ReconRun(lines=len(lines), intents=len(booked), exceptions=len(found))
    session.add(run)
    session.flush()
    rows = json.dumps([{**asdict(m), "kind": m.kind.value} for m in found])
    recorded = len(session.execute(RECORD, {"run": run.id, "rows": rows}).all())
    return Summary(run.id, len(lines), len(booked), len(found), recorded)


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
