"""Processes that must not start as configured say why and exit non-zero."""

from __future__ import annotations

import subprocess

import pytest

from config import Settings
from devstack.processes import free_port, settings_env, switchyard


@pytest.mark.parametrize("command", [("api", "--port", "0"), ("worker",)])
def test_prod_without_a_sealing_key_refuses_to_start(
    settings: Settings, command: tuple[str, ...]
) -> None:
    env = {**settings_env(settings), "SWITCHYARD_ENV": "prod"}
    env.pop("SWITCHYARD_NOTIFICATIONS__SECRET_KEY", None)
    env["SWITCHYARD_API__PORT"] = str(free_port())
    done = subprocess.run(switchyard(*command), env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "SWITCHYARD_NOTIFICATIONS__SECRET_KEY must be set in prod" in done.stderr
    assert "Traceback" not in done.stderr
