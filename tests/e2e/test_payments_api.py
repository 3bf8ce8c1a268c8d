"""`/v1/payment-intents` end to end: HTTP, a real worker, the token provider, the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from config import Settings
from devstack.processes import wait_until
from store.db import transaction
from tasks.enqueue import enqueue
from tasks.payments import ledger
from tasks.payments.schemas import EXPIRE
from tests.support.api import auth
from tests.support.keys import MakeKey
from tests.support.ledger import clean_tables

SCOPES = ("payments:write", "payments:read")
CARD = "4000056655665556"  # Luhn-valid


def call(api: str, token: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    url = f"{api}/v1/payment-intents{path}"
    if body is None and path and not path.endswith(("cancel",)):
        return httpx.get(url, headers=auth(token), timeout=10)
    return httpx.post(url, json=body or {}, headers=auth(token), timeout=10)


def wait_status(api: str, token: str, pid: str, status: str, **amounts: int) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        body = call(api, token, f"/{pid}").json()
        ok = body["status"] == status and all(body[k] == v for k, v in amounts.items())
        return body if ok else None

    return wait_until(reached, timeout=30, what=f"{pid} to be {status} {amounts}")


def test_create_confirm_capture_refund_through_the_api(
    pipeline: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    try:
        made = call(
            pipeline, token, "", {"amount": 5_000, "currency": "EUR", "capture_method": "manual"}
        )
        assert made.status_code == 201, made.text
        pid = made.json()["id"]
        assert made.json()["status"] == "requires_payment_method"
        done = call(pipeline, token, f"/{pid}/confirm", {"payment_method": "pm_card_visa"})
        assert done.status_code == 202, done.text
        wait_status(pipeline, token, pid, "requires_capture", amount_capturable=5_000)
        over = call(pipeline, token, f"/{pid}/capture", {"amount": 5_001})
        assert over.status_code == 409 and over.json()["code"] == "amount_exceeded"
        assert call(pipeline, token, f"/{pid}/capture", {"amount": 2_000}).status_code == 202
        wait_status(pipeline, token, pid, "requires_capture", amount_received=2_000)
        assert (
            call(pipeline, token, f"/{pid}/capture", {"amount": 1_000, "final": True}).status_code
            == 202
        )
        wait_status(pipeline, token, pid, "succeeded", amount_received=3_000)
        assert call(pipeline, token, f"/{pid}/refunds", {"amount": 500}).status_code == 202
        wait_status(pipeline, token, pid, "succeeded", amount_refunded=500)
        ops = call(pipeline, token, f"/{pid}/operations").json()
        captures = [(o["amount"], o["fee"], o["net"]) for o in ops if o["kind"] == "capture"]
        assert captures == [(2_000, 58, 1_942), (1_000, 29, 971)]  # 2.9%
        history = [e["event"] for e in call(pipeline, token, f"/{pid}/history").json()]
        assert history == [
            "created",
            "payment_method_attached",
            "confirmed",
            "authorized",
            "captured",
            "captured_final",
            "refunded",
        ]
        with transaction(settings) as session:
            assert ledger.imbalance(session) == {}
    finally:
        clean_tables(settings, domain="payments")


def test_a_card_number_is_refused_and_never_stored_or_logged(
    pipeline: str, make_key: MakeKey, settings: Settings, logs_dir: Path
) -> None:
    token = make_key("shop", SCOPES)
    bodies = [
        {"amount": 100, "currency": "USD", "metadata": {"note": f"card {CARD}"}},
        {"amount": 100, "currency": "USD", "payment_method": CARD},
    ]
    for body in bodies:
        refused = call(pipeline, token, "", body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "card_data_refused"
        assert CARD not in refused.text
    # The idempotency key is stored: a number there is refused like one in the body.
    refused = httpx.post(
        f"{pipeline}/v1/payment-intents",
        json={"amount": 100, "currency": "USD"},
        headers={**auth(token), "Idempotency-Key": f"order {CARD}"},
        timeout=10,
    )
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["field"]) == (
        "card_data_refused",
        "Idempotency-Key",
    )
    assert CARD not in refused.text
    with transaction(settings) as session:
        for table in ("pay_intents", "pay_intent_events", "pay_idempotency_keys", "jobs"):
            dump = session.execute(text(f"SELECT string_agg(t::text, '') FROM {table} t")).scalar()
            assert CARD not in (dump or ""), table
    for log in logs_dir.glob("*.log"):
        assert CARD not in log.read_text(errors="replace"), log.name


def test_the_key_is_checked_before_the_card_scan(pipeline: str, make_key: MakeKey) -> None:
    body = {"amount": 100, "currency": "USD", "metadata": {"note": f"card {CARD}"}}
    for headers in ({}, auth("sk_not_a_key")):
        refused = httpx.post(f"{pipeline}/v1/payment-intents", json=body, headers=headers)
        assert refused.status_code == 401, refused.text
        assert CARD not in refused.text
    reader = make_key("shop-reader", ("payments:read",))
    refused = call(pipeline, reader, "", body)  # a live key: the number is refused first
    assert refused.status_code == 422 and refused.json()["code"] == "card_data_refused"
    assert CARD not in refused.text


def test_the_expiry_job_forgets_idempotency_keys_older_than_24_hours(
    pipeline: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    for key in ("old", "new"):
        made = httpx.post(
            f"{pipeline}/v1/payment-intents",
            json={"amount": 100, "currency": "USD"},
            headers={**auth(token), "Idempotency-Key": key},
        )
        assert made.status_code == 201, made.text
    with transaction(settings) as session:
        session.execute(
            text(
                "UPDATE pay_idempotency_keys SET created_at = now() - interval '25 hours'"
                " WHERE key = 'old'"
            )
        )
        job_id = enqueue(session, EXPIRE.name, {}, producer="beat", settings=settings).job_id

    def result() -> dict[str, Any] | None:
        with transaction(settings) as session:
            row = session.execute(
                text("SELECT state, result FROM jobs WHERE id = :id"), {"id": job_id}
            ).one()
        return row.result if row.state == "succeeded" else None

    done = wait_until(result, timeout=30, what="the expiry job to succeed")
    assert done["keys_forgotten"] == 1
    with transaction(settings) as session:
        keys = list(session.scalars(text("SELECT key FROM pay_idempotency_keys")))
    assert keys == ["new"]
