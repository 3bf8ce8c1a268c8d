"""Fixtures of the chaos tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.own_redis import OwnRedis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A private, running redis-server that the test may kill and restart."""
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()
