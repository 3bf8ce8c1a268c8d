"""Starting the real Switchyard processes a test needs (the fixtures stop them)."""

from __future__ import annotations

from pathlib import Path

import httpx

from config import Settings
from devstack.processes import Process, free_port, settings_env, switchyard, wait_until


def start_api(settings: Settings, logs_dir: Path, name: str = "api") -> tuple[Process, str]:
    """Run `switchyard api` on a free port; returns the process and its base URL."""
    port = free_port()
    proc = Process(
        switchyard("api", "--port", str(port)),
        env=settings_env(settings),
        log_path=logs_dir / f"{name}.log",
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"api exited:\n{proc.output()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=30, what="the API to answer")
    return proc, base


def start_worker(
    settings: Settings, logs_dir: Path, name: str = "worker", concurrency: int = 2
) -> Process:
    """Run `switchyard worker` on every queue and wait until it consumes."""
    proc = Process(
        switchyard("worker", "--concurrency", str(concurrency), "--hostname", f"{name}@%h"),
        env=settings_env(settings),
        log_path=logs_dir / f"{name}-{free_port()}.log",
    )

    def ready() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"worker exited:\n{proc.output()}")
        return "ready." in proc.output()

    wait_until(ready, timeout=60, what=f"worker {name} to be ready")
    return proc


def start_process(settings: Settings, logs_dir: Path, command: str) -> Process:
    """Run `switchyard COMMAND` (relay, beat) in the background."""
    return Process(
        switchyard(command),
        env=settings_env(settings),
        log_path=logs_dir / f"{command}-{free_port()}.log",
    )
