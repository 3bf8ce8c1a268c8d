"""Offline detection from missing data: beat finds devices that sent no reading for K times
their profile's expected interval (the shortest interval its metrics declare) and fires the
profile's offline rules; the device's next stored reading resolves them.

A device's last reading is the newest receipt time among its latest values (a device that
never sent one counts from its registration). Devices under maintenance, or revoked, are not
checked. The sweep locks each device row before it looks again, and a batch takes a share
lock on it before it resolves, so a reading committed meanwhile is never left behind a stale
alert.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from config import Settings
from tasks.iot.models import AlertRule, AlertState, Device
from tasks.iot.settings import IotSettings
from tasks.iot.transitions import Transition, record, transition

SWEEP_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('iot offline sweep'))")
LAST_SEEN = """coalesce((SELECT max(l.received_at) FROM iot_latest l
  WHERE l.device_id = d.id), d.created_at)"""
SILENT = text(f"""
WITH expected AS (
  SELECT p.id, min((m.value ->> 'interval')::float8) AS seconds
  FROM iot_profiles p CROSS JOIN LATERAL jsonb_each(p.metrics) m
  GROUP BY p.id HAVING min((m.value ->> 'interval')::float8) IS NOT NULL
)
SELECT d.id AS device_id, r.id AS rule_id, {LAST_SEEN} AS last_seen
FROM iot_devices d
JOIN expected e ON e.id = d.profile_id
JOIN iot_alert_rules r ON r.profile_id = d.profile_id AND r.kind = 'offline'
LEFT JOIN iot_alert_states s ON (s.rule_id, s.device_id) = (r.id, d.id)
WHERE NOT d.maintenance AND d.credential_id IS NOT NULL AND NOT coalesce(s.firing, false)
  AND {LAST_SEEN} < CAST(:now AS timestamptz) - make_interval(secs => :factor * e.seconds)
ORDER BY d.id, r.id
LIMIT :limit
""")
RECHECK = text(f"""
SELECT {LAST_SEEN} AS last_seen, d.maintenance FROM iot_devices d WHERE d.id = :device
""")
ENSURE_STATE = text(
    "INSERT INTO iot_alert_states (rule_id, device_id) VALUES (:rule, :device)"
    " ON CONFLICT DO NOTHING"
)


def sweep(session: Session, *, settings: Settings, now: datetime, limit: int = 1_000) -> int:
    """Fire the offline rules of up to `limit` silent devices; returns how many fired."""
    own = settings.section(IotSettings)
    session.execute(SWEEP_LOCK)
    silent = session.execute(
        SILENT, {"now": now, "factor": own.offline_after, "limit": limit}
    ).all()
    fired: list[Transition] = []
    for row in silent:
        # The device row, locked, waits out any batch of it in flight; then look again.
        session.execute(
            select(Device.id).where(Device.id == row.device_id).with_for_update(key_share=True)
        )
        again = session.execute(RECHECK, {"device": row.device_id}).one()
        if again.maintenance or again.last_seen > row.last_seen:
            continue
        session.execute(ENSURE_STATE, {"rule": row.rule_id, "device": row.device_id})
        state = session.get_one(
            AlertState, (row.rule_id, row.device_id), with_for_update=True, populate_existing=True
        )
        if state.firing:
            continue
        rule = session.get_one(AlertRule, row.rule_id)
        fired.append(
            transition(rule, state, kind="firing", ts=now, value=None, since=row.last_seen)
        )
    return record(session, fired, settings=settings)


def recover(session: Session, *, profile: str, device: str, at: datetime) -> list[Transition]:
    """Resolve the device's firing offline alerts: it sent a reading (received `at`); the
    caller records the transitions."""
    rules = session.scalars(
        select(AlertRule).where(AlertRule.profile_id == profile, AlertRule.kind == "offline")
    ).all()
    if not rules:
        return []
    session.execute(select(Device.id).where(Device.id == device).with_for_update(read=True))
    by_id = {r.id: r for r in rules}
    states = session.scalars(
        select(AlertState)
        .where(AlertState.device_id == device, AlertState.rule_id.in_(by_id), AlertState.firing)
        .order_by(AlertState.rule_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    return [
        transition(by_id[state.rule_id], state, kind="resolved", ts=at, value=None)
        for state in states
    ]
