"""The ingestion formats: a batch's bytes into readings, pure (no database, no clock but the
receipt time given).

`PARSERS` maps a media type to its parser; each is called as
`parse(body, device=..., received_at=...)` and returns `Parsed`: the readings in batch order
with their index, and a `Refusal` (index, code, reason, field) for each reading that cannot be
accepted, so the valid rest is kept. A body that cannot be read as a batch at all raises an
`InvalidFieldError` naming the field (400 for bytes that are not UTF-8 JSON, 422 for JSON of
the wrong shape).

- `application/json` (`json_batch`): `{"readings": [{"metric", "value", "ts", "unit"}]}`.
- `application/senml+json` (`senml`): RFC 8428 SenML JSON.
- `text/plain` (`line_protocol`): Influx line protocol; its timestamps are nanoseconds
  unless the media type says `precision=us`, `ms` or `s` (`text/plain; precision=ms`).

The device is always the authenticated sender's: a reading may name it (SenML's base name,
a `device` member or tag) but a reading naming another device is refused (`foreign_device`).
Every format applies the same rules (`rules`): metric names 1 to 128 printable characters,
units 1 to 32, string values at most 4096 characters and free of NUL and lone surrogates,
finite numbers (integers only within ±2**53, which a double holds exactly), and event times
from 1970-01-01 to 2262-04-11 (the end of int64 nanoseconds), kept to the microsecond.
Refusal codes: not_an_object, unknown_field, missing_field, invalid_type, invalid_metric,
invalid_unit, invalid_value, invalid_text, number_out_of_range, invalid_timestamp,
timestamp_out_of_range, foreign_device, ambiguous_value, unsupported_value,
unsupported_version, invalid_base, syntax_error, duplicate_key.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Protocol, cast, get_args

from errors import InvalidFieldError
from tasks.iot.formats import json_batch, line_protocol, senml
from tasks.iot.readings import Parsed


class Parser(Protocol):
    """A batch's bytes, from `device`, received at `received_at`, into readings."""

    def __call__(self, body: bytes, /, *, device: str, received_at: datetime) -> Parsed: ...


PARSERS: dict[str, Parser] = {
    "application/json": json_batch.parse,
    "application/senml+json": senml.parse,
    "text/plain": line_protocol.parse,
}


class UnsupportedMediaTypeError(InvalidFieldError):
    """The body's media type is not one of `PARSERS`, or not in UTF-8."""

    status, code = 415, "unsupported_media_type"


PRECISIONS: tuple[str, ...] = get_args(line_protocol.Precision)


def media_parameters(content_type: str | None) -> tuple[str, dict[str, str]]:
    """A `Content-Type` header's `type/subtype` (lower-cased) and its parameters."""
    media, *params = (content_type or "").split(";")
    named = {}
    for param in params:
        name, _, value = param.partition("=")
        named[name.strip().lower()] = value.strip().strip('"')
    return media.strip().lower(), named


def parser_for(content_type: str | None) -> Parser:
    """The parser for a batch's content type (`tasks.iot.parsing.batch_type`):
    `text/plain; precision=ms` reads line-protocol timestamps as milliseconds."""
    media, params = media_parameters(content_type)
    parser = PARSERS.get(media)
    if parser is None:
        known = ", ".join(PARSERS)
        raise UnsupportedMediaTypeError(f"send one of {known}", field="Content-Type")
    precision = params.get("precision")
    if precision is None:
        return parser
    if media != "text/plain" or precision not in PRECISIONS:
        raise InvalidFieldError(
            f"precision is one of {', '.join(PRECISIONS)}, for text/plain only", field="precision"
        )
    return partial(line_protocol.parse, precision=cast(line_protocol.Precision, precision))
