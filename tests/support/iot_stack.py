"""A whole pipeline with the IoT domain, on a Redis prefix of its own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import JobPolicy, Settings
from devstack.processes import Process, isolated
from store.api_keys import create_key
from store.db import transaction
from tasks.iot.settings import IotSettings
from tasks.registry import domains
from tests.support.stack import start_api, start_process, start_worker


@dataclass
class IotStack:
    """The settings the processes read, the API's base URL, and the processes."""

    settings: Settings
    base: str
    processes: list[Process] = field(default_factory=list)

    def key(self, *scopes: str) -> str:
        """A new API key with `scopes`."""
        with transaction(self.settings) as session:
            _, token = create_key(
                session, name="iot-ops", scopes=list(scopes), known=domains(self.settings).scopes
            )
        return token


def run_iot_stack(
    settings: Settings,
    logs_dir: Path,
    *,
    name: str,
    worker: bool = True,
    beat: bool = True,
    lease: int = 20,
    **iot: Any,
) -> Iterator[IotStack]:
    """API, relay, beat (unless `beat` is False: its jobs would queue on `iot` too) and a
    worker (unless the test starts its own) for one module."""
    policies = {**settings.job_policies, "iot.ingest": JobPolicy(lease_timeout=lease)}
    own = isolated(
        settings,
        job_policies=policies,
        iot=IotSettings(
            max_batch_bytes=64_000,
            **{"rollup_interval": 1.0, **iot},
        ),
    )
    api, base = start_api(own, logs_dir, name=f"{name}-api")
    stack = IotStack(own, base, [api, start_process(own, logs_dir, "relay")])
    if beat:
        stack.processes.append(start_process(own, logs_dir, "beat"))
    if worker:
        stack.processes.append(start_worker(own, logs_dir, name=f"{name}-worker"))
    yield stack
    for proc in stack.processes:
        proc.stop()
