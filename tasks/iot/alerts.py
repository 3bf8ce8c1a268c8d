"""Threshold alerts with hysteresis, evaluated on event time in the store's transaction.

A device's state per rule is a row locked for the evaluation, so concurrent batches of one
device take turns and a transition happens once; each transition sends exactly one
notification through the notifications domain, in the same transaction. Readings no newer
than the newest one evaluated (late data) do not move the state.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from config import Settings
from tasks.iot.models import AlertEvent, AlertRule, AlertState
from tasks.notifications.schemas import NotificationRequest
from tasks.notifications.service import submit

ENSURE_STATE = text(
    "INSERT INTO iot_alert_states (rule_id, device_id) VALUES (:rule, :device)"
    " ON CONFLICT DO NOTHING"
)


def _breached(rule: AlertRule, value: float) -> bool:
    return value > rule.set_at if rule.direction == "above" else value < rule.set_at


def _cleared(rule: AlertRule, value: float) -> bool:
    return value <= rule.clear_at if rule.direction == "above" else value >= rule.clear_at


def _notify(session: Session, rule: AlertRule, event: AlertEvent, *, settings: Settings) -> None:
    what = f"{event.device_id} {rule.metric} {event.value:g}"
    body = f"{rule.id} {event.kind} at {event.ts.isoformat()}: {what}"
    if event.duration is not None:
        body += f" (after {event.duration:.0f}s)"
    sent = submit(
        session,
        NotificationRequest(
            channel=rule.channel,
            to=rule.recipient,
            subject=f"[{event.kind}] {rule.id}: {what}" if rule.channel == "email" else None,
            body=body,
            data={"rule": rule.id, "device": event.device_id, "kind": event.kind},
        ),
        producer="iot",
        settings=settings,
    )
    event.notification_id = sent.id


def _transition(
    session: Session,
    rule: AlertRule,
    state: AlertState,
    *,
    kind: str,
    ts: datetime,
    value: float,
    settings: Settings,
) -> None:
    duration = (ts - state.since).total_seconds() if kind == "resolved" and state.since else None
    event = AlertEvent(
        rule_id=rule.id, device_id=state.device_id, kind=kind, ts=ts, value=value,
        duration=duration,
    )  # fmt: skip
    _notify(session, rule, event, settings=settings)
    session.add(event)
    state.firing = kind == "firing"
    state.since = ts if state.firing else None
    state.streak = 0


def evaluate(
    session: Session,
    *,
    device: str,
    profile: str,
    stored: Iterable[tuple[str, datetime, float | None]],
    settings: Settings,
) -> int:
    """Run the profile's rules over the batch's new readings; returns the transitions."""
    rules = list(
        session.scalars(
            select(AlertRule).where(AlertRule.profile_id == profile).order_by(AlertRule.id)
        )
    )
    if not rules:
        return 0
    by_metric: dict[str, list[tuple[datetime, float]]] = {}
    for metric, ts, value in stored:
        if value is not None:
            by_metric.setdefault(metric, []).append((ts, value))
    transitions = 0
    for rule in rules:
        readings = sorted(by_metric.get(rule.metric, []))
        if not readings:
            continue
        session.execute(ENSURE_STATE, {"rule": rule.id, "device": device})
        state = session.get_one(AlertState, (rule.id, device), with_for_update=True)
        for ts, value in readings:
            if state.last_ts is not None and ts <= state.last_ts:
                continue
            state.last_ts = ts
            if state.firing and _cleared(rule, value):
                _transition(session, rule, state, kind="resolved", ts=ts, value=value,
                            settings=settings)  # fmt: skip
                transitions += 1
            elif not state.firing:
                state.streak = state.streak + 1 if _breached(rule, value) else 0
                if state.streak >= rule.consecutive:
                    _transition(session, rule, state, kind="firing", ts=ts, value=value,
                                settings=settings)  # fmt: skip
                    transitions += 1
    return transitions
