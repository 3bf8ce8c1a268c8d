"""A private redis-server on a free port, for tests that take the broker away (never the
shared one): start it, kill it with SIGKILL, start it again on the same port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from config import Settings
from devstack.processes import free_port, isolated, wait_until


class OwnRedis:
    """One redis-server of this test's own, without persistence: a restart is an empty broker."""

    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server must be on PATH for this test"
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.data_dir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.pings, what="redis-server to start")

    def kill(self) -> None:
        """SIGKILL the server and reap it."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pings(self) -> bool:
        """True when the server answers PING."""
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def settings_for(self, settings: Settings) -> Settings:
        """`settings` isolated (a key prefix of their own) and pointed at this server."""
        own = isolated(settings)
        return own.model_copy(update={"redis": own.redis.model_copy(update={"url": self.url})})
