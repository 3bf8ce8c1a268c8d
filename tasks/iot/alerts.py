"""Threshold alerts with hysteresis, evaluated on event time in the store's transaction.

A device's state per rule is a row locked for the evaluation, so concurrent batches of one
device take turns and a transition happens once; each transition sends exactly one
notification through the notifications domain, in the same transaction. Readings no newer
than the newest one evaluated (late data) do not move the state. A rule fires after
`consecutive` breaching readings in a row, or once the breach has lasted `for_seconds` of
event time; the breach's start is state too, so a restart neither forgets nor re-fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from config import Settings
from tasks.iot import offline
from tasks.iot.models import AlertRule, AlertState
from tasks.iot.transitions import transition

ENSURE_STATE = text(
    "INSERT INTO iot_alert_states (rule_id, device_id) VALUES (:rule, :device)"
    " ON CONFLICT DO NOTHING"
)


def _breached(rule: AlertRule, value: float) -> bool:
    assert rule.set_at is not None
    return value > rule.set_at if rule.direction == "above" else value < rule.set_at


def _cleared(rule: AlertRule, value: float) -> bool:
    assert rule.clear_at is not None
    return value <= rule.clear_at if rule.direction == "above" else value >= rule.clear_at


def _held(rule: AlertRule, state: AlertState, ts: datetime) -> bool:
    """Whether the breach has lasted long enough to fire, as of the reading at `ts`."""
    if rule.for_seconds is None:
        return state.streak >= rule.consecutive
    return state.breach_since is not None and (
        (ts - state.breach_since).total_seconds() >= rule.for_seconds
    )


def _step(state: AlertState, rule: AlertRule, ts: datetime, value: float) -> str | None:
    """Fold one reading into the state; the transition it causes, if any."""
    if state.firing:
        return "resolved" if _cleared(rule, value) else None
    if _breached(rule, value):
        state.streak += 1
        state.breach_since = state.breach_since or ts
    else:
        state.streak, state.breach_since = 0, None
    return "firing" if _held(rule, state, ts) else None


def evaluate(
    session: Session,
    *,
    device: str,
    profile: str,
    stored: Iterable[tuple[str, datetime, float | None]],
    received_at: datetime,
    settings: Settings,
) -> int:
    """Run the profile's rules over the batch's new readings; returns the transitions."""
    rules = list(
        session.scalars(
            select(AlertRule).where(AlertRule.profile_id == profile).order_by(AlertRule.id)
        )
    )
    stored = list(stored)
    if not rules or not stored:
        return 0
    by_metric: dict[str, list[tuple[datetime, float]]] = {}
    for metric, ts, value in stored:
        if value is not None:
            by_metric.setdefault(metric, []).append((ts, value))
    transitions = offline.recover(
        session,
        rules=[r for r in rules if r.kind == "offline"],
        device=device,
        at=received_at,
        settings=settings,
    )
    for rule in rules:
        readings = sorted(by_metric.get(rule.metric or "", [])) if rule.kind == "threshold" else []
        if not readings:
            continue
        session.execute(ENSURE_STATE, {"rule": rule.id, "device": device})
        state = session.get_one(AlertState, (rule.id, device), with_for_update=True)
        for ts, value in readings:
            if state.last_ts is not None and ts <= state.last_ts:
                continue
            state.last_ts = ts
            kind = _step(state, rule, ts, value)
            if kind is not None:
                transition(session, rule, state, kind=kind, ts=ts, value=value, settings=settings)
                transitions += 1
    return transitions
