"""`switchyard healthcheck`, the probe the compose file runs, against real processes and rows."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from config import Settings
from devstack.processes import settings_env, switchyard
from store.db import transaction
from store.models import ScheduleFire


def probe(settings: Settings, component: str) -> subprocess.CompletedProcess[str]:
    """Run the healthcheck with the run's settings."""
    return subprocess.run(
        switchyard("healthcheck", component),
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_worker_and_relay_probes_pass_on_a_running_pipeline(
    pipeline: str, settings: Settings, clean_ledger: None
) -> None:
    worker = probe(settings, "worker")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert "worker@" in worker.stdout
    relay = probe(settings, "relay")
    assert relay.returncode == 0, relay.stdout + relay.stderr


def test_beat_probe_follows_the_last_fire(settings: Settings, clean_ledger: None) -> None:
    with transaction(settings) as session:
        session.add(ScheduleFire(schedule="relay-sweep", slot=1, fired_by="test"))
    assert probe(settings, "beat").returncode == 0
    with transaction(settings) as session:
        session.execute(
            update(ScheduleFire).values(fired_at=datetime.now(UTC) - timedelta(hours=1))
        )
    stale = probe(settings, "beat")
    assert stale.returncode == 1
    assert "unhealthy" in stale.stdout


def test_an_unknown_component_is_a_usage_error(settings: Settings) -> None:
    assert probe(settings, "toaster").returncode == 2
