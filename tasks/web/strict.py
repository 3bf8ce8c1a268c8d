"""Strict JSON: the one parser every request body goes through.

`loads` refuses what Python's `json` lets through and PostgreSQL (or the next reader) cannot
take: `NaN`/`Infinity` (not JSON), numbers that overflow a double (`1e999` would become
infinity), duplicate keys (which value wins differs between parsers), lone surrogates and NUL
characters (PostgreSQL stores neither), nesting deeper than `MAX_DEPTH`, and any encoding but
UTF-8 (RFC 8259 §8.1: a BOM or UTF-16/32 is refused, the same on every route). Each refusal is
an `InvalidFieldError` naming where it is (`payload.a.1`, or `body` when it cannot be located).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from errors import InvalidFieldError

MAX_DEPTH = 32  # objects and arrays inside one another; no request needs more


class MalformedJsonError(InvalidFieldError):
    """The body is not JSON (or uses something JSON does not have, like `NaN`)."""

    status, code = 400, "malformed_json"


class InvalidEncodingError(InvalidFieldError):
    """The body is not UTF-8 (a BOM, UTF-16, or bytes no encoding explains)."""

    status, code = 400, "invalid_encoding"


class BodyTooDeepError(InvalidFieldError):
    """Objects and arrays nest deeper than `MAX_DEPTH`."""

    status, code = 400, "body_too_deep"


class NumberOutOfRangeError(InvalidFieldError):
    """A number that no double (or no column) can hold."""

    code = "number_out_of_range"


class InvalidTextError(InvalidFieldError):
    """A string PostgreSQL cannot store: a NUL character or a lone surrogate."""

    code = "invalid_text"


class _Flag:
    """What the parser leaves where it read `NaN` or `Infinity`, for the walk to locate."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(items)
    if len(obj) != len(items):
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:  # raised through `json.loads` as it is
                raise MalformedJsonError(f"duplicate key {_label(key)!r}", field="body")
            seen.add(key)
    return obj


class _Overflow(_Flag):
    """What the parser leaves where a number overflows a double (`1e999`)."""


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes and all
# Outside strings, JSON has brackets and these: what is left once they are gone is brackets.
_NOT_BRACKETS = str.maketrans("", "", ",:0123456789.eE+- \t\n\rtruefalsn")


def _deeper_than(text: str, limit: int) -> bool:
    """True if the JSON `text` (already parsed) nests objects and arrays past `limit`: its
    brackets outside strings, one level of innermost pairs taken away per pass."""
    if text.count("{") + text.count("[") <= limit:
        return False
    brackets = _STRING.sub("", text).translate(_NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace("{}", "").replace("[]", "")
    return bool(brackets)


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store `value`, or None if it can."""
    if "\x00" in value:
        return "NUL characters (\\u0000) cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "lone surrogates (\\ud800-\\udfff without a pair) are not text"
    return None


def loads(raw: bytes) -> Any:
    """The JSON value `raw` holds, parsed strictly; InvalidFieldError naming where it fails."""
    if raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or raw[:2].count(0):
        raise InvalidEncodingError("the body must be UTF-8 JSON, without a BOM", field="body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEncodingError(f"the body is not UTF-8: {exc.reason}", field="body") from exc
    flags: list[_Flag] = []  # where the walk must look, if any

    def constant(literal: str) -> _Flag:
        flags.append(_Flag(literal))
        return flags[-1]

    def number(literal: str) -> float | _Flag:
        value = float(literal)
        if math.isfinite(value):
            return value
        flags.append(_Overflow(literal))
        return flags[-1]

    try:
        value = json.loads(
            text, parse_constant=constant, parse_float=number, object_pairs_hook=_pairs
        )
    except json.JSONDecodeError as exc:
        raise MalformedJsonError(f"not JSON: {exc.msg} at {exc.pos}", field="body") from exc
    except RecursionError as exc:
        raise BodyTooDeepError(f"nested deeper than {MAX_DEPTH} levels", field="body") from exc
    except ValueError as exc:  # an integer beyond Python's digit limit
        raise NumberOutOfRangeError(f"a number is too large: {exc}", field="body") from exc
    # NUL and lone surrogates can only come in as \u escapes (raw, they are not valid JSON or
    # not UTF-8): without flags, escapes or deep nesting, nothing the walk looks for is there.
    if flags or "\\u" in text or _deeper_than(text, MAX_DEPTH):
        _walk(value)
    return value


def _walk(root: Any) -> None:
    """Raise the first problem in the parsed value, located by its path."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        where = ".".join(path) or "body"
        if len(path) > MAX_DEPTH:
            raise BodyTooDeepError(f"nested deeper than {MAX_DEPTH} levels", field=where)
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, _Overflow):
            raise NumberOutOfRangeError("the number does not fit a double", field=where)
        elif isinstance(value, _Flag):
            raise MalformedJsonError(f"{value.literal} is not JSON", field=where)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, where)  # a bad key: the object holding it is at fault
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(value))


def _label(key: str) -> str:
    """A key as it can appear in a problem's `field` (a lone surrogate escaped)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_text(value: str, where: str) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise InvalidTextError(problem, field=where)


def invalid_fields(exc: ValidationError, *, prefix: tuple[str, ...] = ()) -> InvalidFieldError:
    """A pydantic ValidationError as the InvalidFieldError naming its first field (all listed)."""
    errors = [
        {"field": ".".join(map(str, (*prefix, *e["loc"]))) or "body", "message": e["msg"]}
        for e in exc.errors(include_url=False)
    ]
    first = errors[0]
    return InvalidFieldError(first["message"], field=first["field"], errors=errors)
