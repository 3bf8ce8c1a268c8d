"""The alert fold's shortcut: a rule its new readings cannot move is settled from the series'
extremes, and that must be exactly what walking them reading by reading would do."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tasks.iot.alerts import Series, Watch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
values = st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda v: round(v, 1))


@st.composite
def watches(draw: st.DrawFn) -> Watch:
    """A threshold rule of either direction, in any state a fold could leave it."""
    direction = draw(st.sampled_from(["above", "below"]))
    set_at = draw(values)
    gap = draw(st.floats(min_value=0, max_value=3).map(lambda v: round(v, 1)))
    firing = draw(st.booleans())
    streak = 0 if firing else draw(st.integers(0, 3))
    return Watch(
        id="r", kind="threshold", metric="m", direction=direction, set_at=set_at,
        clear_at=set_at - gap if direction == "above" else set_at + gap,
        consecutive=draw(st.integers(1, 4)),
        for_seconds=draw(st.none() | st.sampled_from([0.0, 5.0, 30.0])),
        channel="email", recipient="ops@example.com", device_id="d", firing=firing,
        streak=streak, last_ts=None, since=T0 if firing else None,
        breach_since=T0 if streak else None,
    )  # fmt: skip


@given(watches(), st.lists(values, min_size=1, max_size=30))
def test_a_rule_the_shortcut_settles_is_where_the_walk_leaves_it(
    watch: Watch, readings: list[float]
) -> None:
    series = Series.of([(T0 + timedelta(seconds=10 * (i + 1)), v) for i, v in enumerate(readings)])
    walked = copy.copy(watch)
    kinds = [walked.step(ts, v) for ts, v in zip(series.ts, series.values, strict=True)]
    if not series.unmoving(watch, 0):
        return  # the fold walks these readings itself
    assert kinds == [None] * len(kinds)
    assert (walked.firing, walked.streak, walked.breach_since) == (
        watch.firing, 0 if not watch.firing else watch.streak,
        None if not watch.firing else watch.breach_since,
    )  # fmt: skip


@given(watches(), st.lists(values, min_size=1, max_size=30))
def test_the_shortcut_is_taken_whenever_no_reading_could_move_the_rule(
    watch: Watch, readings: list[float]
) -> None:
    series = Series.of([(T0 + timedelta(seconds=i + 1), v) for i, v in enumerate(readings)])
    moving = watch.cleared if watch.firing else watch.breached
    assert series.unmoving(watch, 0) == (not any(moving(v) for v in readings))
