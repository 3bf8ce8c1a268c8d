"""When a notification may go out: quiet hours, then the per-recipient rate limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tasks.notifications.models import Notification
from tasks.notifications.schemas import QuietHours


def _in_window(moment: datetime, quiet: QuietHours) -> bool:
    clock = moment.time().replace(tzinfo=None)
    if quiet.start <= quiet.end:
        return quiet.start <= clock < quiet.end
    return clock >= quiet.start or clock < quiet.end  # the window spans midnight


def after_quiet_hours(when: datetime, quiet: QuietHours | None) -> datetime:
    """`when`, or the end of the quiet window it falls in (in the recipient's zone)."""
    if quiet is None or quiet.start == quiet.end:
        return when
    local = when.astimezone(ZoneInfo(quiet.timezone))
    if not _in_window(local, quiet):
        return when
    end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    # Rebuild from the wall clock so a DST change inside the window lands on the right hour.
    end = end.replace(tzinfo=None).replace(tzinfo=ZoneInfo(quiet.timezone))
    return end.astimezone(when.tzinfo)


def rate_limited_slot(
    earlier: Sequence[datetime], when: datetime, *, count: int, period: timedelta
) -> datetime:
    """The first instant >= `when` that keeps at most `count` sends in any `period`."""
    recent = sorted(t for t in earlier if t > when - period)
    if len(recent) < count:
        return when
    return max(when, recent[-count] + period)


def lock_recipient(session: Session, *, channel: str, recipient: str) -> None:
    """Serialise acceptance per (channel, recipient) until the transaction ends."""
    key = func.hashtextextended(f"notify:{channel}:{recipient}", 0)
    session.execute(select(func.pg_advisory_xact_lock(key)))


def scheduled_sends(
    session: Session, *, channel: str, recipient: str, since: datetime, count: int
) -> list[datetime]:
    """The latest `count` instants this recipient's messages on this channel are (or were) due
    at, from `since` on: all `rate_limited_slot` needs to place the next one."""
    rows = session.scalars(
        select(Notification.send_at)
        .where(
            Notification.channel == channel,
            Notification.recipient == recipient,
            Notification.kind == "message",
            Notification.send_at > since,
        )
        .order_by(Notification.send_at.desc())
        .limit(count)
    )
    return list(rows)


@dataclass
class Schedules:
    """The recipients a transaction has locked and their latest sends, read once each and kept
    up to date as it accepts more, so many acceptances cost one lock and one read a recipient;
    and the canonical form of each `(channel, to)` checked, so each is validated once."""

    now: datetime | None = None
    sends: dict[tuple[str, str], list[datetime]] = field(default_factory=dict)
    recipients: dict[tuple[str, str], str] = field(default_factory=dict)

    def clock(self, session: Session) -> datetime:
        """The transaction's `now()`, read once."""
        if self.now is None:
            self.now = session.scalar(select(func.now()))
            assert self.now is not None
        return self.now

    def of(
        self, session: Session, *, channel: str, recipient: str, since: datetime, count: int
    ) -> list[datetime]:
        """The recipient's latest sends, locking it the first time (the list is live)."""
        key = (channel, recipient)
        if key not in self.sends:
            lock_recipient(session, channel=channel, recipient=recipient)
            self.sends[key] = scheduled_sends(
                session, channel=channel, recipient=recipient, since=since, count=count
            )
        return self.sends[key]
