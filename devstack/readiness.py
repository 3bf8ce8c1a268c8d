"""Is it up yet? The HTTP checks the dev stack and the chaos battery wait on."""

from __future__ import annotations

import httpx


def answers(url: str, *, timeout: float = 0.5) -> bool:
    """True when `url` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def flower_sees_workers(flower_url: str, user: str, password: str) -> bool:
    """True once Flower gets the worker's events (`status`: heartbeats reached its event
    receiver, so no task event is missed from now on) and lists it (`refresh` fills the
    worker list its dashboard shows, left empty when the worker was not up at Flower's start)."""
    try:
        live = httpx.get(
            f"{flower_url}/api/workers", params={"status": 1}, auth=(user, password), timeout=5
        )
        if live.status_code != 200 or not any(live.json().values()):
            return False
        listed = httpx.get(
            f"{flower_url}/api/workers", params={"refresh": 1}, auth=(user, password), timeout=5
        )
    except httpx.HTTPError:
        return False
    return listed.status_code == 200 and bool(listed.json())
