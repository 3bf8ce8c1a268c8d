"""Delivering one notification with fake gateways: what each answer records, and whether the
job retries (after which step of the schedule) or dies. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpcore
import pytest
from pydantic import ValidationError

from config import MAX_ATTEMPTS, JobPolicy, Settings
from errors import PermanentError, RetryableError
from store.jobs import ClaimedJob
from tasks.notifications.delivery import Outgoing, deliver
from tasks.notifications.gateways import Gateways
from tasks.notifications.retries import max_attempts
from tasks.notifications.schemas import DELIVER
from tasks.notifications.secrets import new_secret, seal
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import BlockedAddressError
from tests.support.fake_gateways import (
    FakeEmailSender,
    FakeSmsProvider,
    FakeWebhookPoster,
    fake_gateways,
)
from workers.outcomes import retry_delay

pytestmark = pytest.mark.usefixtures("no_io")

SETTINGS = Settings(notifications=NotificationSettings(retry_schedule=[5, 60, 600]))
SCHEDULE = SETTINGS.section(NotificationSettings).retry_schedule
SECRET = new_secret()
REDIRECT = ((b"location", b"https://elsewhere.example/"),)


def outgoing(channel: str, **changes: Any) -> Outgoing:
    """A notification as `load_outgoing` returns it; webhooks come with one live secret."""
    recipients = {"email": "ada@example.com", "webhook": "https://hooks.example/in", "sms": "+1650"}
    secrets = [{"sealed": seal(SECRET, settings=SETTINGS)}] if channel == "webhook" else None
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "channel": channel,
        "recipient": recipients[channel],
        "subject": "Hi" if channel == "email" else None,
        "body_text": '{"type": "t"}' if channel == "webhook" else "Hello",
        "body_html": None,
        "job_id": uuid.uuid4(),
        "callback_secret": None,
        "delivered_at": None,
        "endpoint_secrets": secrets,
    }
    return Outgoing(**{**values, **changes})


def job_for(row: Outgoing, attempt: int) -> ClaimedJob:
    """The delivery job of `row`, claimed for `attempt`, with the budget the intake gives it."""
    payload = {"notification_id": str(row.id)}
    budget = max_attempts(SCHEDULE)
    return ClaimedJob(
        row.job_id, DELIVER.name, DELIVER.queue, payload, 0, attempt, budget, "svc", uuid.uuid4()
    )


@dataclass
class Delivered:
    """What one run of `deliver` came to."""

    failures: list[dict[str, Any]]
    successes: list[dict[str, Any]]
    result: dict[str, Any] | None
    raised: Exception | None
    job: ClaimedJob

    @property
    def next_try_in(self) -> float | None:
        """The worker's decision: seconds until the job runs again, None when it is dead."""
        assert self.raised is not None, "the delivery succeeded"
        return retry_delay(self.raised, self.job, policy=SETTINGS.policy_for(DELIVER.name))


def run(row: Outgoing | None, gateways: Gateways, *, attempt: int = 1) -> Delivered:
    """Deliver `row` once on `gateways`, keeping what it records and what it raises."""
    job = job_for(row or outgoing("sms"), attempt)
    failures: list[dict[str, Any]] = []
    successes: list[dict[str, Any]] = []
    result = raised = None
    try:
        result = deliver(
            row,
            uuid.UUID(job.payload["notification_id"]),
            job=job,
            settings=SETTINGS,
            gateways=gateways,
            record_failure=failures.append,
            record_delivered=successes.append,
        )
    except (RetryableError, PermanentError) as exc:
        raised = exc
    return Delivered(failures, successes, result, raised, job)


@dataclass(frozen=True)
class Case:
    name: str
    channel: str
    gateways: Gateways
    outcome: str  # the attempt as the delivery log records it
    status: int | None
    retried: bool


CASES = [
    Case("webhook 200", "webhook", fake_gateways(), "delivered", 200, False),
    Case(
        "webhook 204",
        "webhook",
        fake_gateways(webhook=FakeWebhookPoster(204)),
        "delivered",
        204,
        False,
    ),
    # Redirects are never followed: a 3xx is recorded as a failure and retried, like a 5xx.
    Case(
        "webhook 302",
        "webhook",
        fake_gateways(webhook=FakeWebhookPoster(302, REDIRECT)),
        "failed",
        302,
        True,
    ),
    Case(
        "webhook 410",
        "webhook",
        fake_gateways(webhook=FakeWebhookPoster(410)),
        "failed",
        410,
        False,
    ),
    Case(
        "webhook 404", "webhook", fake_gateways(webhook=FakeWebhookPoster(404)), "failed", 404, True
    ),
    Case(
        "webhook 500", "webhook", fake_gateways(webhook=FakeWebhookPoster(500)), "failed", 500, True
    ),
    Case(
        "webhook 503", "webhook", fake_gateways(webhook=FakeWebhookPoster(503)), "failed", 503, True
    ),
    Case(
        "webhook timeout",
        "webhook",
        fake_gateways(webhook=FakeWebhookPoster(fails=httpcore.ReadTimeout("timed out"))),
        "failed",
        None,
        True,
    ),
    Case(
        "webhook connection refused",
        "webhook",
        fake_gateways(webhook=FakeWebhookPoster(fails=httpcore.ConnectError("refused"))),
        "failed",
        None,
        True,
    ),
    Case(
        "webhook to an address the SSRF guard refuses",
        "webhook",
        fake_gateways(webhook=FakeWebhookPoster(fails=BlockedAddressError("10.0.0.7 is private"))),
        "refused",
        None,
        False,
    ),
    Case("email 250", "email", fake_gateways(), "delivered", 250, False),
    Case(
        "email DATA 451",
        "email",
        fake_gateways(email=FakeEmailSender({"DATA": (451, "4.3.0 try again later")})),
        "failed",
        451,
        True,
    ),
    Case(
        "email MAIL FROM 421",
        "email",
        fake_gateways(email=FakeEmailSender({"MAIL FROM": (421, "closing")})),
        "failed",
        421,
        True,
    ),
    Case(
        "email RCPT TO 550",
        "email",
        fake_gateways(email=FakeEmailSender({"RCPT TO": (550, "5.1.1 no such user")})),
        "failed",
        550,
        False,
    ),
    Case(
        "email DATA 554",
        "email",
        fake_gateways(email=FakeEmailSender({"DATA": (554, "5.7.1 spam")})),
        "failed",
        554,
        False,
    ),
    Case(
        "email relay unreachable",
        "email",
        fake_gateways(email=FakeEmailSender(unreachable=ConnectionRefusedError("refused"))),
        "failed",
        None,
        True,
    ),
    Case("sms 200", "sms", fake_gateways(), "delivered", 200, False),
    Case("sms 429", "sms", fake_gateways(sms=FakeSmsProvider(429)), "failed", 429, True),
    Case("sms 400", "sms", fake_gateways(sms=FakeSmsProvider(400)), "failed", 400, False),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("attempt", [1, 2])
def test_each_answer_decides_what_is_recorded_and_whether_the_job_retries(
    case: Case, attempt: int
) -> None:
    row = outgoing(case.channel)
    done = run(row, case.gateways, attempt=attempt)
    if case.outcome == "delivered":
        assert (done.failures, done.raised) == ([], None)
        (written,) = done.successes  # committed with the job's `succeeded`, in one statement
        assert (written["d_id"], written["d_number"], written["d_status"]) == (
            row.id,
            attempt,
            case.status,
        )
        assert done.result is not None
        assert done.result["status_code"] == case.status
        return
    assert done.successes == []
    (failure,) = done.failures  # committed on its own, whatever becomes of the job
    assert failure["notification_id"] == row.id
    assert (failure["number"], failure["outcome"], failure["status_code"]) == (
        attempt,
        case.outcome,
        case.status,
    )
    assert failure["error"] and failure["duration_ms"] >= 0
    if case.retried:
        assert isinstance(done.raised, RetryableError)
        assert done.next_try_in == SCHEDULE[attempt - 1]
    else:
        assert isinstance(done.raised, PermanentError)
        assert done.next_try_in is None


def test_a_failure_worth_retrying_follows_the_schedule_and_dies_when_it_is_used_up() -> None:
    delays = [
        run(outgoing("webhook"), fake_gateways(webhook=FakeWebhookPoster(500)), attempt=n)
        for n in range(1, max_attempts(SCHEDULE) + 1)
    ]
    assert [d.next_try_in for d in delays] == [*SCHEDULE, None]
    assert len(delays) == len(SCHEDULE) + 1 == job_for(outgoing("sms"), 1).max_attempts
    assert all(len(d.failures) == 1 for d in delays)  # the last attempt is logged too


def test_every_attempt_carries_the_same_key_the_far_side_deduplicates_on() -> None:
    row = outgoing("webhook")
    poster = FakeWebhookPoster(500)
    for attempt in (1, 2, 3):
        run(row, fake_gateways(webhook=poster), attempt=attempt)
    assert {p.msg_id for p in poster.posts} == {f"msg_{row.job_id}"}
    assert {p.secrets for p in poster.posts} == {(SECRET,)}
    assert {p.body for p in poster.posts} == {(row.body_text or "").encode()}
    mail, sms = FakeEmailSender(), FakeSmsProvider()
    email_row, sms_row = outgoing("email"), outgoing("sms")
    for _ in range(2):
        run(email_row, fake_gateways(email=mail))
        run(sms_row, fake_gateways(sms=sms))
    domain = SETTINGS.section(NotificationSettings).smtp.message_id_domain
    assert {m.message_id for m in mail.sent} == {f"<{email_row.job_id}@{domain}>"}
    assert {key for _, _, key in sms.sent} == {f"{sms_row.job_id}:sms"}


def test_a_callback_is_signed_with_its_own_secret_not_an_endpoints() -> None:
    own = new_secret()
    row = outgoing("webhook", callback_secret=seal(own, settings=SETTINGS), endpoint_secrets=None)
    poster = FakeWebhookPoster()
    assert run(row, fake_gateways(webhook=poster)).raised is None
    assert [p.secrets for p in poster.posts] == [(own,)]


def test_a_webhook_whose_endpoint_lost_its_secrets_is_final_and_never_posted() -> None:
    poster = FakeWebhookPoster()
    expired = {
        "sealed": seal(new_secret(), settings=SETTINGS),
        "expires_at": "2000-01-01T00:00+00:00",
    }
    for secrets in (None, [], [expired]):
        done = run(outgoing("webhook", endpoint_secrets=secrets), fake_gateways(webhook=poster))
        assert [f["outcome"] for f in done.failures] == ["failed"]
        assert done.next_try_in is None
    assert poster.posts == []


def test_an_already_delivered_or_missing_notification_sends_and_records_nothing() -> None:
    gateways = fake_gateways()
    done = run(outgoing("email", delivered_at=datetime.now(UTC)), gateways)
    assert done.result == {"status": "delivered", "already": True}
    missing = run(None, gateways)
    assert isinstance(missing.raised, PermanentError)
    assert missing.next_try_in is None
    for d in (done, missing):
        assert (d.failures, d.successes) == ([], [])
    assert isinstance(gateways.email, FakeEmailSender)
    assert gateways.email.sent == []


def test_a_deliverys_budget_is_its_schedule_plus_the_first_try_within_the_ledgers_bound() -> None:
    assert max_attempts(SCHEDULE) == len(SCHEDULE) + 1
    assert max_attempts([1.0] * (MAX_ATTEMPTS * 2)) == MAX_ATTEMPTS
    JobPolicy(max_attempts=MAX_ATTEMPTS)
    with pytest.raises(ValidationError):  # the bound the ledger holds every job to
        JobPolicy(max_attempts=MAX_ATTEMPTS + 1)
