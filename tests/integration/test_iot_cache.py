"""The Redis cache of latest values and aggregates against a private redis-server: answers
are served from it, every stored batch's commit leaves the old ones behind, and with the
server killed (and back empty) the answers stay what the store says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import text

from config import Settings
from store.db import transaction
from tasks.iot import cache, devices, queries
from tasks.iot.api_schemas import LatestView
from tasks.iot.query_routes import LATEST, answer_aggregate, answer_latest
from tests.support.iot import PROFILE, batch, ingest, reading
from tests.support.ledger import clean_tables
from tests.support.own_redis import OwnRedis

NOW = datetime.now(UTC).replace(microsecond=0)
T = NOW - timedelta(hours=1)


@pytest.fixture
def own(settings: Settings, tmp_path: Path) -> Iterator[tuple[OwnRedis, Settings]]:
    """A redis-server of this test's own, the settings pointed at it, and a device `c-1`."""
    server = OwnRedis(tmp_path)
    server.start()
    with transaction(settings) as s:
        devices.create_profile(
            s, profile_id=PROFILE["id"], metrics=PROFILE["metrics"], future_policy="refuse",
            late_window=None, future_skew=None,
        )  # fmt: skip
        devices.create_device(s, device_id="c-1", profile_id=PROFILE["id"])
    yield server, server.settings_for(settings)
    server.kill()
    clean_tables(settings)


def _answers(settings: Settings) -> tuple[Any, ...]:
    with transaction(settings) as s:
        latest = [(v.metric, v.value) for v in answer_latest(settings, s, "c-1")]
    (day,) = answer_aggregate(
        settings, "c-1", metric="temp", since=T - timedelta(days=1), until=T + timedelta(hours=1),
        every=None, fill="null",
    )  # fmt: skip
    return latest, (day.count, day.sum, day.last)


def _store(settings: Settings, at: datetime, value: float) -> None:
    assert ingest(settings, "c-1", batch(reading("temp", at, value)), now=NOW)["stored"] == 1


def _cached_keys(server: OwnRedis, settings: Settings) -> int:
    client = redis.Redis.from_url(server.url)
    try:
        return len(client.keys(f"{settings.redis.key_prefix}iot:cache:*"))
    finally:
        client.close()


def test_answers_follow_every_commit_and_survive_the_cache_going_away(
    own: tuple[OwnRedis, Settings],
) -> None:
    server, settings = own
    _store(settings, T, 20.0)
    assert _answers(settings) == ([("temp", 20.0)], (1, 20.0, 20.0))
    assert _cached_keys(server, settings) == 4  # two answers, two generations
    # Changed behind the cache's back (no store commit): the cached answers are served.
    with transaction(settings) as s:
        s.execute(text("UPDATE iot_readings SET value_num = 99 WHERE device_id = 'c-1'"))
        s.execute(text("UPDATE iot_latest SET value_num = 99 WHERE device_id = 'c-1'"))
    assert _answers(settings) == ([("temp", 20.0)], (1, 20.0, 20.0))
    # A stored batch's commit leaves them behind: the next answers are the store's.
    _store(settings, T + timedelta(minutes=1), 30.0)
    assert _answers(settings) == ([("temp", 30.0)], (2, 129.0, 30.0))
    _store(settings, T - timedelta(minutes=1), 5.0)  # late: the latest stays, the sum moves
    assert _answers(settings) == ([("temp", 30.0)], (3, 134.0, 30.0))

    server.kill()  # an outage costs speed only: reads and commits go on, answers stay right
    assert _answers(settings) == ([("temp", 30.0)], (3, 134.0, 30.0))
    _store(settings, T + timedelta(minutes=2), 40.0)
    assert _answers(settings) == ([("temp", 40.0)], (4, 174.0, 40.0))

    server.start()  # back, empty
    assert _answers(settings) == ([("temp", 40.0)], (4, 174.0, 40.0))
    assert _cached_keys(server, settings) == 2  # cached again (generations start from 0)
    assert _answers(settings) == ([("temp", 40.0)], (4, 174.0, 40.0))


def test_an_answer_read_before_a_commit_is_never_served_after_it(
    own: tuple[OwnRedis, Settings],
) -> None:
    _, settings = own
    _store(settings, T, 20.0)

    def read_then_a_commit_lands() -> list[LatestView]:
        with transaction(settings) as s:
            old = queries.latest(s, "c-1")
        _store(settings, T + timedelta(minutes=1), 30.0)  # before the old answer is cached
        return old

    raced = cache.read_through(settings, ("c-1",), "latest", LATEST, read_then_a_commit_lands)
    assert [v.value for v in raced] == [20.0]
    assert _answers(settings)[0] == [("temp", 30.0)]
