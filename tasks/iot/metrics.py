"""The IoT domain's figures for `/metrics`, per profile, read from its tables at each scrape
(so any API process answers the same): readings by outcome, ingestion lag, the roll-ups'
pending work, alerts firing."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from tasks.iot import ingest_counts

WAITING = text("""
SELECT d.profile_id AS profile, count(*) AS n,
  extract(epoch FROM now() - min(b.received_at)) AS age
FROM iot_batches b JOIN iot_devices d ON d.id = b.device_id
WHERE b.status = 'received' GROUP BY d.profile_id
""")
PENDING = text("""
SELECT d.profile_id AS profile, count(*) AS n,
  extract(epoch FROM now() - min(t.touched_at)) AS age
FROM iot_rollup_dirty t JOIN iot_devices d ON d.id = t.device_id GROUP BY d.profile_id
""")
FIRING = text("""
SELECT r.profile_id AS profile, r.kind, count(*) AS n
FROM iot_alert_states s JOIN iot_alert_rules r ON r.id = s.rule_id
WHERE s.firing GROUP BY r.profile_id, r.kind
""")
KINDS = ("threshold", "offline")


def _count_and_age(session: Session, query: TextClause) -> dict[str, tuple[int, float]]:
    return {r.profile: (int(r.n), max(0.0, float(r.age or 0))) for r in session.execute(query)}


def _pair(
    profiles: list[str], rows: dict[str, tuple[int, float]], count_name: str, count_help: str,
    age_name: str, age_help: str,
) -> Iterator[Metric]:  # fmt: skip
    count = GaugeMetricFamily(count_name, count_help, labels=["profile"])
    age = GaugeMetricFamily(age_name, age_help, labels=["profile"])
    for profile in profiles:
        n, seconds = rows.get(profile, (0, 0.0))
        count.add_metric([profile], n)
        age.add_metric([profile], seconds)
    yield from (count, age)


def collect(session: Session) -> Iterator[Metric]:
    """Yield the families, read now, every profile in each (zeros included)."""
    totals = ingest_counts.totals(session)
    profiles = list(totals)
    readings = CounterMetricFamily(
        "switchyard_iot_readings",
        "Readings by outcome: accepted (stored), duplicate, conflicting, late (stored older"
        " than the metric's latest), future (clamped or refused), refused.",
        labels=["profile", "outcome"],
    )
    for profile, counts in totals.items():
        for outcome, n in counts.items():
            readings.add_metric([profile, outcome], n)
    yield readings
    yield from _pair(
        profiles, _count_and_age(session, WAITING), "switchyard_iot_batches_waiting",
        "Batches received, not yet stored.", "switchyard_iot_ingest_lag_seconds",
        "Age of the oldest batch received and not yet stored (0 when none).",
    )  # fmt: skip
    yield from _pair(
        profiles, _count_and_age(session, PENDING), "switchyard_iot_rollup_pending_buckets",
        "Minute buckets stored batches touched, not yet folded into the roll-ups.",
        "switchyard_iot_rollup_watermark_age_seconds",
        "How long the oldest touched bucket has waited to be folded (0 when none).",
    )  # fmt: skip
    by_kind = {(r.profile, r.kind): int(r.n) for r in session.execute(FIRING)}
    firing = GaugeMetricFamily(
        "switchyard_iot_alerts_firing", "Alert states firing.", labels=["profile", "kind"]
    )
    for profile in profiles:
        for kind in KINDS:
            firing.add_metric([profile, kind], by_kind.get((profile, kind), 0))
    yield firing
