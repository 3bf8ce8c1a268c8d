"""Celery signal hooks: our logging instead of Celery's."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging

from config import get_settings
from logs import configure_logging


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    """Keep Celery's own logs in the same structured stream as ours."""
    configure_logging(get_settings().resolved_log_format)
