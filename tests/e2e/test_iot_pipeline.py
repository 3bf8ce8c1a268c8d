"""IoT over HTTP through real processes: provisioning, per-device tokens, a batch durable
before its 202 and stored by a worker, refusals per reading, duplicates and conflicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from devstack.processes import wait_until
from tests.support.api import auth, count_rows
from tests.support.iot import PROFILE, batch, provision, reading, send
from tests.support.iot_stack import IotStack, run_iot_stack
from tests.support.ledger import clean_tables

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def stack(settings: Settings, logs_dir: Path) -> Iterator[IotStack]:
    """The pipeline for this module."""
    yield from run_iot_stack(settings, logs_dir, name="iot")


@pytest.fixture
def admin(stack: IotStack) -> Iterator[str]:
    """A key with both IoT scopes; every table is emptied after the test."""
    yield stack.key("iot:admin", "iot:read")
    clean_tables(stack.settings)


def _stored(stack: IotStack, token: str, batch_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        answer = httpx.get(
            f"{stack.base}/v1/telemetry/batches/{batch_id}", headers=auth(token), timeout=5
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body if body["status"] == "stored" else None

    return wait_until(done, timeout=60, what=f"batch {batch_id} to be stored")


def test_provisioning_needs_iot_admin_and_names_the_bad_field(stack: IotStack, admin: str) -> None:
    reader = stack.key("iot:read")
    refused = httpx.post(f"{stack.base}/v1/device-profiles", json=PROFILE, headers=auth(reader))
    assert refused.status_code == 403 and refused.json()["scope"] == "iot:admin"
    bad = {**PROFILE, "metrics": {"temp": {"type": "number", "min": 5, "max": 1}}}
    answer = httpx.post(f"{stack.base}/v1/device-profiles", json=bad, headers=auth(admin))
    assert answer.status_code == 422 and answer.json()["field"] == "metrics.temp.max"
    unknown = httpx.post(
        f"{stack.base}/v1/devices", json={"id": "x", "profile": "nope"}, headers=auth(admin)
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "profile"
    provision(stack.base, admin, device="t-1")
    again = httpx.post(
        f"{stack.base}/v1/devices", json={"id": "t-1", "profile": "thermo"}, headers=auth(admin)
    )
    assert again.status_code == 409
    listed = httpx.get(f"{stack.base}/v1/devices", headers=auth(reader)).json()
    assert [(d["id"], d["credential"]) for d in listed] == [("t-1", "active")]
    assert "token" not in listed[0]


def test_a_batch_is_stored_by_a_worker_with_refusals_duplicates_and_conflicts(
    stack: IotStack, admin: str
) -> None:
    token = provision(stack.base, admin, device="t-2")
    t = NOW - timedelta(minutes=3)
    body = batch(
        reading("temp", t, 20.5, unit="Cel"),
        reading("temp", t + timedelta(seconds=30), 500),
        reading("door", t, False),
        reading("temp", t + timedelta(seconds=60), 21.0, device="t-other"),
    )
    accepted = send(stack.base, token, body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "received"
    first = _stored(stack, token, accepted.json()["id"])
    assert (first["stored"], first["duplicates"], first["conflicts"]) == (2, 0, 0)
    assert [(r["index"], r["code"]) for r in first["refusals"]] == [
        (1, "out_of_range"),
        (3, "foreign_device"),
    ]
    resent = _stored(stack, token, send(stack.base, token, body).json()["id"])
    assert (resent["stored"], resent["duplicates"], resent["conflicts"]) == (0, 2, 0)
    changed = batch(reading("temp", t, 19.0, unit="Cel"))
    conflict = _stored(stack, token, send(stack.base, token, changed).json()["id"])
    assert (conflict["stored"], conflict["conflicts"]) == (0, 1)

    reader = auth(stack.key("iot:read"))
    page = httpx.get(
        f"{stack.base}/v1/devices/t-2/readings",
        params={"since": (t - timedelta(hours=1)).isoformat(), "limit": 1},
        headers=reader,
    ).json()
    assert [(r["metric"], r["value"]) for r in page["items"]] == [("door", False)]
    rest = httpx.get(
        f"{stack.base}/v1/devices/t-2/readings",
        params={"since": (t - timedelta(hours=1)).isoformat(), "cursor": page["next_cursor"]},
        headers=reader,
    ).json()
    assert [(r["metric"], r["value"], r["unit"]) for r in rest["items"]] == [("temp", 20.5, "Cel")]
    assert rest["next_cursor"] is None
    latest = httpx.get(f"{stack.base}/v1/devices/t-2/latest", headers=reader).json()
    assert {(r["metric"], r["value"]) for r in latest} == {("door", False), ("temp", 20.5)}
    (seen,) = httpx.get(f"{stack.base}/v1/devices/t-2/conflicts", headers=reader).json()
    assert (seen["stored"]["value"], seen["offered"]["value"]) == (20.5, 19.0)


def test_a_device_token_is_its_own_and_rotate_and_revoke_take_effect_at_once(
    stack: IotStack, admin: str
) -> None:
    one = provision(stack.base, admin, device="t-3")
    other = provision(stack.base, admin, device="t-4")
    body = batch(reading("temp", NOW, 20.0))
    batch_id = send(stack.base, one, body).json()["id"]
    peek = httpx.get(f"{stack.base}/v1/telemetry/batches/{batch_id}", headers=auth(other))
    assert peek.status_code == 404

    rotated = httpx.post(f"{stack.base}/v1/devices/t-3/credential", headers=auth(admin))
    assert rotated.status_code == 201
    fresh = rotated.json()["token"]
    stale = send(stack.base, one, body)
    assert stale.status_code == 401 and stale.json()["code"] == "invalid_device_token"
    assert send(stack.base, fresh, body).status_code == 202
    assert (
        httpx.delete(f"{stack.base}/v1/devices/t-3/credential", headers=auth(admin)).status_code
        == 204
    )
    assert send(stack.base, fresh, body).status_code == 401
    device = httpx.get(f"{stack.base}/v1/devices/t-3", headers=auth(admin)).json()
    assert device["credential"] == "revoked"


def test_bad_requests_are_refused_before_anything_is_kept(stack: IotStack, admin: str) -> None:
    token = provision(stack.base, admin, device="t-5")
    body = batch(reading("temp", NOW, 20.0))
    assert send(stack.base, admin, body).status_code == 401  # an API key is no device token
    no_token = httpx.post(f"{stack.base}/v1/telemetry", content=body)
    assert no_token.status_code == 401
    unknown = send(stack.base, token, body, content_type="application/xml")
    assert unknown.status_code == 415 and unknown.json()["field"] == "Content-Type"
    huge = send(stack.base, token, b"x" * 70_000)
    assert huge.status_code == 413 and huge.json()["field"] == "body"
    empty = send(stack.base, token, b"")
    assert empty.status_code == 422 and empty.json()["field"] == "body"
    # Authentication comes before the body: a bad token learns nothing about it.
    assert send(stack.base, "dv_00_zz", b"x" * 70_000).status_code == 401
    assert count_rows(stack.settings, "iot_batches") == 0


def test_beat_folds_stored_readings_into_the_rollups_late_ones_too(
    stack: IotStack, admin: str
) -> None:
    token = provision(stack.base, admin, device="t-6")
    minute = (NOW - timedelta(hours=2)).replace(second=0)
    first = batch(
        reading("temp", minute, 10.0), reading("temp", minute + timedelta(seconds=20), 30.0)
    )
    _stored(stack, token, send(stack.base, token, first).json()["id"])
    late = batch(reading("temp", minute + timedelta(seconds=10), 50.0))
    _stored(stack, token, send(stack.base, token, late).json()["id"])
    reader = auth(stack.key("iot:read"))

    def answer(every: int) -> list[tuple[Any, ...]]:
        got = httpx.get(
            f"{stack.base}/v1/devices/t-6/aggregates",
            params={"metric": "temp", "since": (minute - timedelta(days=1)).isoformat(),
                    "until": (minute + timedelta(minutes=1)).isoformat(), "every": every},
            headers=reader,
        )  # fmt: skip
        assert got.status_code == 200, got.text
        return [(b["count"], b["min"], b["max"], b["sum"], b["avg"], b["last"]) for b in got.json()]

    # Right at once (the unfolded minutes come from raw), and the same once beat has folded.
    expected = [(3, 10.0, 50.0, 90.0, 30.0, 30.0)]
    assert answer(60) == answer(86_400 + 60) == expected

    def folded() -> bool:
        return count_rows(stack.settings, "iot_rollup_dirty") == 0

    wait_until(folded, timeout=60, what="the late reading to be rolled up")
    assert count_rows(stack.settings, "iot_rollups") == 3  # its minute, hour and day
    assert answer(3_600) == answer(86_400 + 3_600) == expected  # new questions: not cached


def test_the_built_in_formats_json_senml_and_line_protocol_end_to_end(
    stack: IotStack, admin: str
) -> None:
    profile = {
        "id": "weather",
        "metrics": {
            "temp": {"type": "number", "unit": "Cel"},
            "hum": {"type": "number"},
            "door": {"type": "boolean"},
        },
    }
    token = provision(stack.base, admin, device="w-1", profile=profile)
    now = int(NOW.timestamp())
    json_body = json.dumps({"readings": [{"metric": "temp", "value": 20.0, "unit": "Cel",
                                          "ts": now - 30}]}).encode()  # fmt: skip
    pack = [{"bn": "w-1:", "bt": now - 20, "n": "temp", "u": "Cel", "v": 21.0},
            {"n": "door", "vb": True}, {"n": "nope", "v": 1}]  # fmt: skip
    senml_body = json.dumps(pack).encode()
    line_body = f"temp,unit=Cel value=22.0 {now - 10}000000000\nhum value=40i {now - 10}000000000\n"
    results = [
        _stored(stack, token, send(stack.base, token, body, content_type=kind).json()["id"])
        for kind, body in (
            ("application/json", json_body),
            ("application/senml+json", senml_body),
            ("text/plain; charset=utf-8", line_body.encode()),
        )
    ]
    assert [r["stored"] for r in results] == [1, 2, 2]
    assert [(x["index"], x["code"]) for x in results[1]["refusals"]] == [(2, "unknown_metric")]
    latest = httpx.get(f"{stack.base}/v1/devices/w-1/latest", headers=auth(admin)).json()
    assert {(r["metric"], r["value"]) for r in latest} == {
        ("temp", 22.0), ("door", True), ("hum", 40.0),
    }  # fmt: skip

    broken = send(stack.base, token, b"{not json", content_type="application/json")
    assert broken.status_code == 202

    def refused() -> dict[str, Any] | None:
        view: dict[str, Any] = httpx.get(
            f"{stack.base}/v1/telemetry/batches/{broken.json()['id']}", headers=auth(token)
        ).json()
        return view if view["status"] == "refused" else None

    (whole,) = wait_until(refused, timeout=60, what="the broken batch to be refused")["refusals"]
    assert whole["index"] is None and whole["field"] == "body"


def test_line_protocol_timestamps_in_the_precision_the_sender_names(
    stack: IotStack, admin: str
) -> None:
    profile = {"id": "coarse", "metrics": {"temp": {"type": "number"}, "hum": {"type": "number"}}}
    token = provision(stack.base, admin, device="p-1", profile=profile)
    seconds, millis = int(NOW.timestamp()) - 60, int(NOW.timestamp()) * 1000 - 30_000
    # Influx's ?precision=, and the media type's parameter (what MQTT can carry).
    by_query = httpx.post(
        f"{stack.base}/v1/telemetry?precision=s",
        content=f"temp value=1 {seconds}\n".encode(),
        headers={**auth(token), "Content-Type": "text/plain"},
    )
    by_type = send(stack.base, token, f"hum value=2 {millis}\n".encode(),
                   content_type="text/plain; precision=ms")  # fmt: skip
    for answer in (by_query, by_type):
        assert answer.status_code == 202, answer.text
        assert _stored(stack, token, answer.json()["id"])["stored"] == 1
    latest = httpx.get(f"{stack.base}/v1/devices/p-1/latest", headers=auth(admin)).json()
    assert {r["metric"]: datetime.fromisoformat(r["ts"]) for r in latest} == {
        "temp": datetime.fromtimestamp(seconds, UTC),
        "hum": datetime.fromtimestamp(millis / 1000, UTC),
    }

    for query, content_type in (
        ("?precision=h", "text/plain"),  # not a precision
        ("", "application/json; precision=ms"),  # not line protocol
        ("?precision=s", "text/plain; precision=ms"),  # the two disagree
    ):
        refused = httpx.post(
            f"{stack.base}/v1/telemetry{query}",
            content=b"temp value=1\n",
            headers={**auth(token), "Content-Type": content_type},
        )
        assert refused.status_code == 422, (query, content_type, refused.text)
        assert refused.json()["field"] == "precision", refused.json()


def test_batches_are_listed_newest_first_with_what_they_refused(
    stack: IotStack, admin: str
) -> None:
    token = provision(stack.base, admin, device="l-1")
    other = provision(stack.base, admin, device="l-2")
    good = send(stack.base, token, batch(reading("temp", NOW, 20.0)))
    partly = send(stack.base, token, batch(reading("temp", NOW, 21.0), reading("nope", NOW, 1)))
    broken = send(stack.base, token, b"{not json")
    send(stack.base, other, batch(reading("temp", NOW, 5.0)))
    many = send(stack.base, other, batch(*[reading(f"no-{n}", NOW, 1) for n in range(25)]))
    ids = [answer.json()["id"] for answer in (good, partly, broken)]

    def listed(key: str, query: str) -> dict[str, Any]:
        answer = httpx.get(f"{stack.base}/v1/telemetry/batches{query}", headers=auth(key))
        assert answer.status_code == 200, answer.text
        page: dict[str, Any] = answer.json()
        return page

    wait_until(
        lambda: listed(token, "?status=received")["items"] == [],
        timeout=60,
        what="every batch to be stored or refused",
    )

    own = listed(token, "")["items"]  # a device sees its own batches only
    assert [b["id"] for b in own] == ids[::-1]
    refused = listed(token, "?with_refusals=true")["items"]
    assert [(b["id"], b["status"], [r["field"] for r in b["refusals"]]) for b in refused] == [
        (ids[2], "refused", ["body"]),  # not a batch at all
        (ids[1], "stored", ["metric"]),  # its other reading was stored
    ]
    assert refused[1]["refusals"][0]["code"] == "unknown_metric"
    assert [b["refusals_total"] for b in refused] == [1, 1]
    assert [b["id"] for b in listed(token, "?status=refused")["items"]] == [ids[2]]
    foreign = httpx.get(f"{stack.base}/v1/telemetry/batches?device=l-2", headers=auth(token))
    assert foreign.status_code == 404

    reader = stack.key("iot:read")  # an operator sees every device's, or one device's
    assert len(listed(reader, "?limit=100")["items"]) >= 5
    # A listing shows a batch's first 20 refusals and how many it has; its own GET, all.
    [crowded] = listed(reader, "?device=l-2&with_refusals=true")["items"]
    assert (crowded["id"], len(crowded["refusals"]), crowded["refusals_total"]) == (
        many.json()["id"],
        20,
        25,
    )
    assert crowded["refusals"][0]["index"] == 0
    whole = httpx.get(f"{stack.base}/v1/telemetry/batches/{crowded['id']}", headers=auth(reader))
    assert (len(whole.json()["refusals"]), whole.json()["refusals_total"]) == (25, 25)
    first = listed(reader, "?device=l-1&limit=2")
    rest = listed(reader, f"?device=l-1&limit=2&cursor={first['next_cursor']}")
    assert [b["id"] for b in first["items"] + rest["items"]] == ids[::-1]
    assert rest["next_cursor"] is None
