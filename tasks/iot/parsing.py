"""Which parser reads a batch: chosen by the media type of its Content-Type."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from config import Settings
from errors import SwitchyardError
from tasks.iot.readings import Parsed
from tasks.iot.settings import IotSettings


class Parser(Protocol):
    """A format's pure parse function (`tasks.iot.formats`)."""

    def __call__(self, body: bytes, *, device: str, received_at: datetime) -> Parsed:
        """The batch's readings and the refusals of what did not parse."""
        ...


# The formats Switchyard reads itself, by media type (`tasks.iot.formats`); settings add more.
BUILT_IN: Mapping[str, str] = {}


class UnsupportedFormatError(SwitchyardError):
    """The Content-Type names no format this service reads."""

    status, code, field = 415, "unsupported_format", "Content-Type"


def media_type(content_type: str | None) -> str:
    """`type/subtype` of a Content-Type header, lower-cased, parameters dropped."""
    return (content_type or "").partition(";")[0].strip().lower()


def _load(path: str) -> Parser:
    module, _, name = path.partition(":")
    parser: Parser = getattr(importlib.import_module(module), name)
    return parser


def parsers(settings: Settings) -> dict[str, Parser]:
    """Every format read, by media type: the built-in ones and the settings' extra ones."""
    extra = settings.section(IotSettings).extra_parsers
    return {kind: _load(path) for kind, path in {**BUILT_IN, **extra}.items()}


def parser_for(content_type: str | None, table: Mapping[str, Parser]) -> Parser:
    """The parser of `content_type`, or a 415 naming the formats read."""
    parser = table.get(media_type(content_type))
    if parser is None:
        known = ", ".join(sorted(table)) or "none"
        raise UnsupportedFormatError(
            f"Content-Type {content_type or '(none)'!r} is not a format read here ({known})"
        )
    return parser
