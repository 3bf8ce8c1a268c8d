"""An alert's transition (firing, resolved): recorded with exactly one notification through
the notifications domain, in the caller's transaction; a batch's transitions are sent
together, so the recipient is locked and its schedule read once per batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

from config import Settings
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


@dataclass(frozen=True)
class Transition:
    """A transition made (an `iot_alert_events` row to be), waiting for `record` to send its
    notification and store it."""

    rule: Rule
    device_id: str
    kind: str
    ts: datetime
    value: float | None
    duration: float | None
    what: str


# One JSON document for all of a batch's events: one short statement however many there are.
INSERT_EVENTS = text("""
INSERT INTO iot_alert_events (rule_id, device_id, kind, ts, value, duration, notification_id)
SELECT rule_id, device_id, kind, ts, value, duration, notification_id
FROM json_populate_recordset(NULL::iot_alert_events, CAST(:rows AS json)) WITH ORDINALITY AS e
ORDER BY e.ordinality
""")


def _what(rule: Rule, state: Standing, *, kind: str, value: float | None, ts: datetime) -> str:
    if rule.kind == "offline":
        return f"{state.device_id} back online" if kind == "resolved" else (
            f"{state.device_id} offline, no reading since {(state.since or ts).isoformat()}"
        )  # fmt: skip
    return f"{state.device_id} {rule.metric} {value:g}"


def _request(t: Transition) -> NotificationRequest:
    rule = t.rule
    body = f"{rule.id} {t.kind} at {t.ts.isoformat()}: {t.what}"
    if t.duration is not None:
        body += f" (after {t.duration:.0f}s)"
    return NotificationRequest(
        channel=rule.channel,
        to=rule.recipient,
        subject=f"[{t.kind}] {rule.id}: {t.what}" if rule.channel == "email" else None,
        body=body,
        data={"rule": rule.id, "device": t.device_id, "kind": t.kind},
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
    state.firing = kind == "firing"
    state.since = (since or ts) if state.firing else None
    what = _what(rule, state, kind=kind, value=value, ts=ts)
    state.streak = 0
    state.breach_since = None
    return Transition(rule, state.device_id, kind, ts, value, duration, what)


def record(session: Session, transitions: Sequence[Transition], *, settings: Settings) -> int:
    """Store the transitions, in order, each with exactly one notification, all sent in one
    go; returns how many."""
    if not transitions:
        return 0
    sent = submit_many(
        session, [_request(t) for t in transitions], producer="iot", settings=settings
    )
    rows = [
        {"rule_id": t.rule.id, "device_id": t.device_id, "kind": t.kind, "ts": t.ts,
         "value": t.value, "duration": t.duration, "notification_id": note.id}
        for t, note in zip(transitions, sent, strict=True)
    ]  # fmt: skip
    session.execute(INSERT_EVENTS, {"rows": json.dumps(rows, default=str)})
    return len(transitions)
