"""IoT test helpers: a tiny JSON batch format (the real formats are `tasks.iot.formats`'s),
and provisioning a profile and a device over HTTP."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from tasks.iot.readings import Parsed, Reading, Refusal
from tests.support.api import auth

MEDIA_TYPE = "application/vnd.test-readings+json"
PARSER = "tests.support.iot:parse"

PROFILE: dict[str, Any] = {
    "id": "thermo",
    "metrics": {
        "temp": {"type": "number", "unit": "Cel", "min": -50, "max": 150, "interval": 60},
        "door": {"type": "boolean"},
        "mode": {"type": "string"},
    },
}


def parse(body: bytes, *, device: str, received_at: datetime) -> Parsed:
    """`{"readings": [{"metric", "ts", "value", "unit"?, "device"?}, …]}` → readings."""
    out = Parsed()
    for index, item in enumerate(json.loads(body)["readings"]):
        try:
            ts = datetime.fromisoformat(item["ts"])
            reading = Reading(
                device=item.get("device", device),
                metric=item["metric"],
                ts=ts,
                value=item["value"],
                unit=item.get("unit"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            out.refusals.append(Refusal(index, "malformed", str(exc)))
            continue
        out.readings.append((index, reading))
    return out


def batch(*readings: dict[str, Any]) -> bytes:
    """A body of the test format."""
    return json.dumps({"readings": list(readings)}).encode()


def reading(metric: str, ts: datetime, value: Any, **extra: Any) -> dict[str, Any]:
    """One reading of the test format."""
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
