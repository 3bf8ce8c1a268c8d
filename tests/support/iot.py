"""IoT test helpers: batches of the built-in JSON format, storing them in-process as a worker
would, provisioning a profile and a device over HTTP, and declaring profiles and rules
in-process."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from config import Settings
from store.db import transaction
from tasks.iot import alert_rules, devices, service
from tasks.iot.alert_rules import AlertRuleCreate
from tasks.iot.models import AlertEvent
from tests.support.api import auth

MEDIA_TYPE = "application/json"

PROFILE: dict[str, Any] = {
    "id": "thermo",
    "metrics": {
        "temp": {"type": "number", "unit": "Cel", "min": -50, "max": 150, "interval": 60},
        "door": {"type": "boolean"},
        "mode": {"type": "string"},
    },
}


def batch(*readings: dict[str, Any]) -> bytes:
    """A JSON batch (`tasks/iot/formats/json_batch.py`)."""
    return json.dumps({"readings": list(readings)}).encode()


def reading(metric: str, ts: datetime, value: Any, **extra: Any) -> dict[str, Any]:
    """One reading of a JSON batch."""
    return {"metric": metric, "ts": ts.isoformat(), "value": value, **extra}


def provision(base: str, admin: str, *, device: str, profile: dict[str, Any] = PROFILE) -> str:
    """Create the profile (if new) and the device; returns the device's token."""
    made = httpx.post(f"{base}/v1/device-profiles", json=profile, headers=auth(admin), timeout=10)
    assert made.status_code in (201, 409), made.text
    answer = httpx.post(
        f"{base}/v1/devices",
        json={"id": device, "profile": profile["id"]},
        headers=auth(admin),
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def send(base: str, token: str, body: bytes, content_type: str = MEDIA_TYPE) -> httpx.Response:
    """POST /v1/telemetry."""
    return httpx.post(
        f"{base}/v1/telemetry",
        content=body,
        headers={**auth(token), "Content-Type": content_type},
        timeout=10,
    )


def ingest(settings: Settings, device: str, body: bytes, *, now: datetime) -> dict[str, Any]:
    """Receive a batch and store it in-process (what a worker does); returns its summary."""
    with transaction(settings) as session:
        batch_id = service.receive(
            session, device_id=device, content_type=MEDIA_TYPE, body=body, received_at=now,
            settings=settings,
        ).id  # fmt: skip
    with transaction(settings) as session:
        return service.ingest(session, batch_id, extra_parsers={}, settings=settings, now=now)


def make_profile(settings: Settings, profile: dict[str, Any] = PROFILE) -> None:
    """Declare a profile straight in the store."""
    with transaction(settings) as session:
        devices.create_profile(
            session, profile_id=profile["id"], metrics=profile["metrics"],
            future_policy=profile.get("future_policy", "refuse"), late_window=None,
            future_skew=None,
        )  # fmt: skip


def make_rule(settings: Settings, **rule: Any) -> None:
    """Declare an alert rule (email to ops@example.com unless told) straight in the store."""
    with transaction(settings) as session:
        alert_rules.create(
            session,
            AlertRuleCreate.model_validate({"channel": "email", "to": "ops@example.com", **rule}),
            settings=settings,
        )


def alert_events(settings: Settings) -> list[tuple[str, str, str, float | None, float | None]]:
    """Every alert transition in order: rule, device, kind, value, duration."""
    with transaction(settings) as session:
        rows = session.scalars(select(AlertEvent).order_by(AlertEvent.id)).all()
        return [(e.rule_id, e.device_id, e.kind, e.value, e.duration) for e in rows]
