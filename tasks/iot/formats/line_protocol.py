"""`text/plain`: Influx line protocol, one reading per field of each line.

    weather,location=attic,unit=Cel temperature=21.5,humidity=40i 1796119200000000000

How a line maps to readings (the device is always the one that sent the batch):
- each field is a reading; its metric is `<measurement>.<field key>`, or just
  `<measurement>` for a field named `value` (`temp value=21.5` is metric `temp`);
- the `device` tag, if present, must be the sender's id (else `foreign_device`); the `unit`
  tag is the unit of every field of the line; any other tag qualifies the metric in Influx's
  series-key style, sorted by key: `weather.temperature,location=attic`;
- field values: floats (`21.5`, `-1e3`), integers `40i` (int64) and `40u` (uint64) kept only
  if a double holds them exactly (±2**53), strings `"…"`, booleans `t T true True TRUE` and
  `f F false False FALSE`; NaN and infinities are not line protocol;
- the timestamp is an integer in `precision` units (nanoseconds unless the route says `us`,
  `ms` or `s`), kept to the microsecond (nanoseconds are floored); absent means the receipt
  time.

A refusal's index is the 0-based line number in the body (blank and `#` comment lines count),
so it points at the line; its field is `measurement`, `tag.<key>`, `field.<key>` or
`timestamp`. A line that does not parse is refused as a whole (`syntax_error`); a field whose
value is bad is refused alone and the line's other fields are kept. Lines end with `\\n`
(a `\\r` before it is dropped); leading spaces and tabs are skipped. The body must be UTF-8.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from tasks.iot.formats import rules
from tasks.iot.formats.line_syntax import Point, split_line, string_value
from tasks.iot.formats.rules import Refused
from tasks.iot.readings import Parsed, Reading, Value
from tasks.web.strict import InvalidEncodingError

Precision = Literal["ns", "us", "ms", "s"]
_TO_MICROS: dict[str, tuple[int, int]] = {  # (multiply, then floor-divide)
    "ns": (1, 1000), "us": (1, 1), "ms": (1000, 1), "s": (1_000_000, 1),
}  # fmt: skip
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)
_INT = re.compile(r"[+-]?\d{1,20}i\Z", re.ASCII)
_UINT = re.compile(r"\d{1,20}u\Z", re.ASCII)
_TIMESTAMP = re.compile(r"-?\d{1,19}\Z", re.ASCII)
_BOOLEANS = {
    "t": True, "T": True, "true": True, "True": True, "TRUE": True,
    "f": False, "F": False, "false": False, "False": False, "FALSE": False,
}  # fmt: skip


def parse(
    body: bytes, *, device: str, received_at: datetime, precision: Precision = "ns"
) -> Parsed:
    """The readings of a line-protocol batch, each line (or field) refused on its own."""
    if body.startswith(b"\xef\xbb\xbf") or body[:2].count(0):
        raise InvalidEncodingError("the body must be UTF-8, without a BOM", field="body")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncodingError(f"the body is not UTF-8: {exc.reason}", field="body") from exc
    now = rules.utc(received_at)
    scale = _TO_MICROS[precision]
    parsed = Parsed()
    for index, raw_line in enumerate(text.split("\n")):
        line = raw_line.removesuffix("\r").lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        try:
            point = split_line(line)
            series, unit = _series(point, device=device)
            ts = now if point.timestamp is None else _instant(point.timestamp, scale)
        except Refused as refused:
            parsed.refusals.append(refused.at(index))
            continue
        _fields(point, series, index=index, parsed=parsed, device=device, ts=ts, unit=unit)
    return parsed


def _series(point: Point, *, device: str) -> tuple[tuple[str, str], str | None]:
    """The metric's measurement and its tag suffix, and the line's unit."""
    measurement = rules.metric(point.measurement, field="measurement")
    tags: dict[str, str] = {}
    for key, value in point.tags:
        where = f"tag.{rules.label(key)}"
        if key in tags:
            raise Refused("duplicate_key", "the tag appears twice", where)
        tags[key] = rules.text(value, field=where)
    claimed = tags.pop("device", None)
    if claimed is not None:
        rules.own_device(claimed, device=device, field="tag.device")
    unit = tags.pop("unit", None)
    if unit is not None:
        rules.unit(unit, field="tag.unit")
    suffix = "".join(f",{key}={tags[key]}" for key in sorted(tags))
    return (measurement, suffix), unit


def _fields(
    point: Point, series: tuple[str, str], *, index: int, parsed: Parsed, device: str,
    ts: datetime, unit: str | None,
) -> None:  # fmt: skip
    measurement, suffix = series
    seen: set[str] = set()
    for key, raw in point.fields:
        where = f"field.{rules.label(key)}"
        try:
            if key in seen:
                raise Refused("duplicate_key", "the field appears twice in the line", where)
            seen.add(key)
            name = measurement if key == "value" else f"{measurement}.{key}"
            metric = rules.metric(name + suffix, field=where)
            value = _value(raw, field=where)
        except Refused as refused:
            parsed.refusals.append(refused.at(index))
            continue
        reading = Reading(device=device, metric=metric, ts=ts, value=value, unit=unit)
        parsed.readings.append((index, reading))


def _value(raw: str, *, field: str) -> Value:
    text = string_value(raw, field=field)
    if text is not None:
        return rules.text(text, field=field)
    if raw in _BOOLEANS:
        return _BOOLEANS[raw]
    if raw[-1] in "iu":
        if not (_INT if raw[-1] == "i" else _UINT).match(raw):
            raise Refused("invalid_value", "not an integer (`12i`, `12u`)", field)
        number = int(raw[:-1])
        low, high = (-(2**63), 2**63 - 1) if raw[-1] == "i" else (0, 2**64 - 1)
        if not low <= number <= high:
            raise Refused("number_out_of_range", f"beyond the {raw[-1]} range", field)
        return rules.number(number, field=field)
    if not _FLOAT.match(raw):
        raise Refused("invalid_value", "not a float, integer, string or boolean", field)
    return rules.number(float(raw), field=field)


def _instant(raw: str, scale: tuple[int, int]) -> datetime:
    if not _TIMESTAMP.match(raw):
        raise Refused("invalid_timestamp", "the timestamp must be an integer", "timestamp")
    multiply, divide = scale
    return rules.instant(int(raw) * multiply // divide, field="timestamp")
