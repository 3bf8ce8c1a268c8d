"""The whole stack as real processes, each restarted when it exits, as a restart policy would.

Every exit is recorded: the ones the fault schedule caused (kill -9) and the ones a process
took by itself (its exit code), so the report can tell an injected crash from a process that
gave up on its own.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from config import (
    DatabaseSettings,
    JobPolicy,
    ReaperSettings,
    RedisSettings,
    RelaySettings,
    Settings,
    WorkerSettings,
)
from devstack.processes import Process, settings_env, switchyard
from tasks.notifications.settings import NotificationSettings
from tasks.payments.settings import PaymentSettings

RESTART_DELAY = 1.0  # seconds between an exit and the restart (an operator's backoff)


def stack_settings(
    database_url: str, redis_url: str, *, payments: PaymentSettings | None = None
) -> Settings:
    """Short leases, quick sweeps and retries, so the run converges in seconds, not hours;
    `payments` points the payments domain at a provider (the run's simulator)."""
    fast = {"backoff_base": 0.2, "backoff_cap": 1.0}
    sections: dict[str, Any] = {} if payments is None else {"payments": payments}
    return Settings(
        env="test",
        log_format="json",
        database=DatabaseSettings(url=database_url, pool_size=5),
        redis=RedisSettings(url=redis_url, visibility_timeout=30, unacked_restore_interval=2),
        relay=RelaySettings(sweep_interval=1.0),
        reaper=ReaperSettings(interval=1.0, quarantine_after=3, republish_queued_after=15),
        worker=WorkerSettings(concurrency=2),
        default_policy=JobPolicy(lease_timeout=10, **fast),
        job_policies={
            "system.sleep": JobPolicy(lease_timeout=5, **fast),
            "system.fail": JobPolicy(max_attempts=3, lease_timeout=10, **fast),
        },
        notifications=NotificationSettings(
            webhook_allowed_networks=["127.0.0.0/8"],  # the receiver is on loopback
            rate_limit_count=1_000_000,  # every webhook goes to one endpoint
            retry_schedule=[0.5, 1.0, 2.0, 3.0],
            webhook_connect_timeout=2.0,
            webhook_total_timeout=5.0,
        ),
        **sections,
    )


@dataclass
class Exit:
    """One exit of a supervised process."""

    name: str
    code: int | None
    injected: bool
    at: float
    last_words: str = ""


def last_words(output: str) -> str:
    """Why a process exited, as it said: its last critical event, else its last line, short."""
    lines = [line for line in output.splitlines()[-40:] if line.strip()]
    events = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            events.append((record.get("level") == "critical", str(record.get("event", line))))
        else:
            events.append((False, line))
    critical = [said for is_critical, said in events if is_critical]
    said = critical[-1] if critical else (events[-1][1] if events else "")
    return said.removeprefix("switchyard: ").split(" (")[0][:70]


@dataclass
class Supervised:
    """One stack process under the supervisor's restart policy."""

    name: str
    argv: list[str]
    env: dict[str, str]
    logs: Path
    ready_marker: str | None = None
    process: Process | None = None
    starts: int = 0
    wanted: bool = True  # False once stopped on purpose: no restart
    injected: bool = False  # the next exit is the fault schedule's doing

    def start(self) -> None:
        """Start (or restart) it; its output goes to NAME-N.log."""
        self.starts += 1
        self.injected = False
        log_path = self.logs / f"{self.name}-{self.starts}.log"
        self.process = Process(self.argv, env=self.env, log_path=log_path)

    def ready(self) -> bool:
        """True once its ready marker is in the current log (or it has none)."""
        assert self.process is not None
        return self.ready_marker is None or self.ready_marker in self.process.output()

    def kill(self) -> None:
        """kill -9 of the whole process group, counted as injected."""
        if self.process is not None:
            self.injected = True
            self.process.kill(signal.SIGKILL)

    def pool_children(self) -> list[psutil.Process]:
        """The prefork pool's processes of a worker."""
        if self.process is None:
            return []
        try:
            children: list[psutil.Process] = psutil.Process(self.process.pid).children()
            return children
        except psutil.NoSuchProcess:
            return []


@dataclass
class Stack:
    """The supervised processes and the log of their exits."""

    settings: Settings
    logs: Path
    processes: dict[str, Supervised] = field(default_factory=dict)
    exits: list[Exit] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        name: str,
        *args: str,
        settings: Settings | None = None,
        ready_marker: str | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> Supervised:
        """Start `switchyard ARGS` as `name` (inside `wrap`, e.g. a network namespace)."""
        argv = switchyard(*args)
        env = settings_env(settings or self.settings)
        proc = Supervised(name, wrap(argv) if wrap else argv, env, self.logs, ready_marker)
        with self._lock:
            proc.start()
            self.processes[name] = proc
        return proc

    def wait_ready(self, *, timeout: float = 120.0) -> None:
        """Wait until every process shows its ready marker (workers: Celery's `ready.`)."""
        deadline = time.monotonic() + timeout
        while not all(p.ready() for p in self.processes.values()):
            for p in self.processes.values():
                if p.process is not None and p.process.popen.poll() is not None:
                    sys.exit(f"chaos: {p.name} exited at start:\n{p.process.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the stack did not come up in time")
            time.sleep(0.2)

    def supervise(self) -> threading.Thread:
        """Start the restart loop in a thread."""
        thread = threading.Thread(target=self._loop, name="chaos-supervisor", daemon=True)
        thread.start()
        return thread

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            exited = []
            with self._lock:
                for proc in self.processes.values():
                    if proc.process is None or not proc.wanted:
                        continue
                    code = proc.process.popen.poll()
                    if code is None:
                        continue
                    words = "" if proc.injected else last_words(proc.process.output())
                    self.exits.append(Exit(proc.name, code, proc.injected, time.time(), words))
                    proc.process.stop(timeout=1)  # reaps what is left of its process group
                    proc.process = None
                    exited.append(proc)
            if not exited or self._stop.wait(RESTART_DELAY):
                continue
            with self._lock:
                for proc in exited:
                    if proc.wanted:
                        proc.start()

    def stop_one(self, name: str) -> None:
        """Stop a process on purpose (SIGTERM), without a restart."""
        with self._lock:
            proc = self.processes[name]
            proc.wanted = False
            if proc.process is not None:
                proc.process.stop(timeout=10)

    def stop_all(self) -> None:
        """Stop the supervisor, then every process: SIGTERM to all at once (so teardown takes
        as long as the slowest, not the sum), then reap each, SIGKILL if it lingers."""
        self._stop.set()
        with self._lock:
            running = [p.process for p in self.processes.values() if p.process is not None]
            for proc in self.processes.values():
                proc.wanted = False
            for process in running:
                process.kill(signal.SIGTERM)
            for process in running:
                process.stop(timeout=10)
