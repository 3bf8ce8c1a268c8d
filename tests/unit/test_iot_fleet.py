"""The fleet generator's accounting (no I/O): its batches, read by the real JSON parser and
checked against its own profile, hold exactly the unique keys, resends, conflicts, late and
refused future readings it counts — whichever order the store sees the batches in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ops.fleet import Counts, Fleet, Mix, profile_body
from tasks.iot.formats import json_batch
from tasks.iot.models import Profile
from tasks.iot.rules import Rules
from tasks.iot.settings import IotSettings
from tasks.iot.validation import check

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
RULES = Rules.of(Profile(**profile_body(), late_window=None, future_skew=None), IotSettings())


def store_like(batches: list[tuple[str, bytes]]) -> Counts:
    """What the store makes of the bodies: first offer stored, the rest same or changed."""
    stored: dict[tuple[str, str, datetime], object] = {}
    seen = Counts()
    for device, body in batches:
        parsed = json_batch.parse(body, device=device, received_at=NOW)
        assert not parsed.refusals
        checked = check(parsed.readings, device=device, rules=RULES, received_at=NOW)
        assert {r.code for r in checked.refusals} <= {"in_future"}
        seen.future += len(checked.refusals)
        for _, reading in checked.accepted:
            key = (device, reading.metric, reading.ts)
            if key not in stored:
                stored[key] = reading.value
                seen.unique += 1
                seen.late += reading.ts < NOW - timedelta(minutes=30)
            elif stored[key] == reading.value:
                seen.duplicates += 1
            else:
                seen.conflicts += 1
    return seen


@pytest.mark.parametrize("order", ["sent", "shuffled"])
def test_the_tally_is_what_the_store_would_count(order: str) -> None:
    fleet = Fleet(7, mix=Mix(duplicates=0.2, late=0.1, future=0.02, conflicts=0.25), seed=3)
    sent = Counts()
    batches = []
    for n in range(60):
        batch = fleet.batch(fleet.ids[n % 7], size=25, now=NOW)
        sent.add(batch.counts)
        batches.append((batch.device, batch.body()))
    if order == "shuffled":  # concurrent workers: a resend may be stored before its original
        random.Random(5).shuffle(batches)
    seen = store_like(batches)
    assert (seen.unique, seen.late, seen.duplicates, seen.conflicts, seen.future) == (
        sent.unique, sent.late, sent.duplicates, sent.conflicts, sent.future
    )  # fmt: skip
    assert sent.readings == 1_500 == sent.unique + sent.duplicates + sent.conflicts + sent.future


def test_the_shares_are_exact_over_a_run() -> None:
    fleet = Fleet(1_000, mix=Mix(), seed=1)
    total = Counts()
    for n in range(20):
        total.add(fleet.batch(fleet.ids[n], size=1_000, now=NOW).counts)
    resent = total.duplicates + total.conflicts
    assert (resent, total.conflicts, total.late, total.future) == (2_000, 60, 1_000, 100)


def test_a_mix_without_room_for_fresh_readings_is_refused() -> None:
    with pytest.raises(ValueError, match="room"):
        Mix(duplicates=0.5, late=0.5)
    with pytest.raises(ValueError, match="conflicts"):
        Mix(conflicts=1.5)
