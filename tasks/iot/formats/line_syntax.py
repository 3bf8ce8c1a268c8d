"""Influx line protocol's syntax: one line into its measurement, tags, fields and timestamp.

    <measurement>[,<tag>=<value>…] <field>=<value>[,<field>=<value>…] [<timestamp>]

Escaping, as InfluxData's line protocol reference gives it: a backslash escapes a comma or a
space in a measurement; a comma, an equals sign or a space in a tag key, tag value or field
key; a double quote in a string field value. Everywhere, two backslashes are one backslash,
and a backslash before anything else is itself. Quotes mean a string only as a field's value;
elsewhere they are part of the name. Sections are separated by one or more spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.iot.formats.rules import Refused

MEASUREMENT = ", "  # what a backslash escapes, beyond a backslash
KEY = ",= "  # tag keys, tag values and field keys
STRING = '"'


@dataclass(frozen=True, slots=True)
class Point:
    """One line, unescaped but for field values (kept raw, a string still in its quotes)."""

    measurement: str
    tags: list[tuple[str, str]]
    fields: list[tuple[str, str]]
    timestamp: str | None


def split_line(line: str) -> Point:
    """The parts of one non-blank, non-comment line; Refused(syntax_error) if it has none."""
    sections = _sections(line)
    if len(sections) < 2:
        raise Refused("syntax_error", "a line needs a measurement and a field set", None)
    if len(sections) > 3:
        raise Refused("syntax_error", "unescaped space after the timestamp", None)
    series = split(sections[0], ",", quotes=False)
    measurement = unescape(series[0], MEASUREMENT)
    if not measurement:
        raise Refused("syntax_error", "the measurement is empty", "measurement")
    tags = [_pair(item, "tag", quotes=False) for item in series[1:]]
    fields = [_pair(item, "field", quotes=True) for item in split(sections[1], ",", quotes=True)]
    return Point(measurement, tags, fields, sections[2] if len(sections) == 3 else None)


def _sections(line: str) -> list[str]:
    """The line split at unescaped spaces outside a string field value, empty parts dropped."""
    if "\\" not in line and '"' not in line:
        return [part for part in line.split(" ") if part]
    parts: list[str] = []
    start = i = 0
    quoted = after_equals = False
    while i < len(line):
        char = line[i]
        if char == "\\":
            i += 2
            after_equals = False
            continue
        if quoted:
            quoted = char != '"'
        elif char == '"' and after_equals and len(parts) == 1:
            quoted = True
        elif char == " ":
            if i > start:
                parts.append(line[start:i])
            start = i + 1
        after_equals = char == "=" and not quoted
        i += 1
    if quoted:
        raise Refused("syntax_error", "a string field value is not closed", None)
    if start < len(line):
        parts.append(line[start:])
    return parts


def split(text: str, sep: str, *, quotes: bool) -> list[str]:
    """`text` split at each unescaped `sep` (outside strings, when `quotes`)."""
    if "\\" not in text and (not quotes or '"' not in text):
        return text.split(sep)
    parts: list[str] = []
    start = i = 0
    quoted = after_equals = False
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            after_equals = False
            continue
        if quoted:
            quoted = char != '"'
        elif quotes and char == '"' and after_equals:
            quoted = True
        elif char == sep:
            parts.append(text[start:i])
            start = i + 1
        after_equals = char == "=" and not quoted
        i += 1
    parts.append(text[start:])
    return parts


def _pair(item: str, what: str, *, quotes: bool) -> tuple[str, str]:
    halves = split(item, "=", quotes=quotes)
    if len(halves) < 2 or not halves[0] or not halves[1]:
        raise Refused("syntax_error", f"a {what} is `key=value`, both non-empty", None)
    if len(halves) > 2 and not quotes:
        raise Refused("syntax_error", f"unescaped = in a {what} value", None)
    key = unescape(halves[0], KEY)
    raw = item[len(halves[0]) + 1 :]
    return key, (raw if quotes else unescape(raw, KEY))


def unescape(raw: str, specials: str) -> str:
    """`raw` with each backslash that escapes one of `specials` or a backslash removed."""
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw) and (raw[i + 1] == "\\" or raw[i + 1] in specials):
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def string_value(raw: str, *, field: str) -> str | None:
    """The text of a quoted string field value, or None if `raw` is not one."""
    if not raw.startswith('"'):
        return None
    i = 1
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
        elif raw[i] == '"':
            break
        else:
            i += 1
    if i != len(raw) - 1:
        raise Refused("syntax_error", "a string field value must end at its closing quote", field)
    return unescape(raw[1:-1], STRING)
