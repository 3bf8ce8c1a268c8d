"""The one reading model every ingestion format resolves to, and a refused reading's report.

A reading is keyed `(device, metric, ts)`; `value` keeps SenML's kinds apart (a number, a
string, a boolean). The parsers (`tasks.iot.formats`) produce these from a batch's bytes and
never touch the database; the store decides duplicates, conflicts and the time policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

Value = float | str | bool


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement: `ts` is the event time, timezone-aware UTC."""

    device: str
    metric: str
    ts: datetime
    value: Value
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the reading at `index` of its batch was not accepted (`code` is stable, `reason` is
    for people; `field` names the part of the reading at fault when there is one)."""

    index: int
    code: str
    reason: str
    field: str | None = None


@dataclass(slots=True)
class Parsed:
    """A batch's readings in batch order, with the refusals of the ones that did not parse."""

    readings: list[tuple[int, Reading]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
