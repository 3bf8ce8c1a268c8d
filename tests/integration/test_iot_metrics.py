"""The IoT figures of `/metrics` on a real API process: readings per profile by outcome,
ingest lag, roll-up pending work and its age, alerts firing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from config import Settings
from store.db import transaction
from tasks.iot import devices, rollups, service
from tests.support.iot import MEDIA_TYPE, batch, ingest, make_profile, make_rule, reading
from tests.support.ledger import clean_tables
from tests.support.metrics import scrape

NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def token(settings: Settings, make_key: Callable[..., str]) -> Iterator[str]:
    """A metrics key; a thermo device a-1 whose temp fires above 20.5; a quiet profile."""
    make_profile(settings)
    make_profile(settings, {"id": "quiet", "metrics": {"temp": {"type": "number"}}})
    with transaction(settings) as s:
        devices.create_device(s, device_id="a-1", profile_id="thermo")
    make_rule(settings, id="warm", profile="thermo", metric="temp", set_at=20.5, clear_at=20)
    yield make_key("ops", ("metrics:read",))
    clean_tables(settings, domain="iot")


def _iot(samples: dict[str, float], profile: str = "thermo") -> dict[str, float]:
    mark = f'profile="{profile}"'
    return {
        k.removeprefix("switchyard_iot_"): v
        for k, v in samples.items()
        if k.startswith("switchyard_iot_") and mark in k
    }


def test_readings_by_outcome_lag_rollups_and_alerts_per_profile(
    settings: Settings, api: str, token: str
) -> None:
    t0 = NOW - timedelta(minutes=10)
    ingest(
        settings, "a-1",
        batch(
            reading("temp", t0, 20.0), reading("temp", t0 + timedelta(minutes=1), 21.0),
            reading("temp", NOW + timedelta(hours=1), 20.0),  # future: refused
            reading("temp", t0, 500),  # out of range: refused
        ),
        now=NOW,
    )  # fmt: skip
    ingest(
        settings, "a-1",
        batch(
            reading("temp", t0, 20.0),  # duplicate
            reading("temp", t0 + timedelta(minutes=1), 22.0),  # conflicting
            reading("temp", t0 - timedelta(minutes=1), 19.0),  # late: older than the latest
        ),
        now=NOW,
    )  # fmt: skip
    with transaction(settings) as s:  # a batch received, not yet stored
        service.receive(
            s, device_id="a-1", content_type=MEDIA_TYPE, body=batch(), received_at=NOW,
            settings=settings,
        )  # fmt: skip
    figures = _iot(scrape(api, token))
    outcomes = {"accepted": 3, "duplicate": 1, "conflicting": 1, "late": 1, "future": 1,
                "refused": 2}  # fmt: skip
    for outcome, n in outcomes.items():
        assert figures[f'readings_total{{outcome="{outcome}",profile="thermo"}}'] == n, outcome
    assert figures['batches_waiting{profile="thermo"}'] == 1
    assert figures['ingest_lag_seconds{profile="thermo"}'] > 0
    assert figures['rollup_pending_buckets{profile="thermo"}'] == 3  # three minutes touched
    assert figures['rollup_watermark_age_seconds{profile="thermo"}'] > 0
    assert figures['alerts_firing{kind="threshold",profile="thermo"}'] == 1
    assert figures['alerts_firing{kind="offline",profile="thermo"}'] == 0
    quiet = _iot(scrape(api, token), "quiet")
    assert quiet['readings_total{outcome="accepted",profile="quiet"}'] == 0
    assert quiet['ingest_lag_seconds{profile="quiet"}'] == 0
    with transaction(settings) as s:
        assert rollups.fold(s) == 3
    folded = _iot(scrape(api, token))
    assert folded['rollup_pending_buckets{profile="thermo"}'] == 0
    assert folded['rollup_watermark_age_seconds{profile="thermo"}'] == 0
