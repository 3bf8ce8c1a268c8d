"""An alert's transition (firing, resolved): recorded with exactly one notification through
the notifications domain, in the caller's transaction; a batch's transitions are sent
together, so the recipient is locked and its schedule read once per batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from config import Settings
from tasks.iot.models import AlertEvent
from tasks.notifications.schemas import NotificationRequest
from tasks.notifications.service import submit_many


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


@dataclass(frozen=True)
class Transition:
    """A transition made, waiting for `record` to send its notification and store it."""

    rule: Rule
    event: AlertEvent
    what: str


def _request(t: Transition) -> NotificationRequest:
    rule, event = t.rule, t.event
    body = f"{rule.id} {event.kind} at {event.ts.isoformat()}: {t.what}"
    if event.duration is not None:
        body += f" (after {event.duration:.0f}s)"
    return NotificationRequest(
        channel=rule.channel,
        to=rule.recipient,
        subject=f"[{event.kind}] {rule.id}: {t.what}" if rule.channel == "email" else None,
        body=body,
        data={"rule": rule.id, "device": event.device_id, "kind": event.kind},
    )


def transition(
    rule: Rule,
    state: Standing,
    *,
    kind: str,
    ts: datetime,
    value: float | None,
    since: datetime | None = None,
) -> Transition:
    """Move `state` (locked by the caller) to `kind` at `ts`; a firing state holds `since`
    (default `ts`), and the resolution's duration is measured from it. `record` the result in
    the same transaction."""
    duration = (ts - state.since).total_seconds() if kind == "resolved" and state.since else None
    event = AlertEvent(
        rule_id=rule.id, device_id=state.device_id, kind=kind, ts=ts, value=value,
        duration=duration,
    )  # fmt: skip
    state.firing = kind == "firing"
    state.since = (since or ts) if state.firing else None
    what = _what(rule, event, state)
    state.streak = 0
    state.breach_since = None
    return Transition(rule, event, what)


def record(session: Session, transitions: Sequence[Transition], *, settings: Settings) -> int:
    """Store the transitions, each with exactly one notification, all sent in one go; returns
    how many."""
    if not transitions:
        return 0
    sent = submit_many(
        session, [_request(t) for t in transitions], producer="iot", settings=settings
    )
    for t, note in zip(transitions, sent, strict=True):
        t.event.notification_id = note.id
    session.add_all([t.event for t in transitions])
    return len(transitions)
