"""Idempotency-Key with Stripe's semantics, scoped per producer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from config import Settings
from tests.support.api import count_rows, submit
from tests.support.keys import MakeKey

ECHO = {"type": "system.echo", "payload": {"order": 7}}


def test_same_key_same_body_returns_the_original_job(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    first = submit(api, token, ECHO, **{"Idempotency-Key": "order-7"})
    again = submit(api, token, ECHO, **{"Idempotency-Key": "order-7"})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert count_rows(settings, "jobs") == 1
    assert count_rows(settings, "outbox") == 1


def test_same_key_different_body_is_a_422_and_writes_nothing(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    assert submit(api, token, ECHO, **{"Idempotency-Key": "k"}).status_code == 202
    other = {"type": "system.echo", "payload": {"order": 8}}
    resp = submit(api, token, other, **{"Idempotency-Key": "k"})
    assert resp.status_code == 422
    assert resp.json()["code"] == "idempotency_key_reused"
    assert resp.json()["field"] == "Idempotency-Key"
    changed_priority = {**ECHO, "priority": 5}
    assert submit(api, token, changed_priority, **{"Idempotency-Key": "k"}).status_code == 422
    assert count_rows(settings, "jobs") == 1


def test_keys_are_scoped_per_producer(api: str, make_key: MakeKey, settings: Settings) -> None:
    a = submit(api, make_key("billing-svc"), ECHO, **{"Idempotency-Key": "shared"}).json()
    b = submit(api, make_key("shipping-svc"), ECHO, **{"Idempotency-Key": "shared"}).json()
    assert a["id"] != b["id"]
    assert count_rows(settings, "jobs") == 2


def test_twenty_concurrent_requests_with_one_key_make_one_job(
    api: str, make_key: MakeKey, settings: Settings
) -> None:
    token = make_key()
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(lambda _: submit(api, token, ECHO, **{"Idempotency-Key": "burst"}), range(20))
        )
    assert {r.status_code for r in responses} <= {202, 409}
    ids = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    assert count_rows(settings, "jobs") == 1
    assert count_rows(settings, "outbox") == 1


def test_a_key_longer_than_255_characters_is_refused(api: str, make_key: MakeKey) -> None:
    resp = submit(api, make_key(), ECHO, **{"Idempotency-Key": "k" * 256})
    assert resp.status_code == 422
    assert resp.json()["field"] == "Idempotency-Key"
