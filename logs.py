"""Structured logging: one event per line, JSON in production, readable in dev."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict

SECRET_KEYS = frozenset(
    {"authorization", "api_key", "token", "secret", "password", "webhook_secret", "signature"}
)


SECRET_SUFFIXES = ("_secret", "_token", "_password", "_api_key", "_key_secret")
REDACTED = "[redacted]"
# API keys (`sy_<id>_<secret>`) and passwords inside URLs, wherever they appear in a line.
_TOKEN = re.compile(r"\bsy_([0-9a-f]{6,32})_[A-Za-z0-9_\-]{8,}")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")


def is_secret_key(key: str) -> bool:
    """True for field names whose values are never logged."""
    lowered = key.lower()
    return lowered in SECRET_KEYS or lowered.endswith(SECRET_SUFFIXES)


def scrub(value: Any) -> Any:
    """`value` with API keys, URL passwords and secret-named fields (at any depth) masked."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", _TOKEN.sub(r"sy_\1_***", value))
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def _redact(_: Any, __: str, event: EventDict) -> EventDict:
    return scrub(event)  # type: ignore[no-any-return]


def _redact_exception(_: Any, __: str, event: EventDict) -> EventDict:
    if "exception" in event:  # a traceback is text only once formatted
        event["exception"] = scrub(event["exception"])
    return event


def configure_logging(fmt: str, *, level: int = logging.INFO, prefix: str | None = None) -> None:
    """Send structlog events and standard-library records through one renderer.

    structlog events are rendered and written by structlog itself, without a `LogRecord` (a
    third of the cost per line); the standard library's (Celery, SQLAlchemy …) go through a
    handler that applies the same processors.
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if prefix:
        shared.append(lambda _, __, e: {"process": prefix, **e})
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            _name_as_logger,
            *shared,
            structlog.processors.format_exc_info,
            _redact_exception,
            renderer,
        ],
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact_exception,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; the notification attempt log already records each one.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))


def _name_as_logger(_: Any, __: str, event: EventDict) -> EventDict:
    if "logger_name" in event:  # the key stdlib records carry too
        event["logger"] = event.pop("logger_name")
    return event


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry `logger: name`. Lazy: one made at import time,
    before `configure_logging`, still follows the configuration in force when it logs."""
    return structlog.get_logger(logger_name=name)
