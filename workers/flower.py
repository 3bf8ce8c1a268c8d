"""Flower, wired for Switchyard: task events on, basic auth from settings, state kept on disk."""

from __future__ import annotations

import os
from pathlib import Path

from config import Settings
from errors import SwitchyardError


class FlowerConfigError(SwitchyardError):
    """Flower may not start as configured."""

    code = "flower_misconfigured"


def _metrics_behind_auth() -> None:
    """Flower serves `/metrics` to anyone; route it to a handler that asks for credentials."""
    from flower import urls
    from flower.views.monitor import Metrics
    from tornado.web import authenticated

    class AuthenticatedMetrics(Metrics):
        @authenticated
        async def get(self) -> None:
            await super().get()

    for index, entry in enumerate(urls.handlers):  # the list Flower's app is built from
        if isinstance(entry, tuple) and entry[1] is Metrics:
            urls.handlers[index] = (entry[0], AuthenticatedMetrics, *entry[2:])


def flower_argv(settings: Settings, *, host: str, port: int) -> list[str]:
    """The `celery flower` arguments; credentials travel in FLOWER_BASIC_AUTH, not in argv."""
    state = Path(settings.data_dir) / "flower"
    state.mkdir(parents=True, exist_ok=True)
    argv = [
        "flower",
        f"--address={host}",
        f"--port={port}",
        f"--persistent={settings.flower.persistent}",
        f"--db={state / 'flower.db'}",
        "--state_save_interval=10000",
        "--enable_events=True",
    ]
    if settings.flower.url_prefix:
        argv.append(f"--url_prefix={settings.flower.url_prefix}")
    return argv


def run_flower(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """Run Flower here until stopped; refuses to run unauthenticated outside dev."""
    from workers.app import create_celery

    try:
        auth = settings.flower_basic_auth()
    except ValueError as exc:
        raise FlowerConfigError(str(exc)) from exc
    if auth is not None:
        # Read by Flower itself; kept out of argv so `ps` never shows it.
        os.environ["FLOWER_BASIC_AUTH"] = auth
        _metrics_behind_auth()
    argv = flower_argv(
        settings,
        host=host or settings.flower.host,
        port=port if port is not None else settings.flower.port,
    )
    return create_celery(settings).start(argv) or 0
