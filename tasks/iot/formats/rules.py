"""What every format checks the same way: names, units, values, instants, the claimed device.

Each check returns the clean value or raises `Refused` (code, reason, field); a parser turns
that into a `Refusal` at the reading's index and goes on with the next reading.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta

from errors import SwitchyardError
from tasks.iot.readings import Refusal
from tasks.web.fields import MAX_OFFSET
from tasks.web.strict import text_problem

MAX_METRIC = 128  # characters of a metric name
MAX_UNIT = 32  # SenML's registered units are all far shorter
MAX_TEXT = 4096  # characters of a string value
MAX_EXACT = 2**53  # integers beyond this are not exact as a double
# Past this, the sums the roll-ups and aggregates keep could leave a double's range (~1.8e308).
MAX_MAGNITUDE = 1e300
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Readings before the Unix epoch are a clock at fault; the end is that of int64 nanoseconds.
EARLIEST = EPOCH
LATEST = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
EARLIEST_US = 0
LATEST_US = (LATEST - EPOCH) // timedelta(microseconds=1)


class Refused(SwitchyardError):
    """A reading (or one value of it) that cannot be accepted, and why (`code` names which
    refusal; the batch reports it per reading rather than answering with it)."""

    status, code = 422, "reading_refused"

    def __init__(self, code: str, reason: str, field: str | None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.field = code, reason, field

    def at(self, index: int) -> Refusal:
        """This refusal, for the reading at `index` of its batch."""
        return Refusal(index=index, code=self.code, reason=self.reason, field=self.field)


def label(name: str) -> str:
    """`name` as a refusal's `field` may show it: at most 64 characters, control characters
    and lone surrogates escaped (a refusal is stored and shown, so it must be clean text)."""
    if name.isprintable() and len(name) <= 64:
        return name
    escaped = name[:64].encode("unicode_escape").decode("ascii")
    return escaped[:64]


def text(value: str, *, field: str) -> str:
    """A string value PostgreSQL can store, at most MAX_TEXT characters."""
    if len(value) > MAX_TEXT:
        raise Refused("invalid_value", f"longer than {MAX_TEXT} characters", field)
    problem = None if value.isprintable() else text_problem(value)  # printable: no NUL, no Cs
    if problem is not None:
        raise Refused("invalid_text", problem, field)
    return value


def _name(value: str, *, field: str, code: str, what: str, limit: int) -> str:
    if 0 < len(value) <= limit and value.isprintable() and value[0] != " " != value[-1]:
        return value  # the common case, at C speed: printable text's only space is " "
    if not value:
        raise Refused(code, f"the {what} is empty", field)
    if len(value) > limit:
        raise Refused(code, f"the {what} is longer than {limit} characters", field)
    problem = text_problem(value)
    if problem is not None:
        raise Refused("invalid_text", problem, field)
    if value != value.strip():
        raise Refused(code, f"the {what} starts or ends with whitespace", field)
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise Refused(code, f"the {what} holds a control character", field)
    return value


def metric(value: str, *, field: str) -> str:
    """A metric name: 1 to MAX_METRIC printable characters, no whitespace at either end."""
    return _name(value, field=field, code="invalid_metric", what="metric", limit=MAX_METRIC)


def unit(value: str, *, field: str) -> str:
    """A unit: 1 to MAX_UNIT printable characters (`Cel`, `%RH`, `m/s`)."""
    return _name(value, field=field, code="invalid_unit", what="unit", limit=MAX_UNIT)


def number(value: int | float, *, field: str) -> float:
    """A finite double within ±MAX_MAGNITUDE; an integer only if a double holds it exactly."""
    if isinstance(value, int):
        if abs(value) > MAX_EXACT:
            raise Refused("number_out_of_range", "integers beyond ±2**53 are not exact", field)
        return float(value)
    if not math.isfinite(value):
        raise Refused("number_out_of_range", "the number is not finite", field)
    if abs(value) > MAX_MAGNITUDE:
        raise Refused("number_out_of_range", "beyond ±1e300: sums of it overflow", field)
    return value


def micros(seconds: int | float, *, field: str) -> int:
    """Seconds (an integer or a double) as whole microseconds, rounded to the nearest."""
    if isinstance(seconds, int):
        if abs(seconds) > LATEST_US:  # far out of range; keeps the product small
            raise Refused("timestamp_out_of_range", _RANGE, field)
        return seconds * 1_000_000
    if not math.isfinite(seconds) or abs(seconds) > LATEST_US:
        raise Refused("timestamp_out_of_range", _RANGE, field)
    return round(seconds * 1_000_000)


_RANGE = f"the instant must be between {EARLIEST.isoformat()} and {LATEST.isoformat()}"


def instant(us: int, *, field: str) -> datetime:
    """Microseconds since the epoch as a UTC instant within [EARLIEST, LATEST]."""
    if not EARLIEST_US <= us <= LATEST_US:
        raise Refused("timestamp_out_of_range", _RANGE, field)
    return EPOCH + timedelta(microseconds=us)


def iso_instant(value: str, *, field: str) -> datetime:
    """An RFC 3339 / ISO 8601 instant with an explicit offset, as UTC within range."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Refused("invalid_timestamp", "not an ISO 8601 instant", field) from exc
    offset = parsed.utcoffset()
    if offset is None:
        raise Refused("invalid_timestamp", "the instant needs an offset (`Z` or `+01:00`)", field)
    if abs(offset) > MAX_OFFSET:
        raise Refused("invalid_timestamp", "the UTC offset must be within ±15:59", field)
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError as exc:
        raise Refused("timestamp_out_of_range", _RANGE, field) from exc
    if not EARLIEST <= utc <= LATEST:
        raise Refused("timestamp_out_of_range", _RANGE, field)
    return utc


def own_device(claimed: str, *, device: str, field: str) -> None:
    """Refuse a reading that names a device other than the one that sent it."""
    if claimed != device:
        raise Refused(
            "foreign_device", f"names device {claimed[:64]!r}, not the sender {device!r}", field
        )


def utc(received_at: datetime) -> datetime:
    """The receipt time as UTC (a naive datetime is a programming error)."""
    if received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(UTC)
