"""`application/senml+json`: SenML packs (RFC 8428), resolved record by record.

Base fields (`bn`, `bt`, `bu`, `bv`, `bs`, `bver`) apply to their record and every later one
until a record sets them again. A record's name is `bn + n`; its time `bt + t`, where a sum
below 2**28 seconds is relative to the receipt time (0 is "now", -5 five seconds before); its
unit `u`, else `bu`; its value `bv + v`, or `vs`, or `vb`. A sum (`bs + s`, present when
either is) is a reading of its own, named `<metric>.sum`.

How a name maps to (device, metric) — the device is always the one that sent the pack:
- `<device>:<metric>` or `<device>/<metric>` (RFC 8428's `urn:dev:ow:…:temp` style): the
  metric is what follows the separator;
- exactly `<device>` (RFC 8428 §5.1.1 and §5.1.3, where records differ by unit only): the
  metric is the record's unit (`%RH`, `lon`, `lat`);
- any other name with a `:` names another device (a URN, an IPv6 address): `foreign_device`;
- anything else (`temp`, `room1/temp`) is the metric itself.

Refused per record: a name outside RFC 8428's character set, several values (`ambiguous_value`)
or none, binary data (`vd`: readings hold numbers, strings and booleans), a version above 10,
a label ending in `_` (must-understand, RFC 8428 §4.4). Other unknown labels are ignored as
the RFC requires. A record holding only base fields sets them and yields no reading; one whose
base field is invalid is refused, and so is every later record that would use that base.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from errors import InvalidFieldError
from tasks.iot.formats import rules
from tasks.iot.formats.rules import Refused
from tasks.iot.readings import Parsed, Reading, Value
from tasks.web.strict import loads

VERSION = 10  # the SenML version RFC 8428 defines
RELATIVE_BELOW_US = 2**28 * 1_000_000
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-:./_]*\Z")
_REGULAR = frozenset({"n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"})
_VALUES = ("v", "vs", "vb", "vd")


@dataclass(slots=True)
class _Bases:
    """The base fields in force, and which were last set to something invalid (label → index
    of the record that did)."""

    bn: str = ""
    bt: int = 0  # microseconds
    bu: str | None = None
    bv: float | None = None
    bs: float | None = None
    bver: int = VERSION
    broken: dict[str, int] = field(default_factory=dict)

    def take(self, record: dict[str, Any], index: int) -> None:
        """Apply the record's base fields; Refused (after applying all) if one is invalid."""
        if _BASE_LABELS.isdisjoint(record):
            return
        first: Refused | None = None
        for label, check in _BASE_CHECKS.items():
            if label not in record:
                continue
            try:
                setattr(self, label, check(record[label], label))
                self.broken.pop(label, None)
            except Refused as refused:
                self.broken[label] = index
                first = first or refused
        if first is not None:
            raise first

    def need(self, *labels: str) -> None:
        """Refuse a record that depends on a base field set to something invalid."""
        for label in labels:
            if label in self.broken:
                reason = f"the base field {label} set by record {self.broken[label]} is invalid"
                raise Refused("invalid_base", reason, label)


def parse(body: bytes, *, device: str, received_at: datetime) -> Parsed:
    """The readings of a SenML pack, each record refused on its own when it cannot be used."""
    pack = loads(body)
    if not isinstance(pack, list):
        raise InvalidFieldError("a SenML pack is a JSON array of records", field="body")
    now_us = (rules.utc(received_at) - rules.EPOCH) // timedelta(microseconds=1)
    bases = _Bases()
    parsed = Parsed()
    for index, record in enumerate(pack):
        try:
            for reading in _resolve(record, index, bases, device=device, now_us=now_us):
                parsed.readings.append((index, reading))
        except Refused as refused:
            parsed.refusals.append(refused.at(index))
    return parsed


def _resolve(record: Any, index: int, bases: _Bases, *, device: str, now_us: int) -> list[Reading]:
    if not isinstance(record, dict):
        raise Refused("not_an_object", "a SenML record must be a JSON object", None)
    for label in record:
        if label.endswith("_"):
            raise Refused("unknown_field", "a must-understand field", rules.label(label))
    bases.take(record, index)
    if _REGULAR.isdisjoint(record):
        return []  # base fields only
    bases.need("bver", "bn", "bt", "bs")
    if bases.bver > VERSION:
        raise Refused("unsupported_version", f"SenML version {bases.bver} is above 10", "bver")
    kinds = [label for label in _VALUES if label in record]
    if len(kinds) > 1:
        raise Refused("ambiguous_value", "a record holds one of v, vs, vb and vd", kinds[1])
    if "ut" in record:
        _number(record["ut"], "ut")  # not kept, but a known field holds its type
    has_sum = "s" in record or bases.bs is not None
    if not kinds and not has_sum:
        raise Refused("missing_field", "a record needs a value (v, vs, vb, vd) or a sum", "v")
    unit = _unit(record, bases)
    metric = _metric(record, bases, unit=unit, device=device)
    ts = _time(record, bases, now_us=now_us)
    readings: list[Reading] = []
    if kinds:
        value = _value(kinds[0], record, bases)
        readings.append(Reading(device=device, metric=metric, ts=ts, value=value, unit=unit))
    if has_sum:
        total = _sum(record, bases)
        name = rules.metric(f"{metric}.sum", field="s")
        readings.append(Reading(device=device, metric=name, ts=ts, value=total, unit=unit))
    return readings


def _unit(record: dict[str, Any], bases: _Bases) -> str | None:
    if "u" in record:
        return rules.unit(_string(record["u"], "u"), field="u")
    bases.need("bu")
    return bases.bu


def _metric(record: dict[str, Any], bases: _Bases, *, unit: str | None, device: str) -> str:
    where = "n" if "n" in record else "bn"
    name = bases.bn + _string(record.get("n", ""), "n")
    if not _NAME.match(name):
        reason = "a SenML name uses A-Z a-z 0-9 - : . / _ and starts with a letter or digit"
        raise Refused("invalid_metric", reason, where)
    if name == device:
        if unit is None:
            raise Refused("invalid_metric", "a name that is only the device needs a unit", where)
        return unit
    if name.startswith(device) and name[len(device)] in ":/":
        return rules.metric(name[len(device) + 1 :], field=where)
    if ":" in name:
        where = "bn" if ":" in bases.bn else "n"
        raise Refused("foreign_device", f"{name!r} names a device other than {device!r}", where)
    return rules.metric(name, field=where)


def _time(record: dict[str, Any], bases: _Bases, *, now_us: int) -> datetime:
    where = "t" if "t" in record else "bt"
    us = bases.bt + (_micros(record["t"], "t") if "t" in record else 0)
    if us < RELATIVE_BELOW_US:
        us += now_us
    return rules.instant(us, field=where)


def _value(kind: str, record: dict[str, Any], bases: _Bases) -> Value:
    raw = record[kind]
    if kind == "v":
        bases.need("bv")
        value = _number(raw, "v")
        return value if bases.bv is None else _finite(bases.bv + value, "v")
    if kind == "vs":
        return rules.text(_string(raw, "vs"), field="vs")
    if kind == "vb":
        if not isinstance(raw, bool):
            raise Refused("invalid_type", "must be a boolean", "vb")
        return raw
    raise Refused("unsupported_value", "binary data (vd) is not stored; send v, vs or vb", "vd")


def _sum(record: dict[str, Any], bases: _Bases) -> float:
    own = _number(record["s"], "s") if "s" in record else 0.0
    return own if bases.bs is None else _finite(bases.bs + own, "s")


def _string(value: Any, label: str) -> str:
    if not isinstance(value, str):
        raise Refused("invalid_type", "must be a string", label)
    return value


def _number(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused("invalid_type", "must be a number", label)
    return rules.number(value, field=label)


def _finite(value: float, label: str) -> float:
    if not math.isfinite(value):
        raise Refused("number_out_of_range", "the resolved number is not finite", label)
    return rules.number(value, field=label)


def _micros(value: Any, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused("invalid_type", "must be a number of seconds", label)
    return rules.micros(value, field=label)


def _version(value: Any, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Refused("invalid_type", "must be a positive integer", label)
    return value


def _base_unit(value: Any, label: str) -> str:
    return rules.unit(_string(value, label), field=label)


_BASE_CHECKS = {
    "bn": _string,
    "bt": _micros,
    "bu": _base_unit,
    "bv": _number,
    "bs": _number,
    "bver": _version,
}
_BASE_LABELS = frozenset(_BASE_CHECKS)
