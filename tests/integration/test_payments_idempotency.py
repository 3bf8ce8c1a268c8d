"""`Idempotency-Key` on the payments API: Stripe's semantics, scoped per producer, one effect
however many (or however concurrent) the repeats, against a real API process."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from config import Settings
from producers.api.app import create_app
from store.db import transaction
from tasks.payments import idempotency
from tests.support.api import auth, count_rows
from tests.support.keys import MakeKey

SCOPES = ("payments:write", "payments:read")
P = "/v1/payment-intents"
ORDER = {"amount": 5_000, "currency": "EUR", "capture_method": "manual"}


def post(
    api: str, token: str, path: str, body: dict[str, Any] | None = None, *, key: str | None
) -> httpx.Response:
    headers = auth(token) if key is None else {**auth(token), "Idempotency-Key": key}
    return httpx.post(f"{api}{P}{path}", json=body or {}, headers=headers, timeout=30)


def test_a_repeated_create_returns_the_first_answer_and_makes_one_intent(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    first = post(api, token, "", ORDER, key="order-7")
    again = post(api, token, "", ORDER, key="order-7")
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert count_rows(settings, "pay_intents") == 1


def test_the_same_key_with_another_request_is_refused_and_writes_nothing(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    made = post(api, token, "", ORDER, key="k").json()
    for path, body in (("", {**ORDER, "amount": 5_001}), (f"/{made['id']}/confirm", {})):
        refused = post(api, token, path, body, key="k")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "idempotency_key_reused"
        assert refused.json()["field"] == "Idempotency-Key"
    assert count_rows(settings, "pay_intents") == 1
    assert count_rows(settings, "pay_operations") == 0


def test_keys_are_scoped_per_producer(api: str, make_key: MakeKey, settings: Settings) -> None:
    shop, other = make_key("shop", SCOPES), make_key("other-shop", SCOPES)
    a = post(api, shop, "", ORDER, key="shared").json()
    b = post(api, other, "", ORDER, key="shared").json()
    assert a["id"] != b["id"]
    assert count_rows(settings, "pay_intents") == 2


def test_fifty_concurrent_creates_with_one_key_make_one_intent(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: post(api, token, "", ORDER, key="burst"), range(50)))
    assert [a.status_code for a in answers] == [201] * 50, {a.text for a in answers}
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 49
    assert count_rows(settings, "pay_intents") == 1


def test_a_repeated_confirm_or_cancel_replays_its_202(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    pid = post(api, token, "", ORDER, key=None).json()["id"]
    confirm = {"payment_method": "pm_card_visa"}
    first = post(api, token, f"/{pid}/confirm", confirm, key="confirm-1")
    again = post(api, token, f"/{pid}/confirm", confirm, key="confirm-1")
    assert first.status_code == again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert count_rows(settings, "pay_operations") == 1
    # Without a key, a second confirm is judged on its own: the authorization is in flight.
    assert post(api, token, f"/{pid}/confirm", confirm, key=None).status_code == 409

    early = post(api, token, "", ORDER, key=None).json()["id"]
    canceled = post(api, token, f"/{early}/cancel", key="cancel-1")
    assert canceled.status_code == 202 and canceled.json()["intent"]["status"] == "canceled"
    replay = post(api, token, f"/{early}/cancel", key="cancel-1")
    assert (replay.status_code, replay.json()) == (202, canceled.json())


def test_a_refused_request_leaves_its_key_free(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    pid = post(api, token, "", ORDER, key=None).json()["id"]
    assert post(api, token, f"/{pid}/cancel", key=None).status_code == 202
    refused = post(api, token, f"/{pid}/cancel", key="retry-me")
    assert refused.status_code == 409, refused.text
    assert count_rows(settings, "pay_idempotency_keys") == 0
    assert post(api, token, "", ORDER, key="retry-me").status_code == 201


def test_a_key_expires_after_24_hours_and_is_swept(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key("shop", SCOPES)
    first = post(api, token, "", ORDER, key="old").json()
    with transaction(settings) as s:
        s.execute(text("UPDATE pay_idempotency_keys SET created_at = now() - interval '25 hours'"))
    other = post(api, token, "", {**ORDER, "amount": 7_000}, key="old")
    assert other.status_code == 201, other.text
    assert other.json()["id"] != first["id"] and "idempotent-replayed" not in other.headers
    assert post(api, token, "", ORDER, key="fresh").status_code == 201
    with transaction(settings) as s:
        s.execute(text("UPDATE pay_idempotency_keys SET created_at = now() - interval '25 hours'"
                       " WHERE key = 'fresh'"))  # fmt: skip
        assert idempotency.forget_expired(s) == 1
    with transaction(settings) as s:
        assert list(s.scalars(text("SELECT key FROM pay_idempotency_keys"))) == ["old"]


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_bad_key_is_a_422_naming_the_header(
    api: str, make_key: MakeKey, settings: Settings, key: str
) -> None:
    token = make_key("shop", SCOPES)
    resp = post(api, token, "", ORDER, key=key)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == "Idempotency-Key"
    assert count_rows(settings, "pay_intents") == 0
    assert post(api, "not-a-key", "", ORDER, key=key).status_code == 401


def test_a_nul_in_the_key_is_a_422_naming_the_header(make_key: MakeKey, settings: Settings) -> None:
    # No HTTP/1 server lets a NUL through a header; the app, called in memory, must refuse it.
    token = make_key("shop", SCOPES)
    transport = httpx.ASGITransport(app=create_app(settings))

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            headers = {**auth(token), "Idempotency-Key": "k\x00"}
            return await client.post(P, json=ORDER, headers=headers)

    resp = asyncio.run(send())
    assert resp.status_code == 422, resp.text
    assert (resp.json()["code"], resp.json()["field"]) == ("invalid_text", "Idempotency-Key")
    assert count_rows(settings, "pay_intents") == 0
