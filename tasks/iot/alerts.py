"""Threshold alerts with hysteresis, evaluated on event time in the store's transaction.

A device's state per rule is a row locked for the evaluation, so concurrent batches of one
device take turns and a transition happens once; each transition sends exactly one
notification through the notifications domain, in the same transaction. Readings no newer
than the newest one evaluated (late data) do not move the state. A rule fires after
`consecutive` breaching readings in a row, or once the breach has lasted `for_seconds` of
event time; the breach's start is state too, so a restart neither forgets nor re-fires.

Evaluation is set-based: whatever the number of rules, a batch costs a handful of statements
plus its transitions. A rule whose new readings cannot move it (none breaches while it is
quiet, none clears while it fires) is settled from the series' extremes without walking them:
in the server (SETTLE) when every reading of the batch is new to it, the usual case, else in
the fold (`Series.unmoving`); only the rest are read, folded reading by reading and written
back.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import accumulate

from sqlalchemy import text
from sqlalchemy.orm import Session

from config import Settings
from tasks.iot import offline
from tasks.iot.transitions import record, transition

RULES = text("""
SELECT exists(SELECT FROM iot_alert_rules WHERE profile_id = :profile AND kind = 'offline'),
  (SELECT count(*) FROM iot_alert_rules
   WHERE profile_id = :profile AND kind = 'threshold' AND metric = ANY(:metrics))
""")
# Batches of one device take turns from here to their commit: their statements lock the
# device's states in whatever order, never in a cycle, and no other makes the device's
# threshold states, so the count of the states found says whether any is missing.
LOCK_DEVICE = text("SELECT pg_advisory_xact_lock(hashtextextended('iot alerts:' || :device, 0))")
# The missing states, made as SETTLE would leave them (at the metric's newest reading) when no
# reading breaches; the rest are made fresh, for the fold.
MAKE_STATES = text("""
INSERT INTO iot_alert_states (rule_id, device_id, last_ts)
SELECT r.id, :device, CASE WHEN CASE WHEN r.direction = 'above' THEN m.highest <= r.set_at
                                     ELSE m.lowest >= r.set_at END THEN m.newest END
FROM iot_alert_rules r JOIN unnest(CAST(:metrics AS text[]), CAST(:newest AS timestamptz[]),
  CAST(:highest AS float8[]), CAST(:lowest AS float8[])) AS m(metric, newest, highest, lowest)
  ON r.metric = m.metric
WHERE r.profile_id = :profile AND r.kind = 'threshold'
ORDER BY r.id
ON CONFLICT DO NOTHING
RETURNING rule_id, last_ts IS NOT NULL
""")
# `Series.unmoving` for the rules all of whose new readings are the batch's: quiet, and no
# reading breaches; firing, and none clears. They move to the metric's newest reading.
SETTLE = text("""
UPDATE iot_alert_states s SET last_ts = m.newest, streak = 0, breach_since = NULL
FROM iot_alert_rules r, unnest(CAST(:metrics AS text[]), CAST(:oldest AS timestamptz[]),
  CAST(:newest AS timestamptz[]), CAST(:highest AS float8[]), CAST(:lowest AS float8[]))
  AS m(metric, oldest, newest, highest, lowest)
WHERE s.device_id = :device AND r.id = s.rule_id AND r.profile_id = :profile
  AND r.kind = 'threshold' AND r.metric = m.metric
  AND (s.last_ts IS NULL OR s.last_ts < m.oldest)
  AND CASE WHEN s.firing
    THEN CASE WHEN r.direction = 'above' THEN m.lowest > r.clear_at ELSE m.highest < r.clear_at END
    ELSE CASE WHEN r.direction = 'above' THEN m.highest <= r.set_at ELSE m.lowest >= r.set_at END
  END
RETURNING s.rule_id
""")
# The rules SETTLE did not settle (and, after ENSURE_STATES, those found before) are skipped.
LOCK_STATES = text("""
SELECT r.id, r.kind, r.metric, r.direction, r.set_at, r.clear_at, r.consecutive,
  r.for_seconds, r.channel, r.recipient,
  s.device_id, s.firing, s.streak, s.last_ts, s.since, s.breach_since
FROM iot_alert_states s JOIN iot_alert_rules r ON r.id = s.rule_id
WHERE s.device_id = :device AND r.profile_id = :profile AND r.kind = 'threshold'
  AND r.metric = ANY(:metrics) AND s.rule_id <> ALL(CAST(:skip AS text[]))
ORDER BY s.rule_id
FOR UPDATE OF s
""")
WRITE_STATES = text("""
UPDATE iot_alert_states s
SET firing = v.firing, streak = v.streak, last_ts = v.last_ts, since = v.since,
  breach_since = v.breach_since
FROM unnest(CAST(:rules AS text[]), CAST(:firing AS boolean[]), CAST(:streak AS integer[]),
  CAST(:last_ts AS timestamptz[]), CAST(:since AS timestamptz[]),
  CAST(:breach_since AS timestamptz[])) AS v(rule_id, firing, streak, last_ts, since, breach_since)
WHERE s.device_id = :device AND s.rule_id = v.rule_id
""")


@dataclasses.dataclass
class Watch:
    """A threshold rule and where the device stands with it: the locked row, to write back."""

    id: str
    kind: str
    metric: str
    direction: str
    set_at: float
    clear_at: float
    consecutive: int
    for_seconds: float | None
    channel: str
    recipient: str
    device_id: str
    firing: bool
    streak: int
    last_ts: datetime | None
    since: datetime | None
    breach_since: datetime | None

    def breached(self, value: float) -> bool:
        """Whether `value` is past the set threshold."""
        return value > self.set_at if self.direction == "above" else value < self.set_at

    def cleared(self, value: float) -> bool:
        """Whether `value` is back past the clear threshold."""
        return value <= self.clear_at if self.direction == "above" else value >= self.clear_at

    def held(self, ts: datetime) -> bool:
        """Whether the breach has lasted long enough to fire, as of the reading at `ts`."""
        if self.for_seconds is None:
            return self.streak >= self.consecutive
        return self.breach_since is not None and (
            (ts - self.breach_since).total_seconds() >= self.for_seconds
        )

    def step(self, ts: datetime, value: float) -> str | None:
        """Fold one reading into the state; the transition it causes, if any."""
        if self.firing:
            return "resolved" if self.cleared(value) else None
        if self.breached(value):
            self.streak += 1
            self.breach_since = self.breach_since or ts
        else:
            self.streak, self.breach_since = 0, None
        return "firing" if self.held(ts) else None


@dataclasses.dataclass(frozen=True)
class Series:
    """One metric's new readings in event-time order, with the extremes of every suffix."""

    ts: list[datetime]
    values: list[float]
    highest: list[float]  # highest[i] = max(values[i:])
    lowest: list[float]

    @classmethod
    def of(cls, readings: Sequence[tuple[datetime, float]]) -> Series:
        """The series of `readings` (unique times)."""
        ordered = sorted(readings)
        values = [v for _, v in ordered]
        highest = list(accumulate(reversed(values), max))[::-1]
        lowest = list(accumulate(reversed(values), min))[::-1]
        return cls([t for t, _ in ordered], values, highest, lowest)

    def unmoving(self, watch: Watch, start: int) -> bool:
        """Whether the readings from `start` on cannot move `watch` but to a quiet state:
        firing, none clears; quiet, none breaches."""
        above = watch.direction == "above"
        if watch.firing:
            return self.lowest[start] > watch.clear_at if above else (
                self.highest[start] < watch.clear_at)  # fmt: skip
        return self.highest[start] <= watch.set_at if above else (
            self.lowest[start] >= watch.set_at)  # fmt: skip


def _watches(
    session: Session, *, device: str, profile: str, series: dict[str, Series], rules: int
) -> list[Watch]:
    """Settle the rules the batch cannot move; lock and read the others. The device's missing
    states are made (MAKE_STATES, a conflict probe per rule) only when fewer than the `rules`
    the batch's metrics have were found: its first batch, or one after a rule was declared."""
    metrics = sorted(series)
    params = {
        "device": device, "profile": profile, "metrics": metrics,
        "newest": [series[m].ts[-1] for m in metrics],
        "highest": [series[m].highest[0] for m in metrics],
        "lowest": [series[m].lowest[0] for m in metrics],
    }  # fmt: skip
    oldest = [series[m].ts[0] for m in metrics]
    settled = list(session.scalars(SETTLE, {**params, "oldest": oldest}))
    # Positional: LOCK_STATES selects the fields in order (a row's mapping costs more than it).
    rest = [Watch(*row) for row in session.execute(LOCK_STATES, {**params, "skip": settled})]
    if len(settled) + len(rest) < rules:
        made = session.execute(MAKE_STATES, params).all()
        skip = [*settled, *(w.id for w in rest), *(rule for rule, done in made if done)]
        rest += [Watch(*row) for row in session.execute(LOCK_STATES, {**params, "skip": skip})]
        rest.sort(key=lambda w: w.id)
    return rest


def _write(session: Session, device: str, moved: list[Watch]) -> None:
    if not moved:
        return
    session.execute(WRITE_STATES, {
        "device": device,
        "rules": [w.id for w in moved],
        "firing": [w.firing for w in moved],
        "streak": [w.streak for w in moved],
        "last_ts": [w.last_ts for w in moved],
        "since": [w.since for w in moved],
        "breach_since": [w.breach_since for w in moved],
    })  # fmt: skip


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
    stored = list(stored)
    if not stored:
        return 0
    by_metric: dict[str, list[tuple[datetime, float]]] = {}
    for metric, ts, value in stored:
        if value is not None:
            by_metric.setdefault(metric, []).append((ts, value))
    offline_rules, threshold_rules = session.execute(
        RULES, {"profile": profile, "metrics": sorted(by_metric)}
    ).one()
    if not offline_rules and not threshold_rules:
        return 0
    session.execute(LOCK_DEVICE, {"device": device})
    # Recorded last, after every state lock: a batch and the sweep take the recipient's lock
    # (notifications) only once they hold all else, so they never wait on each other in a cycle.
    made = (
        offline.recover(session, profile=profile, device=device, at=received_at)
        if offline_rules
        else []
    )
    if not threshold_rules:
        return record(session, made, settings=settings)
    series = {metric: Series.of(readings) for metric, readings in by_metric.items()}
    moved = []
    for watch in _watches(
        session, device=device, profile=profile, series=series, rules=threshold_rules
    ):
        s = series[watch.metric]
        start = 0 if watch.last_ts is None else bisect.bisect_right(s.ts, watch.last_ts)
        if start == len(s.ts):
            continue  # late data only: it moves nothing
        moved.append(watch)
        if s.unmoving(watch, start):
            watch.last_ts = s.ts[-1]
            if not watch.firing:
                watch.streak, watch.breach_since = 0, None
            continue
        for ts, value in zip(s.ts[start:], s.values[start:], strict=True):
            watch.last_ts = ts
            kind = watch.step(ts, value)
            if kind is not None:
                made.append(transition(watch, watch, kind=kind, ts=ts, value=value))
    _write(session, device, moved)
    return record(session, made, settings=settings)
