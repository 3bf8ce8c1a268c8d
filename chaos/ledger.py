"""What the ledger and the webhook receiver hold at the end of a run, read once for the checks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from config import Settings
from devstack.receiver import Receiver
from store.db import transaction

TERMINAL = frozenset({"succeeded", "dead", "cancelled"})


@dataclass(frozen=True)
class JobRow:
    """One job, as far as the invariants care."""

    id: str
    type: str
    state: str
    error_type: str | None
    attempts: int
    lost_count: int  # attempts that lost their worker (never ran to their end)
    has_callback: bool


@dataclass(frozen=True)
class NotificationRow:
    """One webhook notification (a message or a completion callback)."""

    id: str
    job_id: str
    kind: str
    status: str
    source_job_id: str | None
    source_state: str | None


@dataclass(frozen=True)
class Delivery:
    """One request the receiver got."""

    webhook_id: str | None
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Snapshot:
    """The ledger's jobs, attempts and webhook notifications, and the receiver's requests."""

    jobs: dict[str, JobRow]
    successes: Counter[str]  # job id -> attempts recorded `succeeded`
    attempt_rows: Counter[str]  # job id -> attempts recorded at all
    lost_attempts: int  # attempts the reaper recorded `lost` (their worker vanished)
    notifications: list[NotificationRow]
    delivered_records: Counter[str]  # notification id -> attempts recorded `delivered`
    deliveries: list[Delivery]


def non_terminal(settings: Settings) -> int:
    """How many jobs of the ledger have not reached a terminal state."""
    with transaction(settings) as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM jobs"
                    " WHERE state NOT IN ('succeeded', 'dead', 'cancelled')"
                )
            ).scalar_one()
        )


def _rows(session: Any, sql: str) -> list[Any]:
    return list(session.execute(text(sql)).all())


def snapshot(settings: Settings, receiver: Receiver) -> Snapshot:
    """Read everything the invariants need, in one transaction."""
    with transaction(settings) as s:
        jobs = {
            str(r.id): JobRow(
                str(r.id), r.type, r.state, r.error_type, r.attempts, r.lost_count, r.cb
            )
            for r in _rows(
                s,
                "SELECT id, type, state, error->>'type' AS error_type, attempts, lost_count,"
                " callback_url IS NOT NULL AS cb FROM jobs",
            )
        }
        successes = Counter(
            {
                str(r.job_id): int(r.n)
                for r in _rows(
                    s,
                    "SELECT job_id, count(*) AS n FROM job_attempts"
                    " WHERE outcome = 'succeeded' GROUP BY job_id",
                )
            }
        )
        attempts = Counter(
            {
                str(r.job_id): int(r.n)
                for r in _rows(s, "SELECT job_id, count(*) AS n FROM job_attempts GROUP BY job_id")
            }
        )
        lost = int(
            s.execute(text("SELECT count(*) FROM job_attempts WHERE outcome = 'lost'")).scalar_one()
        )
        notifications = [
            NotificationRow(
                str(r.id),
                str(r.job_id),
                r.kind,
                r.status,
                None if r.source_job_id is None else str(r.source_job_id),
                r.source_state,
            )
            for r in _rows(
                s,
                "SELECT n.id, n.job_id, n.kind, n.source_job_id, n.source_state,"
                " CASE WHEN n.delivered_at IS NOT NULL THEN 'delivered' ELSE j.state END AS status"
                " FROM notifications n JOIN jobs j ON j.id = n.job_id"
                " WHERE n.channel = 'webhook'",
            )
        ]
        delivered = Counter(
            {
                str(r.notification_id): int(r.n)
                for r in _rows(
                    s,
                    "SELECT notification_id, count(*) AS n FROM notification_attempts"
                    " WHERE outcome = 'delivered' GROUP BY notification_id",
                )
            }
        )
    deliveries = [
        Delivery(r["headers"].get("webhook-id"), r["path"], r["headers"], r["body"], r["at"])
        for r in receiver.requests()
        if r["path"] != "/ping"
    ]
    return Snapshot(jobs, successes, attempts, lost, notifications, delivered, deliveries)
