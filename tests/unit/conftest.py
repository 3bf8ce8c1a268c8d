"""Fixtures for unit tests: a guard that fails a test the moment it reaches for I/O."""

from __future__ import annotations

import socket
import subprocess
from typing import Any, NoReturn

import psycopg
import pytest


def _refuse(*_: Any, **__: Any) -> NoReturn:
    raise AssertionError("a unit test reached for I/O (a socket, the database or a process)")


@pytest.fixture
def no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse sockets, name lookups, PostgreSQL connections and child processes."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    monkeypatch.setattr(psycopg.Connection, "connect", _refuse)  # libpq's sockets are not Python's
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse)
