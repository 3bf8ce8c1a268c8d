"""The IoT API's request bodies through a real intake process: strict (only JSON true/false is a
boolean, only an integer an integer, no string read as a number), each refusal a 422 naming
its field, and an alert rule whose `clear_at` is on the wrong side of `set_at` refused naming
`clear_at`. What the README documents still gets through."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from config import Settings
from tests.support.api import auth
from tests.support.iot import PROFILE, provision
from tests.support.ledger import clean_tables

PROBLEM = "application/problem+json"
RULE: dict[str, Any] = {"id": "hot", "profile": "thermo", "metric": "temp", "direction": "above",
                        "set_at": 30, "clear_at": 25, "consecutive": 2, "channel": "email",
                        "to": "ops@example.com"}  # fmt: skip


@pytest.fixture
def admin(settings: Settings, api: str, make_key: Callable[..., str]) -> Iterator[str]:
    """An iot:admin key, with profile `thermo` and its device `d-1` provisioned."""
    key = make_key("iot-admin", ("iot:admin", "iot:read"))
    provision(api, key, device="d-1")
    yield key
    clean_tables(settings, domain="iot")


def _refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["field"] == field, problem
    assert problem["errors"][0]["field"] == field, problem


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, 1.0, None, [], {}])
def test_maintenance_is_a_json_boolean_only(api: str, admin: str, value: Any) -> None:
    url = f"{api}/v1/devices/d-1"
    _refused(httpx.patch(url, json={"maintenance": value}, headers=auth(admin), timeout=10),
             "maintenance")  # fmt: skip
    seen = httpx.get(url, headers=auth(admin), timeout=10).json()
    assert seen["maintenance"] is False  # nothing was coerced and stored
    on = httpx.patch(url, json={"maintenance": True}, headers=auth(admin), timeout=10)
    assert on.status_code == 200 and on.json()["maintenance"] is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"late_window": "3600"}, "late_window"),
        ({"late_window": True}, "late_window"),
        ({"future_skew": "60"}, "future_skew"),
        ({"metrics": {"temp": {"type": "number", "min": "-40"}}}, "metrics.temp.min"),
        ({"metrics": {"temp": {"type": "number", "max": False}}}, "metrics.temp.max"),
        ({"metrics": {"temp": {"type": "number", "interval": "60"}}}, "metrics.temp.interval"),
        ({"metrics": {"temp": {"type": "number", "unit": 5}}}, "metrics.temp.unit"),
        ({"id": 5}, "id"),
    ],
)
def test_a_profile_takes_no_coerced_values(
    api: str, admin: str, change: dict[str, Any], field: str
) -> None:
    body = {**PROFILE, "id": "p-2", **change}
    answer = httpx.post(f"{api}/v1/device-profiles", json=body, headers=auth(admin), timeout=10)
    _refused(answer, field)


def test_a_profile_as_the_readme_writes_it_is_accepted(api: str, admin: str) -> None:
    body = {"id": "tour", "metrics": {
        "temp": {"type": "number", "unit": "Cel", "min": -40, "max": 125, "interval": 60},
        "door": {"type": "boolean"}}, "future_policy": "clamp", "late_window": 3600,
        "future_skew": 1.5}  # fmt: skip
    answer = httpx.post(f"{api}/v1/device-profiles", json=body, headers=auth(admin), timeout=10)
    assert answer.status_code == 201, answer.text
    assert answer.json()["metrics"]["temp"]["min"] == -40
    device = httpx.post(f"{api}/v1/devices", json={"id": "t-1", "profile": 7},
                        headers=auth(admin), timeout=10)  # fmt: skip
    _refused(device, "profile")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consecutive": "2"}, "consecutive"),
        ({"consecutive": 2.0}, "consecutive"),
        ({"consecutive": True}, "consecutive"),
        ({"set_at": "30"}, "set_at"),
        ({"clear_at": True}, "clear_at"),
        ({"for_seconds": "120", "consecutive": 1}, "for_seconds"),
        ({"to": 12345}, "to"),
    ],
)
def test_an_alert_rule_takes_no_coerced_values(
    api: str, admin: str, change: dict[str, Any], field: str
) -> None:
    answer = httpx.post(f"{api}/v1/alert-rules", json={**RULE, **change}, headers=auth(admin),
                        timeout=10)  # fmt: skip
    _refused(answer, field)


@pytest.mark.parametrize(
    "change",
    [
        {"direction": "above", "set_at": 25, "clear_at": 30},  # clears above where it fires
        {"direction": "below", "set_at": 10, "clear_at": 5},  # clears below where it fires
    ],
)
def test_clear_at_on_the_wrong_side_of_set_at_is_refused_naming_clear_at(
    api: str, admin: str, change: dict[str, Any]
) -> None:
    answer = httpx.post(f"{api}/v1/alert-rules", json={**RULE, **change}, headers=auth(admin),
                        timeout=10)  # fmt: skip
    _refused(answer, "clear_at")
    assert "set_at" in answer.json()["detail"]


def test_rules_as_the_readme_writes_them_are_accepted(api: str, admin: str) -> None:
    rules = [
        RULE,
        {**RULE, "id": "cold", "direction": "below", "set_at": 5, "clear_at": 8.5},
        {**RULE, "id": "flat", "set_at": 30, "clear_at": 30},  # no band: allowed
        {**RULE, "id": "slow", "consecutive": 1, "for_seconds": 120},
    ]
    for rule in rules:
        answer = httpx.post(f"{api}/v1/alert-rules", json=rule, headers=auth(admin), timeout=10)
        assert answer.status_code == 201, answer.text
    assert answer.json()["for_seconds"] == 120


def test_a_shadow_state_holds_any_json_but_its_version_is_an_integer(api: str, admin: str) -> None:
    url = f"{api}/v1/devices/d-1/shadow/desired"
    state = {"on": "yes", "level": 1, "flag": True, "ratio": 0.5, "none": None}
    for version in ("0", 0.0, False):
        bad = httpx.put(url, json={"state": state, "version": version}, headers=auth(admin),
                        timeout=10)  # fmt: skip
        _refused(bad, "version")
    good = httpx.put(url, json={"state": state, "version": 0}, headers=auth(admin), timeout=10)
    assert good.status_code == 200 and good.json()["desired"] == state
