"""Which parser reads a batch: one the settings add for its media type, else a built-in one
(`tasks.iot.formats`, which answers 415 for any other)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from config import Settings
from tasks.iot.formats import Parser
from tasks.iot.formats import parser_for as built_in_parser
from tasks.iot.settings import IotSettings


def media_type(content_type: str | None) -> str:
    """`type/subtype` of a Content-Type header, lower-cased, parameters dropped."""
    return (content_type or "").partition(";")[0].strip().lower()


def _load(path: str) -> Parser:
    module, _, name = path.partition(":")
    parser: Parser = getattr(importlib.import_module(module), name)
    return parser


def extra_parsers(settings: Settings) -> dict[str, Parser]:
    """The formats the settings add (`extra_parsers`), by media type."""
    return {kind: _load(path) for kind, path in settings.section(IotSettings).extra_parsers.items()}


def parser_for(content_type: str | None, *, extra: Mapping[str, Parser]) -> Parser:
    """The parser of `content_type`: an extra one, else a built-in one, else a 415."""
    parser = extra.get(media_type(content_type))
    return parser if parser is not None else built_in_parser(content_type)
