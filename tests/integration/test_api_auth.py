"""Authentication and scopes: 401, 403, 404 for other producers, revocation."""

from __future__ import annotations

import httpx

from config import Settings
from store.api_keys import revoke_key
from store.db import transaction
from tests.support.api import auth, submit
from tests.support.keys import MakeKey

ECHO = {"type": "system.echo", "payload": {"n": 1}}


def test_no_key_is_401_with_a_bearer_challenge(api: str, clean_ledger: None) -> None:
    resp = httpx.post(f"{api}/v1/jobs", json=ECHO, timeout=5)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["code"] == "unauthenticated"


def test_an_unknown_or_malformed_key_is_401(api: str, make_key: MakeKey) -> None:
    real = make_key()
    for token in ("nonsense", real[:-2] + "zz", "sy_ffffffffffff_" + real.split("_", 2)[2]):
        assert submit(api, token, ECHO).status_code == 401


def test_a_key_without_the_scope_is_403(api: str, make_key: MakeKey) -> None:
    reader = make_key("reader-svc", ("jobs:read",))
    resp = submit(api, reader, ECHO)
    assert resp.status_code == 403
    assert resp.json()["scope"] == "jobs:write"
    writer = make_key("writer-svc", ("jobs:write",))
    job_id = submit(api, writer, ECHO).json()["id"]
    assert httpx.get(f"{api}/v1/jobs/{job_id}", headers=auth(writer)).status_code == 403


def test_other_producers_jobs_are_404_unless_admin(api: str, make_key: MakeKey) -> None:
    billing = make_key("billing-svc")
    shipping = make_key("shipping-svc")
    admin = make_key("ops", ("admin",))
    job_id = submit(api, billing, ECHO).json()["id"]
    assert httpx.get(f"{api}/v1/jobs/{job_id}", headers=auth(shipping)).status_code == 404
    assert httpx.post(f"{api}/v1/jobs/{job_id}/cancel", headers=auth(shipping)).status_code == 404
    assert httpx.get(f"{api}/v1/jobs", headers=auth(shipping)).json()["items"] == []
    assert httpx.get(f"{api}/v1/jobs/{job_id}", headers=auth(admin)).status_code == 200
    listed = httpx.get(f"{api}/v1/jobs", headers=auth(admin)).json()["items"]
    assert [j["id"] for j in listed] == [job_id]


def test_a_revoked_key_is_401(api: str, make_key: MakeKey, settings: Settings) -> None:
    token = make_key()
    assert submit(api, token, ECHO).status_code == 202
    with transaction(settings) as session:
        assert revoke_key(session, token.split("_")[1])
    resp = submit(api, token, ECHO)
    assert resp.status_code == 401
    assert resp.json()["code"] == "invalid_api_key"


def test_a_bad_key_is_told_401_before_anything_about_the_body(api: str, make_key: MakeKey) -> None:
    token = make_key()
    forged = token[:-2] + "zz"
    for body in ({"type": "system.nope"}, {"type": "system.sleep", "payload": {"seconds": "x"}}):
        assert submit(api, forged, body).status_code == 401
        assert submit(api, token, body).status_code == 422
