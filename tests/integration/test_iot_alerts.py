"""Alerts against the real PostgreSQL: hysteresis, N consecutive readings, late data ignored,
flapping collapsed, and exactly one notification (and delivery job) per transition, even for
concurrent batches of one device."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from config import Settings
from errors import InvalidFieldError
from store.db import transaction
from store.models import Job
from tasks.iot import alert_rules, devices, service
from tasks.iot.alert_rules import AlertRuleCreate
from tasks.iot.models import AlertEvent
from tasks.notifications.models import Notification
from tests.support.iot import MEDIA_TYPE, PROFILE, batch, reading
from tests.support.ledger import clean_tables

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def device(settings: Settings, clean_ledger: None) -> Iterator[str]:
    """A thermo device whose temp fires above 30 after two readings, resolves at 25."""
    with transaction(settings) as s:
        devices.create_profile(
            s, profile_id="thermo", metrics=PROFILE["metrics"], future_policy="refuse",
            late_window=None, future_skew=None,
        )  # fmt: skip
        devices.create_device(s, device_id="a-1", profile_id="thermo")
        alert_rules.create(
            s,
            AlertRuleCreate(
                id="hot",
                profile="thermo",
                metric="temp",
                set_at=30,
                clear_at=25,
                consecutive=2,
                channel="email",
                to="ops@example.com",
            ),
            settings=settings,
        )
    yield "a-1"
    clean_tables(settings, domain="iot")


def _send(settings: Settings, *temps: tuple[int, float]) -> None:
    body = batch(*(reading("temp", T0 + timedelta(seconds=t), v) for t, v in temps))
    with transaction(settings) as s:
        batch_id = service.receive(
            s, device_id="a-1", content_type=MEDIA_TYPE, body=body, received_at=T0,
            settings=settings,
        ).id  # fmt: skip
    with transaction(settings) as s:
        service.ingest(s, batch_id, extra_parsers={}, settings=settings, now=T0)


def _events(settings: Settings) -> list[tuple[str, float | None, float | None]]:
    with transaction(settings) as s:
        rows = s.scalars(select(AlertEvent).order_by(AlertEvent.id)).all()
        return [(e.kind, e.value, e.duration) for e in rows]


def _notifications(settings: Settings) -> tuple[int, int]:
    with transaction(settings) as s:
        notes = s.scalar(select(func.count()).select_from(Notification))
        jobs = s.scalar(
            select(func.count()).where(Job.type == "notifications.deliver", Job.producer == "iot")
        )
    return int(notes or 0), int(jobs or 0)


def test_hysteresis_and_consecutive_readings_make_one_notification_per_transition(
    settings: Settings, device: str
) -> None:
    _send(settings, (0, 31.0), (10, 20.0), (20, 31.0))  # never two in a row: no alert
    assert _events(settings) == []
    _send(settings, (30, 32.0), (40, 29.0), (50, 31.0), (60, 26.0))  # fires; 29, 26 hold it
    _send(settings, (35, 10.0))  # late: older than what was evaluated, moves nothing
    assert _events(settings) == [("firing", 32.0, None)]
    _send(settings, (70, 25.0), (80, 24.0), (90, 31.0))  # resolves at 25 after 40 s
    assert _events(settings) == [("firing", 32.0, None), ("resolved", 25.0, 40.0)]
    assert _notifications(settings) == (2, 2)
    with transaction(settings) as s:
        subjects = s.scalars(select(Notification.subject).order_by(Notification.created_at))
        assert [(x or "").split(":")[0] for x in subjects] == ["[firing] hot", "[resolved] hot"]


def test_concurrent_batches_of_one_device_fire_once(settings: Settings, device: str) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            _send(settings, (100 + 10 * n, 40.0), (101 + 10 * n, 41.0))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [kind for kind, _, _ in _events(settings)] == ["firing"]
    assert _notifications(settings) == (1, 1)


def test_a_rule_is_refused_on_a_metric_that_is_not_a_number(
    settings: Settings, device: str
) -> None:
    with transaction(settings) as s, pytest.raises(InvalidFieldError) as refused:
        alert_rules.create(
            s,
            AlertRuleCreate(
                id="door",
                profile="thermo",
                metric="door",
                set_at=1,
                clear_at=0,
                channel="email",
                to="ops@example.com",
            ),
            settings=settings,
        )
    assert refused.value.field == "metric"


def _expected(
    rule: dict[str, Any], batches: list[list[tuple[int, float]]]
) -> list[tuple[str, float]]:
    """What one rule must do over the batches: the plain definition, reading by reading."""
    above = rule["direction"] == "above"
    firing, streak, since, newest, out = False, 0, None, -(10**9), []
    for readings in batches:
        for t, v in sorted(readings):
            if t <= newest:
                continue  # late: moves nothing
            newest = t
            if firing:
                if (v <= rule["clear_at"]) if above else (v >= rule["clear_at"]):
                    firing = False
                    out.append(("resolved", v))
                continue
            if (v > rule["set_at"]) if above else (v < rule["set_at"]):
                streak, since = streak + 1, t if since is None else since
            else:
                streak, since = 0, None
            held = (
                streak >= rule["consecutive"] if rule.get("for_seconds") is None
                else since is not None and t - since >= rule["for_seconds"]
            )  # fmt: skip
            if held:
                firing, streak, since = True, 0, None
                out.append(("firing", v))
    return out


def test_many_rules_over_many_batches_do_what_each_would_alone(
    settings: Settings, device: str
) -> None:
    rules = [
        {"id": f"t{n:02d}", "direction": "above" if n % 2 else "below",
         "set_at": 20 + n * 0.5 if n % 2 else 20 - n * 0.5,
         "clear_at": 18 + n * 0.5 if n % 2 else 22 - n * 0.5,
         **({"for_seconds": 15 + 20 * (n % 3)} if n % 4 == 0 else {"consecutive": 1 + n % 3})}
        for n in range(16)
    ]  # fmt: skip
    with transaction(settings) as s:
        for rule in rules:
            alert_rules.create(
                s,
                AlertRuleCreate.model_validate({"profile": "thermo", "metric": "temp",
                                                "channel": "email", "to": "ops@example.com",
                                                **rule}),
                settings=settings,
            )  # fmt: skip
    rng = random.Random(11)
    batches = [
        [(-2500 + 10 * (8 * b + i), round(rng.uniform(10, 30), 1)) for i in range(8)]
        for b in range(25)
    ]  # short batches: each one's extremes settle some rules and leave others to the fold
    batches.insert(12, [(-2490 + 10 * i, 50.0) for i in range(5)])  # late: older than evaluated
    for readings in batches:
        _send(settings, *readings)
    events = _events_by_rule(settings)
    expected = {r["id"]: _expected(r, batches) for r in rules}
    assert {k: v for k, v in expected.items() if v} == events
    assert sum(len(v) for v in expected.values()) > 20  # the data does cross the thresholds
    total = sum(len(v) for v in events.values())
    assert _notifications(settings) == (total, total)


def _events_by_rule(settings: Settings) -> dict[str, list[tuple[str, float]]]:
    with transaction(settings) as s:
        rows = s.scalars(
            select(AlertEvent).where(AlertEvent.rule_id != "hot").order_by(AlertEvent.id)
        ).all()
        out: dict[str, list[tuple[str, float]]] = {}
        for e in rows:
            assert e.value is not None
            out.setdefault(e.rule_id, []).append((e.kind, e.value))
        return out


def test_a_rule_declared_after_the_device_was_evaluated_gets_its_state(
    settings: Settings, device: str
) -> None:
    _send(settings, (0, 20), (10, 31))  # "hot"'s state exists now, one breach into its streak
    with transaction(settings) as s:
        alert_rules.create(
            s,
            AlertRuleCreate(id="warm", profile="thermo", metric="temp", set_at=28, clear_at=26,
                            channel="email", to="ops@example.com"),
            settings=settings,
        )  # fmt: skip
    _send(settings, (20, 32), (30, 20))
    assert _events(settings) == [("firing", 32.0, None), ("resolved", 20.0, 10.0)] * 2
    with transaction(settings) as s:
        rules = s.scalars(select(AlertEvent.rule_id).order_by(AlertEvent.id)).all()
    assert rules == ["hot", "hot", "warm", "warm"]
    assert _notifications(settings) == (4, 4)
