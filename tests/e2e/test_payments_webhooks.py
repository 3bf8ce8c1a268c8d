"""Provider webhooks end to end: the simulator process signs and sends them (twice, late, out
of order), the API verifies and records them once, a real worker applies them only as legal
transitions; receipts and alerts go through the notifications domain once per transition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text

from devstack.payment_webhooks import signature
from devstack.processes import wait_until
from store.db import new_session, transaction
from tasks.payments import intents, ledger
from tasks.payments.models import Intent
from tests.support.api import auth
from tests.support.keys import MakeKey
from tests.support.ledger import clean_tables
from tests.support.payments import ALERTS_TO, WEBHOOK_SECRETS, PaymentStack
from tests.support.stack import start_worker

SCOPES = ("payments:write", "payments:read")
WAIT = 60  # seconds: generous, for a shared machine under load
BUYER = "buyer@example.com"
T = TypeVar("T")


@pytest.fixture
def token(pay_stack: PaymentStack, make_key: MakeKey) -> Iterator[str]:
    """A payments key; the run's payments and notifications are emptied afterwards."""
    yield make_key("shop", SCOPES)
    pay_stack.hooks()
    pay_stack.sim("/_sim/faults", {"seed": 0})
    clean_tables(pay_stack.settings, domain="payments")
    clean_tables(pay_stack.settings, domain="notifications")


def until(check: Callable[[], T | None], *, what: str) -> T:
    return wait_until(check, timeout=WAIT, what=what)


def paid(stack: PaymentStack, token: str, *, manual: bool = False) -> str:
    """An intent created and confirmed through the API (its receipt goes to BUYER)."""
    made = httpx.post(
        f"{stack.base}/v1/payment-intents",
        json={
            "amount": 4_000,
            "currency": "USD",
            "payment_method": "pm_card_visa",
            "capture_method": "manual" if manual else "automatic",
            "receipt_email": BUYER,
        },
        headers=auth(token),
        timeout=10,
    )
    assert made.status_code == 201, made.text
    pid: str = made.json()["id"]
    done = httpx.post(
        f"{stack.base}/v1/payment-intents/{pid}/confirm", json={}, headers=auth(token), timeout=10
    )
    assert done.status_code == 202, done.text
    return pid


def act(stack: PaymentStack, token: str, path: str, body: dict[str, Any]) -> None:
    sent = httpx.post(
        f"{stack.base}/v1/payment-intents{path}", json=body, headers=auth(token), timeout=10
    )
    assert sent.status_code == 202, sent.text


def intent(stack: PaymentStack, pid: str) -> Intent:
    with transaction(stack.settings) as session:
        return session.get_one(Intent, pid)


def reaches(stack: PaymentStack, pid: str, status: str) -> Intent:
    def there() -> Intent | None:
        found = intent(stack, pid)
        return found if found.status == status else None

    return until(there, what=f"{pid} to be {status}")


def remote_id(stack: PaymentStack, pid: str) -> str:
    truth = httpx.get(f"{stack.simulator}/_sim/truth", timeout=10).json()["payment_intents"]
    (found,) = [p for p in truth if p["metadata"]["switchyard_key"].startswith(pid)]
    return str(found["id"])


def settled(stack: PaymentStack, event_ids: list[str]) -> dict[str, str]:
    """Each event's status once every one is recorded and applied."""

    def all_done() -> dict[str, str] | None:
        with transaction(stack.settings) as session:
            rows: dict[str, str] = dict(
                session.execute(
                    text("SELECT id, status FROM pay_webhook_events WHERE id = ANY(:ids)"),
                    {"ids": event_ids},
                ).all()
            )
        done = len(rows) == len(set(event_ids)) and "received" not in rows.values()
        return rows if done else None

    return until(all_done, what=f"events {event_ids} to be applied")


def disputes(stack: PaymentStack, token: str, pid: str) -> httpx.Response:
    return httpx.get(
        f"{stack.base}/v1/payment-intents/{pid}/disputes", headers=auth(token), timeout=10
    )


def history(stack: PaymentStack, pid: str) -> list[str]:
    with transaction(stack.settings) as session:
        return list(
            session.scalars(
                text("SELECT event FROM pay_intent_events WHERE intent_id = :i ORDER BY seq"),
                {"i": pid},
            )
        )


def notices(stack: PaymentStack, to: str) -> list[str]:
    with transaction(stack.settings) as session:
        return list(
            session.scalars(
                text("SELECT subject FROM notifications WHERE recipient = :to ORDER BY id"),
                {"to": to},
            )
        )


def sound(stack: PaymentStack, pid: str) -> None:
    with transaction(stack.settings) as session:
        assert ledger.imbalance(session) == {}
        assert intents.verify_chain(session, session.get_one(Intent, pid))


def post_signed(stack: PaymentStack, body: dict[str, Any], **sig: Any) -> httpx.Response:
    payload = json.dumps(body).encode()
    header = signature(payload, **{"timestamp": int(time.time()), **sig})
    return httpx.post(
        f"{stack.base}/v1/payments/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        timeout=10,
    )


def test_signatures_are_checked_on_the_raw_body_with_either_secret(
    pay_stack: PaymentStack, token: str
) -> None:
    event = {"id": "evt_sig_1", "type": "ping", "data": {"object": {"id": "x"}}}
    url = f"{pay_stack.base}/v1/payments/webhooks/stripe"
    unsigned = httpx.post(url, json=event, timeout=10)
    assert unsigned.status_code == 400, unsigned.text
    assert unsigned.headers["content-type"].startswith("application/problem+json")
    assert unsigned.json()["field"] == "Stripe-Signature"
    for bad in (
        {"keys": ["whsec_someone_else"]},
        {"keys": [WEBHOOK_SECRETS[0]], "timestamp": int(time.time()) - 3_600},  # too old
    ):
        refused = post_signed(pay_stack, event, **bad)
        assert refused.status_code == 400 and refused.json()["field"] == "Stripe-Signature"
    tampered = json.dumps(event).encode()
    header = signature(tampered, timestamp=int(time.time()), keys=[WEBHOOK_SECRETS[0]])
    changed = httpx.post(
        url, content=tampered.replace(b"ping", b"pong"), headers={"Stripe-Signature": header}
    )
    assert changed.status_code == 400
    garbled = httpx.post(url, content=b"\xff\xfe{}", headers={"Stripe-Signature": header})
    assert garbled.status_code == 400, garbled.text
    assert garbled.json()["code"] == "invalid_encoding" and garbled.json()["field"] == "body"
    # signed but malformed, or carrying a card number: refused, naming the field, not stored
    malformed = post_signed(
        pay_stack, {"id": 5, "type": "x", "data": {}}, keys=[WEBHOOK_SECRETS[0]]
    )
    assert malformed.status_code == 422 and malformed.json()["field"] == "body.id"
    card = {**event, "id": "evt_card", "data": {"object": {"note": "4000056655665556"}}}
    carded = post_signed(pay_stack, card, keys=[WEBHOOK_SECRETS[0]])
    assert carded.status_code == 422 and carded.json()["code"] == "card_data_refused"
    # during a rotation both the new and the old secret are accepted
    for n, secret in enumerate(WEBHOOK_SECRETS):
        ok = post_signed(pay_stack, {**event, "id": f"evt_rot_{n}"}, keys=[secret])
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"id": f"evt_rot_{n}", "duplicate": False}
    again = post_signed(pay_stack, {**event, "id": "evt_rot_0"}, keys=[WEBHOOK_SECRETS[1]])
    assert again.json() == {"id": "evt_rot_0", "duplicate": True}
    assert settled(pay_stack, ["evt_rot_0", "evt_rot_1"]) == {
        "evt_rot_0": "ignored",
        "evt_rot_1": "ignored",
    }
    with transaction(pay_stack.settings) as session:
        ids = set(session.scalars(text("SELECT id FROM pay_webhook_events")))
    assert ids == {"evt_rot_0", "evt_rot_1"}  # nothing refused was recorded


def test_every_event_delivered_twice_changes_nothing(pay_stack: PaymentStack, token: str) -> None:
    pay_stack.hooks(duplicate_rate=1.0, seed=3)
    pid = paid(pay_stack, token)
    reaches(pay_stack, pid, "succeeded")
    events = pay_stack.events(remote_id(pay_stack, pid))
    assert [e["type"] for e in events] == ["payment_intent.processing", "payment_intent.succeeded"]
    ids = [e["id"] for e in events]

    def delivered() -> list[dict[str, Any]] | None:
        found = httpx.get(f"{pay_stack.simulator}/_sim/events", timeout=10).json()
        mine = [d for d in found["deliveries"] if d["event"] in ids]
        return mine if len(mine) == 4 else None

    assert {d["status"] for d in until(delivered, what="four deliveries")} == {200}
    statuses = settled(pay_stack, ids)
    assert statuses[ids[1]] in ("unchanged", "applied") and statuses[ids[0]] == "stale"
    assert history(pay_stack, pid) == ["created", "confirmed", "authorized", "captured_final"]
    assert notices(pay_stack, BUYER) == ["Receipt: 40.00 USD paid"]
    sound(pay_stack, pid)


def test_succeeded_before_processing_resolves_a_lost_answer_then_stale_is_ignored(
    pay_stack: PaymentStack, token: str
) -> None:
    pay_stack.hooks(hold=True)
    pay_stack.sim("/_sim/faults", {"seed": 1, "hang_rate": 1.0, "hang_seconds": 3})
    pid = paid(pay_stack, token)

    def unknown() -> bool:
        with transaction(pay_stack.settings) as session:
            status: str | None = session.scalar(
                text("SELECT status FROM pay_operations WHERE intent_id = :i"), {"i": pid}
            )
        return status == "unknown"

    until(unknown, what="the authorization's answer to be lost")
    pay_stack.sim("/_sim/faults", {"seed": 0})
    assert intent(pay_stack, pid).status == "processing"
    processing, succeeded = (e["id"] for e in pay_stack.events(remote_id(pay_stack, pid)))
    # out of order: succeeded first; the worker asks the provider, which answers with the key
    assert pay_stack.sim("/_sim/webhooks/deliver", {"ids": [succeeded]}) == {"statuses": [200]}
    assert settled(pay_stack, [succeeded]) == {succeeded: "applied"}
    reaches(pay_stack, pid, "succeeded")
    # the late processing event, and the succeeded event again, change nothing
    assert pay_stack.sim("/_sim/webhooks/deliver", {"ids": [processing, succeeded]}) == {
        "statuses": [200, 200]
    }
    assert settled(pay_stack, [processing, succeeded]) == {
        processing: "stale",
        succeeded: "applied",
    }
    assert history(pay_stack, pid) == ["created", "confirmed", "authorized", "captured_final"]
    truth = httpx.get(f"{pay_stack.simulator}/_sim/truth", timeout=10).json()
    assert (
        len(
            [p for p in truth["payment_intents"] if p["metadata"]["switchyard_key"].startswith(pid)]
        )
        == 1
    )
    assert notices(pay_stack, BUYER) == ["Receipt: 40.00 USD paid"]
    sound(pay_stack, pid)


def test_a_dispute_withdraws_with_a_fee_and_a_lost_one_is_final(
    pay_stack: PaymentStack, token: str
) -> None:
    pid = paid(pay_stack, token)
    reaches(pay_stack, pid, "succeeded")
    assert disputes(pay_stack, token, pid).json() == []
    dispute = pay_stack.sim("/_sim/disputes", {"payment_intent": remote_id(pay_stack, pid)})
    until(lambda: intent(pay_stack, pid).amount_disputed == 4_000, what="the withdrawal")
    (opened,) = disputes(pay_stack, token, pid).json()
    shown = {k: opened[k] for k in ("id", "status", "amount", "fee", "closed_at")}
    assert shown == {
        "id": dispute["id"], "status": "open", "amount": 4_000, "fee": 1_500, "closed_at": None,
    }  # fmt: skip
    pay_stack.sim(f"/_sim/disputes/{dispute['id']}/close", {"status": "lost"})
    until(lambda: intent(pay_stack, pid).amount_lost == 4_000, what="the loss")
    (lost,) = disputes(pay_stack, token, pid).json()
    assert lost["status"] == "lost" and lost["opened_at"] == opened["opened_at"]
    assert lost["closed_at"] >= lost["opened_at"]
    after = intent(pay_stack, pid)
    assert (after.amount_disputed, after.fee_returned, after.fee) == (0, after.fee, 116)
    refund = httpx.post(
        f"{pay_stack.base}/v1/payment-intents/{pid}/refunds",
        json={"amount": 1},
        headers=auth(token),
        timeout=10,
    )
    assert refund.status_code == 409, refund.text  # refunds + lost disputes <= captured
    assert history(pay_stack, pid)[-2:] == ["dispute_opened", "dispute_lost"]
    assert notices(pay_stack, ALERTS_TO) == [
        "Alert: a payment of 40.00 USD is disputed",
        "Alert: a dispute of 40.00 USD was lost",
    ]
    with transaction(pay_stack.settings) as session:
        fee = ledger.balance(session, "merchant:shop:USD")
    assert fee.debits_posted - fee.credits_posted == 1_500
    sound(pay_stack, pid)


def test_a_won_dispute_closed_before_it_was_opened_is_reinstated_once(
    pay_stack: PaymentStack, token: str
) -> None:
    pid = paid(pay_stack, token)
    reaches(pay_stack, pid, "succeeded")
    pay_stack.hooks(hold=True)
    dispute = pay_stack.sim("/_sim/disputes", {"payment_intent": remote_id(pay_stack, pid)})
    pay_stack.sim(f"/_sim/disputes/{dispute['id']}/close", {"status": "won"})
    created, closed = (e["id"] for e in pay_stack.events(remote_id(pay_stack, pid))[-2:])
    pay_stack.sim("/_sim/webhooks/deliver", {"ids": [closed, created, closed]})
    assert settled(pay_stack, [created, closed]) == {closed: "applied", created: "stale"}
    after = intent(pay_stack, pid)
    assert (after.amount_disputed, after.amount_lost, after.fee_returned) == (0, 0, 0)
    assert history(pay_stack, pid)[-2:] == ["dispute_opened", "dispute_won"]
    assert notices(pay_stack, ALERTS_TO) == [
        "Alert: a payment of 40.00 USD is disputed",
        "Alert: a dispute of 40.00 USD was won",
    ]
    assert [(d["id"], d["status"]) for d in disputes(pay_stack, token, pid).json()] == [
        (dispute["id"], "won")]  # fmt: skip
    sound(pay_stack, pid)


def test_disputes_of_no_intent_of_yours_are_404(
    pay_stack: PaymentStack, token: str, make_key: MakeKey
) -> None:
    """An unknown intent and another producer's intent read alike: 404 problem+json."""
    pid = paid(pay_stack, token)
    for who, intent_id in ((token, "pi_nobody"), (make_key("other", SCOPES), pid)):
        missing = disputes(pay_stack, who, intent_id)
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["code"] == "payment_intent_not_found"
    unread = disputes(pay_stack, make_key("writer", ("payments:write",)), pid)
    assert unread.status_code == 403 and unread.json()["scope"] == "payments:read"


def test_a_worker_killed_between_the_write_and_the_commit_leaves_one_receipt(
    pay_stack: PaymentStack, token: str
) -> None:
    blocker = new_session(pay_stack.settings)
    try:
        # The receipt's INSERT waits on this lock: the intent's `succeeded` is written, the
        # transaction not committed, when the worker is killed.
        blocker.execute(text("LOCK TABLE notifications IN SHARE MODE"))
        pid = paid(pay_stack, token)

        def blocked() -> bool:
            with transaction(pay_stack.settings) as session:
                return bool(
                    session.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND query ILIKE 'INSERT INTO notifications%'"
                        )
                    )
                )

        until(blocked, what="the receipt's insert to wait on the lock")
        pay_stack.processes["worker"].kill()
        pay_stack.processes["worker"].popen.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
    assert intent(pay_stack, pid).status == "processing"  # nothing of it committed
    pay_stack.processes["worker"] = start_worker(pay_stack.settings, pay_stack.logs_dir, "pay2")
    reaches(pay_stack, pid, "succeeded")  # the reaped job asks the provider with the same key
    until(lambda: notices(pay_stack, BUYER), what="the receipt")
    assert notices(pay_stack, BUYER) == ["Receipt: 40.00 USD paid"]
    assert history(pay_stack, pid) == ["created", "confirmed", "authorized", "captured_final"]
    truth = httpx.get(f"{pay_stack.simulator}/_sim/truth", timeout=10).json()["payment_intents"]
    assert len([p for p in truth if p["metadata"]["switchyard_key"].startswith(pid)]) == 1
    sound(pay_stack, pid)


def test_late_events_after_a_capture_and_refund_change_nothing(
    pay_stack: PaymentStack, token: str
) -> None:
    pay_stack.hooks(hold=True)  # late: every event is delivered after all of it happened
    pid = paid(pay_stack, token, manual=True)
    reaches(pay_stack, pid, "requires_capture")
    act(pay_stack, token, f"/{pid}/capture", {"amount": 4_000})
    reaches(pay_stack, pid, "succeeded")
    act(pay_stack, token, f"/{pid}/refunds", {"amount": 1_000})
    until(lambda: intent(pay_stack, pid).amount_refunded == 1_000, what="the refund")
    before = history(pay_stack, pid)
    events = pay_stack.events(remote_id(pay_stack, pid))
    kinds = [e["type"] for e in events]
    assert kinds == [
        "payment_intent.processing",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "charge.refunded",
    ]
    answers = pay_stack.sim("/_sim/webhooks/deliver", {"ids": [e["id"] for e in events]})
    assert answers == {"statuses": [200] * 4}
    statuses = settled(pay_stack, [e["id"] for e in events])
    assert [statuses[e["id"]] for e in events] == ["stale", "stale", "unchanged", "unchanged"]
    assert history(pay_stack, pid) == before
    assert notices(pay_stack, BUYER) == ["Receipt: 40.00 USD paid", "Receipt: 10.00 USD refunded"]
    sound(pay_stack, pid)


def test_dropped_events_are_never_needed(pay_stack: PaymentStack, token: str) -> None:
    pay_stack.hooks(drop_rate=1.0)
    pid = paid(pay_stack, token)
    reaches(pay_stack, pid, "succeeded")
    ids = {e["id"] for e in pay_stack.events(remote_id(pay_stack, pid))}
    found = httpx.get(f"{pay_stack.simulator}/_sim/events", timeout=10).json()
    assert len(ids) == 2 and not [d for d in found["deliveries"] if d["event"] in ids]
    assert notices(pay_stack, BUYER) == ["Receipt: 40.00 USD paid"]
    sound(pay_stack, pid)
