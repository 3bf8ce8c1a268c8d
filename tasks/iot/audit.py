"""What operators read about the IoT domain: the fleet, how far ingestion is behind, alerts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.stats import oldest_ready_age
from tasks.iot.models import AlertEvent, AlertRule, AlertState, Batch, Device, Latest
from tasks.iot.schemas import QUEUE


def fleet(session: Session) -> list[dict[str, Any]]:
    """Every device: its profile, credential, newest reading and batches waiting to be stored."""
    newest = (
        select(Latest.device_id, func.max(Latest.ts).label("last_ts"))
        .group_by(Latest.device_id)
        .subquery()
    )
    waiting = (
        select(Batch.device_id, func.count().label("waiting"))
        .where(Batch.status == "received")
        .group_by(Batch.device_id)
        .subquery()
    )
    rows = session.execute(
        select(Device, newest.c.last_ts, waiting.c.waiting)
        .outerjoin(newest, newest.c.device_id == Device.id)
        .outerjoin(waiting, waiting.c.device_id == Device.id)
        .order_by(Device.id)
    ).all()
    return [
        {
            "device": d.id,
            "profile": d.profile_id,
            "credential": "revoked" if d.credential_id is None else "active",
            "last_reading": last,
            "waiting_batches": int(n or 0),
        }
        for d, last, n in rows
    ]


def lag(session: Session) -> dict[str, Any]:
    """Batches received and not yet stored, the oldest's age, and the iot queue's lag."""
    count, oldest = session.execute(
        select(func.count(), func.extract("epoch", func.now() - func.min(Batch.received_at))).where(
            Batch.status == "received"
        )
    ).one()
    return {
        "waiting_batches": int(count),
        "oldest_waiting_seconds": None if oldest is None else max(0.0, float(oldest)),
        "queue_oldest_ready_seconds": oldest_ready_age(session, QUEUE),
    }


def alerts(session: Session, *, recent: int) -> dict[str, list[dict[str, Any]]]:
    """The alerts firing now (oldest first), and the `recent` newest transitions."""
    firing = session.execute(
        select(AlertState, AlertRule.kind, AlertRule.metric)
        .join(AlertRule, AlertRule.id == AlertState.rule_id)
        .where(AlertState.firing)
        .order_by(AlertState.since, AlertState.rule_id, AlertState.device_id)
    ).all()
    events = session.scalars(select(AlertEvent).order_by(AlertEvent.id.desc()).limit(recent))
    return {
        "firing": [
            {
                "rule": s.rule_id,
                "kind": kind,
                "device": s.device_id,
                "metric": metric,
                "since": s.since,
            }
            for s, kind, metric in firing
        ],
        "recent": [
            {
                "at": e.at,
                "rule": e.rule_id,
                "device": e.device_id,
                "transition": e.kind,
                "ts": e.ts,
                "value": e.value,
                "duration": e.duration,
            }
            for e in events
        ],
    }
