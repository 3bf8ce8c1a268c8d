"""`application/json`: Switchyard's own batch of readings.

    {"readings": [
      {"metric": "temp", "value": 21.5, "unit": "Cel", "ts": "2026-12-01T10:00:00.250Z"},
      {"metric": "door", "value": true, "ts": 1796119200},
      {"metric": "label", "value": "boiler room"}
    ]}

A reading's members:
- `metric` (required): its name, 1 to 128 printable characters.
- `value` (required): a number, a string (at most 4096 characters) or a boolean.
- `ts`: the event time, an RFC 3339 instant with an offset or a number of seconds since the
  epoch (fractions allowed, kept to the microsecond); absent or null means the receipt time.
- `unit`: a unit string (SenML's names are a good choice: `Cel`, `%RH`, `V`).
- `device`: optional; when present it must be the sending device's id (`foreign_device`).
Any other member refuses the reading (`unknown_field`), as every strict body does.

The body goes through the API's strict JSON parser, so what JSON cannot carry (NaN, a number
that overflows a double, a NUL, a lone surrogate, a duplicate key) refuses the whole body,
naming its path (`readings.3.value`); so does a body that is not `{"readings": [...]}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from errors import InvalidFieldError
from tasks.iot.formats import rules
from tasks.iot.formats.rules import Refused
from tasks.iot.readings import Parsed, Reading, Value
from tasks.web.strict import loads

_MEMBERS = frozenset({"metric", "value", "ts", "unit", "device"})


def parse(body: bytes, *, device: str, received_at: datetime) -> Parsed:
    """The readings of a JSON batch, each refused on its own when it cannot be accepted."""
    doc = loads(body)
    if not isinstance(doc, dict):
        raise InvalidFieldError('the body must be an object {"readings": [...]}', field="body")
    for key in doc:
        if key != "readings":
            raise InvalidFieldError("unknown member", field=rules.label(key))
    batch = doc.get("readings")
    if not isinstance(batch, list):
        raise InvalidFieldError("`readings` must be an array of readings", field="readings")
    now = rules.utc(received_at)
    parsed = Parsed()
    for index, item in enumerate(batch):
        try:
            parsed.readings.append((index, _reading(item, device=device, now=now)))
        except Refused as refused:
            parsed.refusals.append(refused.at(index))
    return parsed


def _reading(item: Any, *, device: str, now: datetime) -> Reading:
    if not isinstance(item, dict):
        raise Refused("not_an_object", "a reading must be a JSON object", None)
    if not _MEMBERS.issuperset(item):
        key = next(key for key in item if key not in _MEMBERS)
        raise Refused("unknown_field", "not a member of a reading", rules.label(key))
    claimed = item.get("device")
    if claimed is not None:
        rules.own_device(_string(claimed, "device"), device=device, field="device")
    if "metric" not in item:
        raise Refused("missing_field", "a reading needs a metric", "metric")
    if "value" not in item:
        raise Refused("missing_field", "a reading needs a value", "value")
    unit = item.get("unit")
    return Reading(
        device=device,
        metric=rules.metric(_string(item["metric"], "metric"), field="metric"),
        ts=_instant(item.get("ts"), now=now),
        value=_value(item["value"]),
        unit=None if unit is None else rules.unit(_string(unit, "unit"), field="unit"),
    )


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise Refused("invalid_type", "must be a string", field)
    return value


def _value(value: Any) -> Value:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return rules.number(value, field="value")
    if isinstance(value, str):
        return rules.text(value, field="value")
    raise Refused("invalid_type", "must be a number, a string or a boolean", "value")


def _instant(value: Any, *, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, str):
        return rules.iso_instant(value, field="ts")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return rules.instant(rules.micros(value, field="ts"), field="ts")
    raise Refused("invalid_type", "must be an RFC 3339 string or epoch seconds", "ts")
