"""A real Flower process for tests: its environment, its start, and reading its API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from config import Settings
from devstack.processes import Process, settings_env, switchyard, wait_until

USER, PASSWORD = "operator", "s3cret-flower-pw"


def flower_env(settings: Settings, data_dir: Path, *, port: int) -> dict[str, str]:
    """The run's settings, plus Flower's port, credentials and data dir."""
    env = {k: v for k, v in settings_env(settings).items() if k != "SWITCHYARD_FLOWER"}
    env.update(
        SWITCHYARD_DATA_DIR=str(data_dir),
        SWITCHYARD_FLOWER__PORT=str(port),
        SWITCHYARD_FLOWER__USER=USER,
        SWITCHYARD_FLOWER__PASSWORD=PASSWORD,
    )
    return env


def start_flower(env: dict[str, str], log_path: Path) -> tuple[Process, str]:
    """Run `switchyard flower` and wait until it answers."""
    proc = Process(switchyard("flower"), env=env, log_path=log_path)
    base = f"http://127.0.0.1:{env['SWITCHYARD_FLOWER__PORT']}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"flower exited:\n{proc.output()}")
        try:
            return httpx.get(f"{base}/healthcheck", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=30, what="Flower to answer")
    return proc, base


def get(base: str, path: str, **params: Any) -> Any:
    """GET Flower's API as the operator."""
    resp = httpx.get(f"{base}{path}", params=params, auth=(USER, PASSWORD), timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def live_worker(base: str) -> str:
    """The one worker whose heartbeats reach Flower: from then on Flower misses none of its
    events (they are not replayed to a late listener)."""
    alive = wait_until(
        lambda: [n for n, up in get(base, "/api/workers", status=1).items() if up],
        timeout=20,
        what="Flower to receive the worker's heartbeats",
    )
    [name] = alive
    return str(name)
