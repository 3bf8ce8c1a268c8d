"""`switchyard healthcheck`: container health probes that test what each process is for."""

from __future__ import annotations

import socket
from enum import StrEnum

import httpx

from config import Settings

RELAY_MAX_LAG_SECONDS = 60.0


class Component(StrEnum):
    """What a container runs."""

    API = "api"
    RELAY = "relay"
    WORKER = "worker"
    BEAT = "beat"
    FLOWER = "flower"
    MQTT_BRIDGE = "mqtt-bridge"


def _http_ok(url: str, *, auth: tuple[str, str] | None = None) -> tuple[bool, str]:
    try:
        resp = httpx.get(url, timeout=5, auth=auth)
    except httpx.HTTPError as exc:
        return False, f"{url}: {exc}"
    return resp.status_code == 200, f"{url}: {resp.status_code}"


def _relay(settings: Settings) -> tuple[bool, str]:
    from store.db import transaction
    from store.stats import relay_lag

    with transaction(settings) as session:
        lag = relay_lag(session)
    age = lag.oldest_age_seconds or 0.0
    return age < RELAY_MAX_LAG_SECONDS, f"{lag.backlog} due outbox rows, oldest {age:.1f}s"


def _beat(settings: Settings) -> tuple[bool, str]:
    from sqlalchemy import func, select

    from store.db import transaction
    from store.models import ScheduleFire

    with transaction(settings) as session:
        age = session.execute(
            select(func.extract("epoch", func.now() - func.max(ScheduleFire.fired_at)))
        ).scalar_one()
    limit = 3 * settings.relay.sweep_interval + 30
    if age is None:
        return False, "beat has never fired"
    return float(age) < limit, f"last fire {float(age):.1f}s ago (limit {limit:.0f}s)"


def _worker(settings: Settings) -> tuple[bool, str]:
    from workers.app import create_celery

    host = socket.gethostname()
    replies = create_celery(settings).control.ping(timeout=5)
    mine = [name for reply in replies for name in reply if name.endswith(f"@{host}")]
    return bool(mine), f"answered: {', '.join(mine) or 'none'} (host {host})"


def _mqtt_bridge(settings: Settings) -> tuple[bool, str]:
    import json
    import time

    from tasks.iot.mqtt_bridge import HEARTBEAT_EVERY, heartbeat_path

    path = heartbeat_path(settings)
    try:
        beat = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, f"no heartbeat in {path}"
    age = time.time() - float(beat["at"])
    fresh = age < 3 * HEARTBEAT_EVERY
    return fresh and bool(
        beat["connected"]
    ), f"heartbeat {age:.1f}s ago, connected={beat['connected']}"


def check(component: Component, settings: Settings) -> tuple[bool, str]:
    """Whether `component` on this host does its job, and why."""
    if component is Component.API:
        return _http_ok(f"http://127.0.0.1:{settings.api.port}/readyz")
    if component is Component.FLOWER:
        return _http_ok(f"http://127.0.0.1:{settings.flower.port}/healthcheck")
    if component is Component.RELAY:
        return _relay(settings)
    if component is Component.BEAT:
        return _beat(settings)
    if component is Component.MQTT_BRIDGE:
        return _mqtt_bridge(settings)
    return _worker(settings)
