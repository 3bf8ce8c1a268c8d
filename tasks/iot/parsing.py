"""Which parser reads a batch: one the settings add for its media type, else a built-in one
(`tasks.iot.formats`, which answers 415 for any other)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from config import Settings
from errors import InvalidFieldError
from tasks.iot.formats import PRECISIONS, Parser, UnsupportedMediaTypeError, media_parameters
from tasks.iot.formats import parser_for as built_in_parser
from tasks.iot.settings import IotSettings


def batch_type(content_type: str | None, *, precision: str | None = None) -> str:
    """The content type a batch is stored with: the header's `type/subtype`, lower-cased, and
    its timestamp precision — the header's `precision` parameter, or `precision` (a route's
    `?precision=`); the two must agree. A charset other than UTF-8 is a 415; other
    parameters are dropped."""
    media, params = media_parameters(content_type)
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise UnsupportedMediaTypeError("the body must be UTF-8", field="Content-Type")
    given = params.get("precision")
    if precision is not None and given is not None and given != precision:
        raise InvalidFieldError(
            f"?precision={precision} and the Content-Type's precision={given} disagree",
            field="precision",
        )
    chosen = precision if precision is not None else given
    if chosen is None:
        return media
    if chosen not in PRECISIONS:  # before any rate limit counts the request
        raise InvalidFieldError(f"precision is one of {', '.join(PRECISIONS)}", field="precision")
    return f"{media}; precision={chosen}"


def _load(path: str) -> Parser:
    module, _, name = path.partition(":")
    parser: Parser = getattr(importlib.import_module(module), name)
    return parser


def extra_parsers(settings: Settings) -> dict[str, Parser]:
    """The formats the settings add (`extra_parsers`), by media type."""
    return {kind: _load(path) for kind, path in settings.section(IotSettings).extra_parsers.items()}


def parser_for(content_type: str | None, *, extra: Mapping[str, Parser]) -> Parser:
    """The parser of `content_type`: an extra one, else a built-in one, else a 415."""
    media, params = media_parameters(content_type)
    parser = extra.get(media)
    if parser is None:
        return built_in_parser(content_type)
    if "precision" in params:
        raise InvalidFieldError(f"{media} takes no precision", field="precision")
    return parser
