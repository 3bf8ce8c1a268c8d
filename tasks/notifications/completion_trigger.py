"""The completion-callback trigger: `sql/completion_callback.sql` rendered with the names and
numbers the code owns, for a migration to install.

The installed function keeps what it was rendered with: a change to any value of `names()`
needs a new migration that installs the trigger again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from store.outbox import NOTIFY_CHANNEL
from store.states import TERMINAL_STATES, JobState
from tasks.notifications.retries import CALLBACK_ATTEMPTS
from tasks.notifications.schemas import DELIVER, Channel

SQL_FILE: Final = Path(__file__).resolve().parent / "sql" / "completion_callback.sql"
FUNCTION: Final = "switchyard_enqueue_job_callback"
TRIGGER: Final = "jobs_completion_callback"
CALLBACK_KIND: Final = "callback"  # `notifications.kind` of a completion callback
CALLBACK_CHANNEL: Final[Channel] = "webhook"

_PLACEHOLDER = re.compile(r"\{\{ *(\w+) *\}\}")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


class Identifier(str):
    """A name written into SQL as it is (checked to need no quoting), not as a string literal."""

    __slots__ = ()


Value = Identifier | str | int | tuple[str, ...]


def names() -> dict[str, Value]:
    """Every placeholder of the SQL file and the code's value for it."""
    return {
        "function": Identifier(FUNCTION),
        "trigger": Identifier(TRIGGER),
        "job_type": DELIVER.name,
        "queue": DELIVER.queue,
        "max_attempts": CALLBACK_ATTEMPTS,
        "accepted": JobState.ACCEPTED.value,
        "terminal_states": tuple(s.value for s in JobState if s in TERMINAL_STATES),
        "kind": CALLBACK_KIND,
        "channel": CALLBACK_CHANNEL,
        "notify_channel": NOTIFY_CHANNEL,
    }


def _sql(value: Value) -> str:
    """`value` in SQL: identifiers bare, strings quoted, integers in digits, tuples as lists."""
    if isinstance(value, Identifier):
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError(f"{value!r} is not a plain SQL identifier")
        return str(value)
    if isinstance(value, tuple):
        return ", ".join(_sql(v) for v in value)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a NUL cannot be written into SQL")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"no SQL spelling for {value!r}")


def render(values: dict[str, Value] | None = None) -> str:
    """The SQL file with each placeholder spelled as SQL; a missing or unused value raises."""
    values = names() if values is None else values
    template = SQL_FILE.read_text()
    wanted = set(_PLACEHOLDER.findall(template))
    if wanted != set(values):
        missing, unused = sorted(wanted - set(values)), sorted(set(values) - wanted)
        raise ValueError(f"placeholders without a value {missing}, values unused {unused}")
    return _PLACEHOLDER.sub(lambda m: _sql(values[m.group(1)]), template)
