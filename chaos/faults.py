"""The fault schedule: what is broken when, while the load runs.

Each fault is placed at a fraction of the load's duration and run in order by one thread; one
that takes time (PostgreSQL down for a few seconds, a partition) holds the next ones back.
Stack processes killed here are restarted by the supervisor (chaos.stack); the servers are
restarted by the fault itself, as an operator would.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.netns import Partition
from chaos.servers import OwnPostgres, OwnRedis
from chaos.stack import Stack

PG_DOWN_SECONDS = 5.0
PG_PAUSE_SECONDS = 5.0
PARTITION_SECONDS = 15.0
POOL_WAIT_SECONDS = 20.0


@dataclass
class Done:
    """One fault as it happened."""

    at: float  # seconds since the load started
    name: str
    result: str


@dataclass
class Faults:
    """The things the schedule breaks, and what it did to them."""

    stack: Stack
    redis: OwnRedis
    postgres: OwnPostgres
    partition: Partition | None
    no_partition_reason: str | None
    second_beat: Callable[[], object]
    done: list[Done] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def kill_pool_child(self, worker: str) -> str:
        """kill -9 of one prefork child of `worker` (Celery replaces it)."""
        deadline = time.monotonic() + POOL_WAIT_SECONDS  # it may be restarting right now
        while not (children := self.stack.processes[worker].pool_children()):
            if time.monotonic() > deadline:
                return f"skipped: {worker} had no pool child for {POOL_WAIT_SECONDS:.0f} s"
            time.sleep(0.2)
        child = self.rng.choice(children)
        child.send_signal(signal.SIGKILL)
        return f"pid {child.pid} of {worker}"

    def kill(self, name: str) -> str:
        """kill -9 of a whole stack process (the supervisor restarts it)."""
        proc = self.stack.processes[name]
        pid = proc.process.pid if proc.process else None
        proc.kill()
        return f"pid {pid}"

    def kill_redis(self, *, aof: bool) -> str:
        """kill -9 of Redis, then a restart with the append-only file on or off."""
        if not aof:
            self.redis.set_aof(False)
        self.redis.kill()
        time.sleep(1.0)  # down for a moment, as a crashed server is
        self.redis.start(aof=aof)
        return "restarted with AOF on (reloads its file)" if aof else "restarted empty (AOF off)"

    def stop_postgres(self) -> str:
        """`pg_ctl stop -m immediate` (a crash), down for a few seconds, then start."""
        self.postgres.stop(mode="immediate")
        time.sleep(PG_DOWN_SECONDS)
        self.postgres.start()
        return f"down {PG_DOWN_SECONDS:.0f} s, crash recovery at start"

    def pause_postgres(self) -> str:
        """SIGSTOP to every PostgreSQL process for a few seconds, then SIGCONT: nothing is
        refused, every query just hangs (a stalled disk or VM)."""
        frozen = self.postgres.signal_all(signal.SIGSTOP)
        try:
            time.sleep(PG_PAUSE_SECONDS)
        finally:
            self.postgres.signal_all(signal.SIGCONT)
        return f"{frozen} processes paused {PG_PAUSE_SECONDS:.0f} s, then continued"

    def cut_network(self) -> str:
        """The namespaced worker loses its link for a while, then gets it back."""
        if self.partition is None:
            return f"skipped: {self.no_partition_reason}"
        self.partition.cut()
        time.sleep(PARTITION_SECONDS)
        self.partition.restore()
        return f"worker-ns cut off {PARTITION_SECONDS:.0f} s, then restored"

    def start_second_beat(self) -> str:
        """A second beat racing the first for every schedule slot."""
        self.second_beat()
        return "beat-2 running beside beat"

    def stop_second_beat(self) -> str:
        """The second beat goes away again."""
        self.stack.stop_one("beat-2")
        return "beat-2 stopped"

    def schedule(self) -> list[tuple[float, str, Callable[[], str]]]:
        """(fraction of the load's duration, name, action), in order."""
        ns_worker = "worker-ns" if "worker-ns" in self.stack.processes else "worker-3"
        return [
            (0.05, "kill -9 a pool child of worker-1", lambda: self.kill_pool_child("worker-1")),
            (0.11, "kill -9 worker-2 (whole worker)", lambda: self.kill("worker-2")),
            (0.17, "kill -9 relay", lambda: self.kill("relay")),
            (0.21, "second beat starts", self.start_second_beat),
            (0.25, "kill -9 api (restarted)", lambda: self.kill("api")),
            (0.31, "kill -9 redis, AOF on", lambda: self.kill_redis(aof=True)),
            (0.39, "postgresql stop -m immediate", self.stop_postgres),
            (0.47, "network partition of a worker", self.cut_network),
            (0.56, "postgresql paused (SIGSTOP)", self.pause_postgres),
            (0.60, "second beat stops", self.stop_second_beat),
            (0.63, "kill -9 redis, AOF off", lambda: self.kill_redis(aof=False)),
            (0.70, f"kill -9 a pool child of {ns_worker}", lambda: self.kill_pool_child(ns_worker)),
            (0.76, "kill -9 worker-1 (whole worker)", lambda: self.kill("worker-1")),
            (0.82, "kill -9 relay", lambda: self.kill("relay")),
            (0.88, "kill -9 api (restarted)", lambda: self.kill("api")),
            (0.93, "kill -9 a pool child of worker-2", lambda: self.kill_pool_child("worker-2")),
        ]

    def run(self, *, duration: float, started: float) -> threading.Thread:
        """Run the schedule in a thread against a load that started at `started` (monotonic)."""

        def loop() -> None:
            for fraction, name, action in self.schedule():
                delay = started + fraction * duration - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                at = time.monotonic() - started
                try:
                    result = action()
                except Exception as exc:  # a fault that failed is reported, not fatal
                    result = f"FAILED: {type(exc).__name__}: {exc}"
                self.done.append(Done(at, name, result))

        thread = threading.Thread(target=loop, name="chaos-faults", daemon=True)
        thread.start()
        return thread
