"""The invariants a run must keep, judged from the client's answers, the ledger and the receiver.

Pure functions over what chaos.ledger read: no I/O, so the definitions are unit-tested.

Webhook duplicates. Standard Webhooks is at-least-once: a receiver may see a `webhook-id`
again, and a sender that dies between the far side's 2xx and recording it *must* resend. So a
*duplicate* is a delivery of a `webhook-id` after an earlier delivery of it was answered 2xx
(the receiver answers 2xx to every webhook of the run): reported, not a failure. What would be
a failure is a redelivery the ledger cannot explain: more deliveries of one `webhook-id` than
its job had attempts (each attempt posts at most once), counted as *unexplained duplicates*.
"""

from __future__ import annotations

import base64
import hmac
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from chaos.ledger import TERMINAL, Delivery, JobRow, Snapshot
from chaos.load import Outcome

SIGNATURE_TOLERANCE = 300  # seconds between a webhook's timestamp and its arrival


@dataclass(frozen=True)
class Row:
    """One line of the table: `ok` None means reported, not judged."""

    name: str
    value: object
    ok: bool | None = None
    note: str = ""


def signature_valid(delivery: Delivery, secret: str) -> bool:
    """True when a v1 signature of the delivery matches `secret` and its timestamp is fresh."""
    headers = delivery.headers
    try:
        stamp = int(headers["webhook-timestamp"])
        signed = Webhook(secret).sign(
            headers["webhook-id"], datetime.fromtimestamp(stamp, tz=UTC), delivery.body.decode()
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return False
    if abs(delivery.at - stamp) > SIGNATURE_TOLERANCE:
        return False
    expected = base64.b64decode(signed.split(",", 1)[1])
    for part in headers.get("webhook-signature", "").split():
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(expected, base64.b64decode(value)):
            return True
    return False


def _secret_for(path: str, secrets: dict[str, str]) -> str | None:
    return next((s for prefix, s in secrets.items() if path.startswith(prefix)), None)


def client_rows(outcomes: list[Outcome]) -> list[Row]:
    """What the client saw: requests, tries, 202s, refusals, give-ups, idempotency."""
    answers: Counter[str] = Counter()
    for o in outcomes:
        answers.update(o.answers)
    accepted = [o for o in outcomes if o.status == 202]
    refused = [o for o in outcomes if o.status is not None and 400 <= o.status < 500]
    gave_up = len(outcomes) - len(accepted) - len(refused)
    errors = ", ".join(f"{k}x{v}" for k, v in sorted(answers.items()) if k != "202")
    return [
        Row("requests (logical submissions)", len(outcomes)),
        Row("HTTP tries (with client retries)", sum(o.tries for o in outcomes), note=errors),
        Row("202 accepted", len(accepted)),
        Row(
            "valid requests refused (4xx)",
            len(refused),
            not refused,
            ", ".join(sorted({f"{o.planned.label}:{o.status}" for o in refused})),
        ),
        Row("gave up (no answer within the retry budget)", gave_up),
        Row(
            "one key, two job ids (idempotency broken)",
            sum(1 for o in outcomes if len(o.job_ids) > 1),
            not any(len(o.job_ids) > 1 for o in outcomes),
        ),
    ]


def _wrong_outcome(label: str, job: JobRow) -> bool:
    """A terminal state this kind of job must not end in.

    `system.fail` fails the attempts numbered up to `times` (1 here): an attempt lost with its
    worker uses up a number without failing, so a permanent failure whose first attempt was
    lost rightly succeeds on its second, and a retryable one may run out of attempts.
    """
    if job.state == "cancelled":
        return True  # nobody cancels in a run
    if label.startswith("fail-permanent"):
        return job.state == "succeeded" and job.lost_count == 0
    if label == "fail-retryable":
        return job.state == "dead" and job.lost_count == 0 and job.error_type != "worker_lost"
    return job.state == "dead" and job.error_type != "worker_lost"


def ledger_rows(outcomes: list[Outcome], snap: Snapshot) -> list[Row]:
    """Every 202 kept, once: lost, non-terminal, double successes, outcomes, quarantine."""
    accepted = [o for o in outcomes if o.status == 202 and o.job_id]
    missing = [o for o in accepted if o.job_id not in snap.jobs]
    unfinished = [
        o for o in accepted if o.job_id in snap.jobs and snap.jobs[o.job_id].state not in TERMINAL
    ]
    left = [j for j in snap.jobs.values() if j.state not in TERMINAL]
    doubles = [j for j, n in snap.successes.items() if n > 1]
    double_sent = [n for n, c in snap.delivered_records.items() if c > 1]
    wrong = [
        o
        for o in accepted
        if o.job_id in snap.jobs and _wrong_outcome(o.planned.label, snap.jobs[o.job_id])
    ]
    quarantined = [
        j for j in snap.jobs.values() if j.state == "dead" and j.error_type == "worker_lost"
    ]
    states = Counter(j.state for j in snap.jobs.values())
    return [
        Row(
            "lost (a 202 whose job is missing or not terminal)",
            len(missing) + len(unfinished),
            not missing and not unfinished,
            f"missing {len(missing)}, not terminal {len(unfinished)}",
        ),
        Row(
            "left non-terminal (every job of the ledger)",
            len(left),
            not left,
            ", ".join(sorted({j.state for j in left})),
        ),
        Row("double successes (two `succeeded` attempts)", len(doubles), not doubles),
        Row("notifications recorded delivered twice", len(double_sent), not double_sent),
        Row(
            "wrong terminal state for the job's kind",
            len(wrong),
            not wrong,
            ", ".join(
                sorted({f"{o.planned.label}→{snap.jobs[o.job_id or ''].state}" for o in wrong})
            ),
        ),
        Row(
            "quarantined (dead, worker_lost)",
            len(quarantined),
            note=", ".join(sorted({j.type for j in quarantined})),
        ),
        Row("attempts lost with their worker (reaped)", snap.lost_attempts),
        Row(
            "jobs in the ledger",
            len(snap.jobs),
            note=", ".join(f"{k} {v}" for k, v in sorted(states.items())),
        ),
    ]


def webhook_rows(snap: Snapshot, *, secrets: dict[str, str]) -> list[Row]:
    """Every webhook delivered and received, signed, and resent only as its attempts allow."""
    by_id: dict[str, list[Delivery]] = {}
    for d in snap.deliveries:
        by_id.setdefault(d.webhook_id or "", []).append(d)
    expected = {f"msg_{n.job_id}": n for n in snap.notifications}
    undelivered = [
        n
        for n in snap.notifications
        if n.status != "delivered"
        and snap.jobs.get(n.job_id)
        and snap.jobs[n.job_id].error_type != "worker_lost"
    ]
    unreceived = [
        n for n in snap.notifications if n.status == "delivered" and f"msg_{n.job_id}" not in by_id
    ]
    unknown = [w for w in by_id if w not in expected]
    extra = sum(len(ds) - 1 for ds in by_id.values())
    repeated = sum(1 for ds in by_id.values() if len(ds) > 1)
    unexplained = sum(
        max(0, len(ds) - snap.attempt_rows[expected[w].job_id])
        for w, ds in by_id.items()
        if w in expected
    )
    bad = [d for d in snap.deliveries if not signature_valid(d, _secret_for(d.path, secrets) or "")]
    return [
        Row(
            "webhooks expected (notifications + callbacks)",
            len(snap.notifications),
            note=f"{len(snap.deliveries)} requests received",
        ),
        Row("webhooks never delivered (not quarantined)", len(undelivered), not undelivered),
        Row("webhooks recorded delivered, never received", len(unreceived), not unreceived),
        Row("webhook ids the ledger does not know", len(unknown), not unknown),
        Row(
            "duplicate webhook deliveries (same id after a 2xx)",
            extra,
            note=f"{repeated} ids; allowed: at least once",
        ),
        Row(
            "unexplained duplicates (more deliveries than attempts)", unexplained, unexplained == 0
        ),
        Row("bad signatures", len(bad), not bad),
    ]


def callback_rows(snap: Snapshot) -> list[Row]:
    """Every finished job with a callback got one for the state it ended in."""
    sent = {(n.source_job_id, n.source_state) for n in snap.notifications if n.kind == "callback"}
    owed = [j for j in snap.jobs.values() if j.has_callback and j.state in TERMINAL]
    missing = [j for j in owed if (j.id, j.state) not in sent]
    return [Row("jobs with a callback missing it", len(missing), not missing, f"of {len(owed)}")]


def failed(rows: Iterable[Row]) -> list[Row]:
    """The judged rows that did not hold."""
    return [r for r in rows if r.ok is False]
