"""An alert's transition (firing, resolved): recorded with exactly one notification through
the notifications domain, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from config import Settings
from tasks.iot.models import AlertEvent
from tasks.notifications.schemas import NotificationRequest
from tasks.notifications.service import submit


class Rule(Protocol):
    """What a transition reads of its rule (an `AlertRule`, or a threshold rule read in bulk)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def metric(self) -> str | None: ...
    @property
    def channel(self) -> str: ...
    @property
    def recipient(self) -> str: ...


class Standing(Protocol):
    """Where a device stands with a rule, locked by the caller (an `AlertState`, or its copy
    that a set-based evaluation writes back)."""

    device_id: str
    firing: bool
    streak: int
    since: datetime | None
    breach_since: datetime | None


def _what(rule: Rule, event: AlertEvent, state: Standing) -> str:
    if rule.kind == "offline":
        return f"{event.device_id} back online" if event.kind == "resolved" else (
            f"{event.device_id} offline, no reading since {(state.since or event.ts).isoformat()}"
        )  # fmt: skip
    return f"{event.device_id} {rule.metric} {event.value:g}"


def _notify(
    session: Session, rule: Rule, event: AlertEvent, what: str, *, settings: Settings
) -> None:
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


def transition(
    session: Session,
    rule: Rule,
    state: Standing,
    *,
    kind: str,
    ts: datetime,
    value: float | None,
    since: datetime | None = None,
    settings: Settings,
) -> None:
    """Move `state` (locked by the caller) to `kind` at `ts`; a firing state holds `since`
    (default `ts`), and the resolution's duration is measured from it."""
    duration = (ts - state.since).total_seconds() if kind == "resolved" and state.since else None
    event = AlertEvent(
        rule_id=rule.id, device_id=state.device_id, kind=kind, ts=ts, value=value,
        duration=duration,
    )  # fmt: skip
    state.firing = kind == "firing"
    state.since = (since or ts) if state.firing else None
    _notify(session, rule, event, _what(rule, event, state), settings=settings)
    session.add(event)
    state.streak = 0
    state.breach_since = None
