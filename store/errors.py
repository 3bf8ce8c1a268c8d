"""The one root of Switchyard's own errors."""

from __future__ import annotations


class SwitchyardError(Exception):
    """Base of every error Switchyard raises on purpose; `code` is stable and machine-readable."""

    code = "switchyard_error"
