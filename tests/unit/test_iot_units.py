"""IoT without I/O: the validator's refusals and time policy, and choosing a parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from errors import InvalidFieldError
from tasks.iot.formats import Parser, UnsupportedMediaTypeError, senml
from tasks.iot.parsing import batch_type, parser_for
from tasks.iot.readings import Parsed, Reading
from tasks.iot.rules import MetricRule, Rules
from tasks.iot.validation import check

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
RULES = Rules(
    metrics={
        "temp": MetricRule(type="number", unit="Cel", min=-10, max=50),
        "on": MetricRule(type="boolean"),
    },
    late_window=timedelta(hours=1),
    future_skew=timedelta(minutes=5),
    clamp_future=False,
)


def _codes(*readings: Reading, rules: Rules = RULES) -> list[tuple[int, str]]:
    checked = check(list(enumerate(readings)), device="d", rules=rules, received_at=NOW)
    return [(r.index, r.code) for r in checked.refusals]


def test_each_rule_refuses_with_its_own_code() -> None:
    assert _codes(
        Reading("d", "temp", NOW, 20.0, "Cel"),
        Reading("d", "temp", NOW, 51.0),
        Reading("d", "temp", NOW, -10.5),
        Reading("d", "temp", NOW, float("nan")),
        Reading("d", "temp", NOW, True),
        Reading("d", "on", NOW, 1.0),
        Reading("d", "temp", NOW, 1.0, "K"),
        Reading("x", "temp", NOW, 1.0),
        Reading("d", "rpm", NOW, 1.0),
        Reading("d", "temp", datetime(2026, 12, 2, 12), 1.0),
        Reading("d", "on", NOW, False, "u" * 51),
    ) == [
        (1, "out_of_range"),
        (2, "out_of_range"),
        (3, "not_finite"),
        (4, "wrong_type"),
        (5, "wrong_type"),
        (6, "wrong_unit"),
        (7, "foreign_device"),
        (8, "unknown_metric"),
        (9, "naive_time"),
        (10, "invalid_unit"),
    ]


def test_the_time_policy_bounds_are_inclusive_and_clamping_moves_to_receipt() -> None:
    edge = [
        Reading("d", "temp", NOW - timedelta(hours=1), 1.0),
        Reading("d", "temp", NOW - timedelta(hours=1, microseconds=1), 1.0),
        Reading("d", "temp", NOW + timedelta(minutes=5), 1.0),
        Reading("d", "temp", NOW + timedelta(minutes=5, microseconds=1), 1.0),
    ]
    assert _codes(*edge) == [(1, "too_late"), (3, "in_future")]
    clamping = Rules(**{**RULES.__dict__, "clamp_future": True})
    checked = check(list(enumerate(edge)), device="d", rules=clamping, received_at=NOW)
    assert [r.code for r in checked.refusals] == ["too_late"]
    assert checked.clamped == 1
    assert [(i, r.ts) for i, r in checked.accepted][-1] == (3, NOW)


def _parse(body: bytes, *, device: str, received_at: datetime) -> Parsed:
    return Parsed()


def test_an_extra_format_comes_first_then_the_built_in_ones_then_a_415() -> None:
    extra: dict[str, Parser] = {"application/x-test": _parse}
    assert parser_for(batch_type("Application/X-Test; charset=utf-8"), extra=extra) is _parse
    with pytest.raises(InvalidFieldError) as no_precision:  # an extra format takes none
        parser_for("application/x-test; precision=ms", extra=extra)
    assert no_precision.value.field == "precision"
    assert parser_for("application/senml+json", extra=extra) is senml.parse
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        parser_for("text/csv", extra=extra)
    assert (refused.value.status, refused.value.field) == (415, "Content-Type")


def test_a_batch_keeps_its_media_type_and_precision_and_only_those() -> None:
    assert batch_type('Text/Plain; charset="UTF-8"; foo=bar') == "text/plain"
    assert batch_type("text/plain; precision=ms") == "text/plain; precision=ms"
    assert batch_type("text/plain", precision="s") == "text/plain; precision=s"
    assert batch_type("text/plain; precision=s", precision="s") == "text/plain; precision=s"
    with pytest.raises(InvalidFieldError) as disagree:
        batch_type("text/plain; precision=ms", precision="s")
    assert disagree.value.field == "precision"
    with pytest.raises(UnsupportedMediaTypeError):
        batch_type("text/plain; charset=latin-1")
