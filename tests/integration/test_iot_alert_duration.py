"""`for` duration alerts against the real PostgreSQL: firing once the breach has lasted the
duration of event time (receipt time plays no part), resolving with hysteresis, one
notification per transition; and rules of the wrong shape refused naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config import Settings
from errors import InvalidFieldError
from store.db import transaction
from tasks.iot import devices
from tests.support.api import count_rows
from tests.support.iot import (
    alert_events,
    batch,
    ingest,
    make_profile,
    make_rule,
    reading,
)
from tests.support.ledger import clean_tables

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
RECEIVED = T0 + timedelta(hours=1)  # every batch arrives at once: only event time counts


@pytest.fixture
def device(settings: Settings, clean_ledger: None) -> Iterator[str]:
    """A thermo device whose temp fires after 60 s above 30 and resolves at 25."""
    make_profile(settings)
    with transaction(settings) as s:
        devices.create_device(s, device_id="a-1", profile_id="thermo")
    make_rule(settings, id="hot-for", profile="thermo", metric="temp", set_at=30, clear_at=25,
              for_seconds=60)  # fmt: skip
    yield "a-1"
    clean_tables(settings, domain="iot")


def _send(settings: Settings, *temps: tuple[int, float]) -> None:
    body = batch(*(reading("temp", T0 + timedelta(seconds=t), v) for t, v in temps))
    ingest(settings, "a-1", body, now=RECEIVED)


def test_a_duration_rule_fires_after_the_breach_lasts_and_resolves_once(
    settings: Settings, device: str
) -> None:
    _send(settings, (0, 31.0), (30, 32.0), (50, 20.0))  # broken off after 50 s: nothing
    _send(settings, (60, 31.0), (100, 35.0))  # a new breach, 40 s so far
    assert alert_events(settings) == []
    _send(settings, (110, 36.0))
    _send(settings, (120, 33.0), (130, 40.0))  # 60 s at 120: fires there, once
    _send(settings, (70, 10.0))  # late: older than what was evaluated, moves nothing
    assert alert_events(settings) == [("hot-for", "a-1", "firing", 33.0, None)]
    _send(settings, (150, 28.0), (180, 25.0), (190, 31.0), (240, 32.0))  # resolves at 180
    assert alert_events(settings) == [
        ("hot-for", "a-1", "firing", 33.0, None),
        ("hot-for", "a-1", "resolved", 25.0, 60.0),
    ]
    _send(settings, (185, 10.0))  # late: does not break the breach that began at 190
    _send(settings, (250, 34.0))  # 60 s since 190: fires again
    kinds = [kind for _, _, kind, _, _ in alert_events(settings)]
    assert kinds == ["firing", "resolved", "firing"]
    assert count_rows(settings, "notifications") == 3
    assert count_rows(settings, "jobs WHERE type = 'notifications.deliver'") == 3


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"metric": "temp", "set_at": 30, "clear_at": 25, "for_seconds": 60, "consecutive": 3},
         "for_seconds"),
        ({"metric": "temp", "set_at": 30}, "clear_at"),
        ({"kind": "offline", "metric": "temp"}, "metric"),
        ({"kind": "offline", "for_seconds": 5}, "for_seconds"),
    ],
)  # fmt: skip
def test_a_rule_of_the_wrong_shape_is_refused_naming_the_field(
    settings: Settings, device: str, rule: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidFieldError) as refused:
        make_rule(settings, id="bad", profile="thermo", **rule)
    assert refused.value.field == field


def test_an_offline_rule_needs_a_profile_with_an_expected_interval(
    settings: Settings, device: str
) -> None:
    make_profile(settings, {"id": "bare", "metrics": {"temp": {"type": "number"}}})
    with pytest.raises(InvalidFieldError) as refused:
        make_rule(settings, id="silent", profile="bare", kind="offline")
    assert refused.value.field == "profile"
