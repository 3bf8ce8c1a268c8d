"""The chaos battery's invariants, judged on made-up runs: each definition can fail."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from chaos.fuzz import summarise
from chaos.invariants import (
    Row,
    callback_rows,
    client_rows,
    failed,
    ledger_rows,
    signature_valid,
    webhook_rows,
)
from chaos.ledger import Delivery, JobRow, NotificationRow, Snapshot
from chaos.load import Outcome, Planned
from chaos.report import restart_rows
from chaos.stack import Exit, last_words

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def accepted(n: int, label: str, job_id: str) -> Outcome:
    out = Outcome(Planned(n, label, "/v1/jobs", {}, f"k{n}"), status=202, job_id=job_id, tries=1)
    out.job_ids.add(job_id)
    return out


def job(job_id: str, state: str = "succeeded", **kw: object) -> JobRow:
    fields: dict[str, object] = {
        "type": "system.echo",
        "error_type": None,
        "attempts": 1,
        "lost_count": 0,
        "has_callback": False,
        **kw,
    }
    return JobRow(job_id, state=state, **fields)  # type: ignore[arg-type]


def snap(jobs: list[JobRow], **kw: object) -> Snapshot:
    fields: dict[str, object] = {
        "successes": Counter(),
        "attempt_rows": Counter({j.id: j.attempts for j in jobs}),
        "lost_attempts": 0,
        "notifications": [],
        "delivered_records": Counter(),
        "deliveries": [],
        **kw,
    }
    return Snapshot({j.id: j for j in jobs}, **fields)  # type: ignore[arg-type]


def judged(rows: list[Row]) -> dict[str, object]:
    return {r.name: r.value for r in failed(rows)}


def delivery(job_id: str, *, secret: str = SECRET, at: float | None = None) -> Delivery:
    stamp = int(time.time())
    body = b'{"type":"t","data":{}}'
    signature = Webhook(secret).sign(
        f"msg_{job_id}", datetime.fromtimestamp(stamp, tz=UTC), body.decode()
    )
    headers = {
        "webhook-id": f"msg_{job_id}",
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature,
    }
    return Delivery(f"msg_{job_id}", "/ok/hooks", headers, body, stamp if at is None else at)


def test_a_clean_run_holds_every_invariant() -> None:
    outcomes = [accepted(0, "echo", "a"), accepted(1, "fail-permanent", "b")]
    ledger = snap([job("a"), job("b", "dead", type="system.fail")], successes=Counter({"a": 1}))
    assert failed(client_rows(outcomes) + ledger_rows(outcomes, ledger)) == []


def test_a_202_whose_job_is_missing_or_unfinished_is_lost() -> None:
    outcomes = [accepted(0, "echo", "a"), accepted(1, "echo", "gone")]
    rows = ledger_rows(outcomes, snap([job("a", "retrying")]))
    lost = next(r for r in rows if r.name.startswith("lost"))
    assert (lost.value, lost.ok, lost.note) == (2, False, "missing 1, not terminal 1")


def test_two_succeeded_attempts_and_wrong_outcomes_fail() -> None:
    outcomes = [accepted(0, "fail-permanent", "a"), accepted(1, "echo", "b")]
    ledger = snap(
        [job("a", type="system.fail"), job("b", "dead", error_type="boom")],
        successes=Counter({"a": 2}),
    )
    assert judged(ledger_rows(outcomes, ledger)) == {
        "double successes (two `succeeded` attempts)": 1,
        "wrong terminal state for the job's kind": 2,
    }


def test_a_permanent_failure_whose_first_attempt_was_lost_may_succeed() -> None:
    # system.fail fails attempts numbered up to `times`: a lost first attempt used up number 1.
    outcomes = [accepted(0, "fail-permanent", "a"), accepted(1, "fail-retryable", "b")]
    ledger = snap(
        [
            job("a", type="system.fail", attempts=2, lost_count=1),
            job("b", "dead", type="system.fail", attempts=3, lost_count=1, error_type="x"),
        ],
        successes=Counter({"a": 1}),
    )
    assert failed(ledger_rows(outcomes, ledger)) == []


def test_a_quarantined_echo_is_not_a_wrong_outcome() -> None:
    outcomes = [accepted(0, "echo", "a")]
    rows = ledger_rows(outcomes, snap([job("a", "dead", error_type="worker_lost")]))
    assert failed(rows) == []
    assert next(r for r in rows if r.name.startswith("quarantined")).value == 1


def test_one_key_answered_with_two_job_ids_breaks_idempotency() -> None:
    twice = accepted(0, "echo", "a")
    twice.job_ids.add("b")
    assert judged(client_rows([twice])) == {"one key, two job ids (idempotency broken)": 1}


def test_a_redelivery_is_a_duplicate_but_only_one_beyond_the_attempts_is_unexplained() -> None:
    notes = [NotificationRow("n1", "d1", "message", "delivered", None, None)]
    explained = snap(
        [job("d1", attempts=2)], notifications=notes, deliveries=[delivery("d1"), delivery("d1")]
    )
    rows = webhook_rows(explained, secrets={"/ok/hooks": SECRET})
    assert failed(rows) == []
    assert next(r for r in rows if r.name.startswith("duplicate")).value == 1
    unexplained = snap(
        [job("d1", attempts=1)], notifications=notes, deliveries=[delivery("d1"), delivery("d1")]
    )
    assert judged(webhook_rows(unexplained, secrets={"/ok/hooks": SECRET})) == {
        "unexplained duplicates (more deliveries than attempts)": 1
    }


def test_webhooks_unreceived_unknown_or_badly_signed_fail() -> None:
    notes = [NotificationRow("n1", "d1", "message", "delivered", None, None)]
    ledger = snap(
        [job("d1"), job("d2")],
        notifications=notes,
        deliveries=[delivery("d2", secret="whsec_" + "b3RoZXItc2VjcmV0LW90aGVy")],
    )
    assert judged(webhook_rows(ledger, secrets={"/ok/hooks": SECRET})) == {
        "webhooks recorded delivered, never received": 1,
        "webhook ids the ledger does not know": 1,
        "bad signatures": 1,
    }


def test_a_signature_is_checked_against_the_arrival_time() -> None:
    fresh = delivery("a")
    assert signature_valid(fresh, SECRET)
    assert not signature_valid(delivery("a", at=time.time() + 3_600), SECRET)


def test_a_finished_job_owes_the_callback_of_its_state() -> None:
    notes = [NotificationRow("n1", "c1", "callback", "delivered", "a", "succeeded")]
    ledger = snap(
        [job("a", has_callback=True), job("b", "dead", has_callback=True)], notifications=notes
    )
    assert judged(callback_rows(ledger)) == {"jobs with a callback missing it": 1}


def test_restarts_tell_injected_kills_from_exits_of_their_own() -> None:
    exits = [
        Exit("relay", -9, True, 0.0),
        Exit("relay", 1, False, 1.0, "BatchPublishError"),
        Exit("api", 2, False, 2.0, "the ledger is unreachable"),
    ]
    rows = restart_rows(exits)
    assert [(r.name, r.value, r.note) for r in rows] == [
        ("restarts after an injected kill -9", 1, "relay x1"),
        ("restarts after a process exited by itself", 2, ""),
        ("  api exited with code 2", 1, "the ledger is unreachable"),
        ("  relay exited with code 1", 1, "BatchPublishError"),
    ]


def test_last_words_are_the_last_critical_event_else_the_last_line() -> None:
    assert last_words('{"event": "a"}\n{"event": "worker_lost", "x": 1}\n\n') == "worker_lost"
    said = '{"event": "Unrecoverable error: X", "level": "critical"}\n{"event": "Error on stop"}'
    assert last_words(said) == "Unrecoverable error: X"
    assert last_words("switchyard: the ledger is unreachable (connection failed)") == (
        "the ledger is unreachable"
    )


def test_schemathesis_server_errors_are_counted_per_operation() -> None:
    xml = """<testsuites><testsuite>
      <testcase name="POST /v1/jobs">
        <failure message="ST101">1. Server error [500]</failure></testcase>
      <testcase name="GET /v1/jobs">
        <failure message="ST102">1. Undocumented HTTP status code [418]</failure></testcase>
      <testcase name="GET /healthz"/>
    </testsuite></testsuites>"""
    assert [(r.name, r.value, r.note) for r in summarise(xml)] == [
        ("operations fuzzed", 3, ""),
        ("operations answering a server error", 1, "POST /v1/jobs"),
    ]
