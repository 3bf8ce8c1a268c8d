"""Field types for request models: only what PostgreSQL and Python can hold gets through.

Every request model builds on these, so a value is refused (422 naming its field) where it
enters rather than failing (500) where it is stored: text without NUL or lone surrogates, JSON
objects whose every string, key and number can be stored, integers that fit their column, and
instants whose offset is real and whose UTC value (with a day to spare) is in range.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

from tasks.web.strict import MAX_DEPTH, text_problem

INT32_MAX = 2**31 - 1
# Real offsets stop at ±14:00; PostgreSQL refuses any beyond ±15:59.
MAX_OFFSET = timedelta(hours=15, minutes=59)
# A day short of Python's last instant: quiet hours and time zones may still move it forward.
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _tree(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"{path}: {problem}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path}: {value} is not a JSON number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _tree(str(key), f"{path} key", depth)
            _tree(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _tree(item, f"{path}.{index}", depth + 1)


def _object(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        _tree(str(key), "key", 0)
        _tree(item, str(key), 1)
    return value


def _instant(value: datetime) -> datetime:
    offset = value.utcoffset()
    assert offset is not None  # AwareDatetime
    if abs(offset) > MAX_OFFSET:
        raise ValueError("the UTC offset must be within ±15:59")
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the instant is outside the supported range (years 1-9999)") from exc
    if utc >= LATEST:
        raise ValueError(f"the instant must be before {LATEST.isoformat()}")
    return utc


Text = Annotated[str, AfterValidator(_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_object)]
Int32 = Annotated[int, Field(ge=1, le=INT32_MAX)]  # a positive INTEGER column
Instant = Annotated[AwareDatetime, AfterValidator(_instant)]
