"""Per-reading validation against a device's rules: each refusal names index, code and reason."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime

from tasks.iot.readings import Reading, Refusal
from tasks.iot.rules import MetricRule, Rules
from tasks.web.strict import text_problem

MAX_UNIT = 50  # the unit column's width
IN_FUTURE = "in_future"  # the code of a reading refused beyond the future skew


@dataclass
class Checked:
    """The readings to store (clamped ones with their new time) and the refused."""

    accepted: list[tuple[int, Reading]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    clamped: int = 0


def _type_of(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def _value_refusal(index: int, reading: Reading, rule: MetricRule) -> Refusal | None:
    kind = _type_of(reading.value)
    if kind != rule.type:
        return Refusal(index, "wrong_type", f"{reading.metric} takes a {rule.type}", "value")
    if isinstance(reading.value, str):
        problem = text_problem(reading.value)
        return None if problem is None else Refusal(index, "invalid_text", problem, "value")
    if kind == "number":
        number = float(reading.value)
        if not math.isfinite(number):
            return Refusal(index, "not_finite", "the value must be a finite number", "value")
        if rule.min is not None and number < rule.min:
            return Refusal(index, "out_of_range", f"below {rule.min}", "value")
        if rule.max is not None and number > rule.max:
            return Refusal(index, "out_of_range", f"above {rule.max}", "value")
    return _unit_refusal(index, reading, rule)


def _unit_refusal(index: int, reading: Reading, rule: MetricRule) -> Refusal | None:
    if reading.unit is None:
        return None
    if rule.unit is not None and reading.unit != rule.unit:
        return Refusal(index, "wrong_unit", f"{reading.metric} is in {rule.unit}", "unit")
    problem = text_problem(reading.unit) or (
        f"longer than {MAX_UNIT} characters" if len(reading.unit) > MAX_UNIT else None
    )
    return None if problem is None else Refusal(index, "invalid_unit", problem, "unit")


def check(
    readings: list[tuple[int, Reading]], *, device: str, rules: Rules, received_at: datetime
) -> Checked:
    """Sort parsed readings into accepted and refused, applying the time policy."""
    out = Checked()
    oldest = received_at - rules.late_window
    latest = received_at + rules.future_skew
    for index, reading in readings:
        refusal = _refusal(index, reading, device=device, rules=rules, oldest=oldest)
        if refusal is not None:
            out.refusals.append(refusal)
            continue
        if reading.ts > latest:
            if not rules.clamp_future:
                out.refusals.append(
                    Refusal(index, IN_FUTURE, f"more than {rules.future_skew} ahead", "ts")
                )
                continue
            reading = dataclasses.replace(reading, ts=received_at)
            out.clamped += 1
        out.accepted.append((index, reading))
    return out


def _refusal(
    index: int, reading: Reading, *, device: str, rules: Rules, oldest: datetime
) -> Refusal | None:
    if reading.device != device:
        return Refusal(index, "foreign_device", "a device may only send its own readings", "device")
    rule = rules.metrics.get(reading.metric)
    if rule is None:
        return Refusal(index, "unknown_metric", f"the profile has no {reading.metric!r}", "metric")
    if reading.ts.utcoffset() is None:
        return Refusal(index, "naive_time", "the time has no UTC offset", "ts")
    if reading.ts < oldest:
        return Refusal(index, "too_late", "older than the profile's late window", "ts")
    return _value_refusal(index, reading, rule)
