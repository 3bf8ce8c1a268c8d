"""Processes refuse an unmigrated database and say what to run; `switchyard migrate` fixes it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from config import Settings
from devstack.processes import settings_env, switchyard
from ops.migrate import require_migrated
from store.db import dispose_engines
from tests.support.servers import ADMIN_URL


@pytest.fixture
def empty_database(settings: Settings) -> Iterator[Settings]:
    """A second, empty database of this run (dropped afterwards)."""
    name = f"switchyard_test_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = settings.database.url.rpartition("/")[0]
    yield settings.model_copy(
        update={"database": settings.database.model_copy(update={"url": f"{base}/{name}"})}
    )
    dispose_engines()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.mark.parametrize("command", ["api", "worker", "relay", "beat"])
def test_processes_refuse_an_unmigrated_database(empty_database: Settings, command: str) -> None:
    done = subprocess.run(
        switchyard(command),
        env=settings_env(empty_database),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "run `switchyard migrate` first" in done.stderr


def test_migrate_brings_the_database_up_to_date(empty_database: Settings) -> None:
    done = subprocess.run(
        switchyard("migrate"),
        env=settings_env(empty_database),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    require_migrated(empty_database)
