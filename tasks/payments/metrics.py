"""The payments domain's gauges, read from its tables at each scrape of `/metrics`.

Intents per status, provider operations whose outcome is unknown and the age of the oldest,
open reconciliation exceptions per type, and the ledger's net debits minus credits per
currency and balance (posted, pending) — zero unless the books are broken. Every status and
every exception type is exported, at 0 when there is none, so that alerts see a series.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Metric
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tasks.payments import ledger
from tasks.payments.models import Intent, Operation, ReconException
from tasks.payments.settlement import Kind
from tasks.payments.states import Status


def collect(session: Session) -> Iterator[Metric]:
    """Yield the gauges, read now."""
    by_status = _counts(session, select(Intent.status, func.count()).group_by(Intent.status))
    intents = GaugeMetricFamily(
        "switchyard_payments_intents", "Payment intents by status.", labels=["status"]
    )
    for status in Status:
        intents.add_metric([status.value], by_status.get(status.value, 0))
    yield intents
    count, oldest = session.execute(
        select(
            func.count(), func.extract("epoch", func.now() - func.min(Operation.created_at))
        ).where(Operation.status == "unknown")
    ).one()
    yield GaugeMetricFamily(
        "switchyard_payments_unknown_attempts",
        "Provider calls whose outcome is not known yet (the janitor asks about them).",
        value=count,
    )
    yield GaugeMetricFamily(
        "switchyard_payments_unknown_oldest_seconds",
        "Age of the oldest operation whose outcome is unknown (0 when none).",
        value=float(oldest or 0),
    )
    open_kinds = _counts(
        session,
        select(ReconException.kind, func.count())
        .where(ReconException.resolved_at.is_(None))
        .group_by(ReconException.kind),
    )
    recon = GaugeMetricFamily(
        "switchyard_payments_recon_exceptions_open",
        "Reconciliation exceptions no operator has resolved, by type.",
        labels=["kind"],
    )
    for kind in Kind:
        recon.add_metric([kind.value], open_kinds.get(kind.value, 0))
    yield recon
    net = GaugeMetricFamily(
        "switchyard_payments_ledger_imbalance",
        "Debits minus credits per currency and balance: 0 unless the ledger is broken.",
        labels=["currency", "balance"],
    )
    for currency, (posted, pending) in sorted(ledger.net_by_currency(session).items()):
        net.add_metric([currency, "posted"], posted)
        net.add_metric([currency, "pending"], pending)
    yield net


def _counts(session: Session, query: Select[str, int]) -> dict[str, int]:
    return {name: count for name, count in session.execute(query).tuples()}
