"""docker-compose.yml: parsed by docker-compose, valid against the Compose Specification's schema,
and holding every service the stack needs, configured only through documented variables.

Needs `docker-compose` (Debian's package; `make test` installs it) — no Docker engine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import Settings
from tasks.registry import domains

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
# A worker service for every queue the loaded domains declare, and no other.
WORKER_QUEUES = domains(Settings()).queues
INFRASTRUCTURE = {"postgres", "redis", "mqtt"}
LONG_RUNNING = (
    INFRASTRUCTURE
    | {"api", "relay", "beat", "flower", "payment-simulator", "mqtt-bridge"}
    | {f"worker-{q}" for q in WORKER_QUEUES}
)


def docker_compose() -> str:
    """The docker-compose binary; its absence is a failure, not a skip."""
    found = shutil.which("docker-compose")
    assert found, "docker-compose is missing: `make test` installs Debian's docker-compose package"
    return found


def compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`: interpolate and validate the file without an engine."""
    return subprocess.run(
        [docker_compose(), "-f", str(COMPOSE), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The resolved configuration, with .env.example's values."""
    done = compose_config(ENV_EXAMPLE)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_the_file_matches_the_compose_specification_schema() -> None:
    checker = Path(sys.executable).with_name("check-jsonschema")
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_service_is_present_with_health_restart_and_command(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == LONG_RUNNING | {"migrate"}
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["command"][0] == "api"
    for name in ("relay", "beat", "flower", "mqtt-bridge"):
        assert services[name]["command"][0] == name
    for queue in WORKER_QUEUES:
        command = services[f"worker-{queue}"]["command"]
        assert command[:3] == ["worker", "--queues", queue]
    for name in LONG_RUNNING - INFRASTRUCTURE:
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["postgres"]["condition"] == "service_healthy", name


def test_services_reach_each_other_only_through_environment(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in (LONG_RUNNING - INFRASTRUCTURE) | {"migrate"}:
        env = services[name]["environment"]
        assert env["SWITCHYARD_DATABASE__URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in env["SWITCHYARD_DATABASE__URL"], name
        assert env["SWITCHYARD_REDIS__URL"].startswith("redis://:CHANGE-me"), name
        assert env["SWITCHYARD_ENV"] == "prod"
    flower = services["flower"]["environment"]
    assert flower["SWITCHYARD_FLOWER__USER"] and flower["SWITCHYARD_FLOWER__PASSWORD"]
    redis_command = " ".join(services["redis"]["command"])
    for option in (
        "--appendonly yes",
        "--appendfsync everysec",
        "--maxmemory-policy noeviction",
        "--requirepass",
    ):
        assert option in redis_command
    assert services["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    mqtt_command = " ".join(services["mqtt"]["command"])
    for option in ("allow_anonymous false", "mosquitto_dynamic_security.so", "persistence true"):
        assert option in mqtt_command


def test_every_variable_is_documented_and_secrets_are_required(tmp_path: Path) -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
    empty = tmp_path / "empty.env"
    empty.write_text("")
    done = compose_config(empty)
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr


def test_the_image_is_slim_non_root_and_caches_dependencies() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert next(x for x in lines if x.startswith("FROM")).endswith("-slim")
    users = [x for x in lines if x.startswith("USER ")]
    assert users and users[-1] != "USER root"

    def where(prefix: str) -> int:
        return next(i for i, x in enumerate(lines) if x.startswith(prefix))

    assert where("COPY pyproject.toml") < where("&& pip install -r") < where("COPY store")
