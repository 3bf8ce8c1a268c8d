"""Device shadows through a real intake process: `iot:admin` sets the desired state, the
device's own token reports, and a stale version is refused (412 for If-Match, 409 for the
body's `version`), also between concurrent writers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.api import auth
from tests.support.iot import provision


@pytest.fixture
def keys(api: str, make_key: Callable[..., str]) -> dict[str, str]:
    """An admin key, a reader key, and the tokens of devices `s-1` and `s-2`."""
    admin = make_key("iot-admin", ("iot:admin", "iot:read"))
    return {
        "admin": admin,
        "reader": make_key("iot-reader", ("iot:read",)),
        "s-1": provision(api, admin, device="s-1"),
        "s-2": provision(api, admin, device="s-2"),
    }


def _put(
    api: str, key: str, part: str, body: dict[str, Any], device: str = "s-1", **headers: str
) -> httpx.Response:
    return httpx.put(
        f"{api}/v1/devices/{device}/shadow/{part}", json=body,
        headers={**auth(key), **headers}, timeout=10,
    )  # fmt: skip


def test_desired_by_admin_reported_by_the_device_each_write_a_version(
    api: str, keys: dict[str, str]
) -> None:
    empty = httpx.get(f"{api}/v1/devices/s-1/shadow", headers=auth(keys["reader"]))
    assert empty.status_code == 200 and empty.headers["etag"] == '"0"'
    assert (empty.json()["version"], empty.json()["desired"]) == (0, {})
    assert _put(api, keys["reader"], "desired", {"state": {"fan": "on"}}).status_code == 403
    desired = _put(api, keys["admin"], "desired", {"state": {"fan": "on", "hz": 50}})
    assert desired.status_code == 200 and desired.headers["etag"] == '"1"'
    reported = _put(api, keys["s-1"], "reported", {"state": {"fan": "off", "hz": 50}}, **{
        "If-Match": '"1"'})  # fmt: skip
    assert reported.status_code == 200, reported.text
    seen = httpx.get(f"{api}/v1/devices/s-1/shadow", headers=auth(keys["s-1"])).json()
    assert (seen["version"], seen["delta"]) == (2, {"fan": "on"})
    # A device reports for itself only, sees only its own shadow; a key cannot report.
    assert _put(api, keys["s-2"], "reported", {"state": {}}).status_code == 403
    assert httpx.get(f"{api}/v1/devices/s-1/shadow", headers=auth(keys["s-2"])).status_code == 404
    assert _put(api, keys["admin"], "reported", {"state": {}}).status_code == 401


def test_a_stale_version_is_refused_412_or_409_naming_it(api: str, keys: dict[str, str]) -> None:
    assert _put(api, keys["admin"], "desired", {"state": {"a": 1}}).status_code == 200
    stale = _put(api, keys["admin"], "desired", {"state": {"a": 2}}, **{"If-Match": '"0"'})
    assert stale.status_code == 412 and stale.json()["field"] == "If-Match"
    conflict = _put(api, keys["admin"], "desired", {"state": {"a": 2}, "version": 0})
    assert conflict.status_code == 409 and conflict.json()["field"] == "version"
    current = _put(api, keys["admin"], "desired", {"state": {"a": 3}, "version": 1})
    assert current.status_code == 200 and current.json()["version"] == 2
    bad = _put(api, keys["admin"], "desired", {"state": ["not", "an", "object"]})
    assert bad.status_code == 422 and "state" in bad.json()["field"]
    unknown = _put(api, keys["admin"], "desired", {"state": {}}, device="nope")
    assert unknown.status_code == 404


def test_of_concurrent_writers_of_one_version_exactly_one_wins(
    api: str, keys: dict[str, str]
) -> None:
    def write(i: int) -> int:
        body = {"state": {"writer": i}}
        return _put(api, keys["admin"], "desired", body, **{"If-Match": '"0"'}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(write, range(8)))
    assert codes == [200] + [412] * 7
    final = httpx.get(f"{api}/v1/devices/s-1/shadow", headers=auth(keys["reader"])).json()
    assert final["version"] == 1
