"""Rendering for people (rich tables) and for scripts (`--json`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

console = Console()
errors = Console(stderr=True)


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(value, indent=2, default=str, sort_keys=True) + "\n")


def cell(value: Any) -> Text:
    """A value as a table cell, shown as it is: `[red]` in a job's error or a mail's subject is
    text, not markup for rich to apply (or to refuse, as an unmatched `[/x]` would be)."""
    if value is None:
        return Text("-")
    if isinstance(value, datetime):
        return Text(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, float):
        return Text(f"{value:.1f}")
    if isinstance(value, dict | list):
        return Text(json.dumps(value, default=str)[:80])
    return Text(str(value))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table for people."""
    view = Table(title=title, title_justify="left", header_style="bold")
    for n, column in enumerate(columns):
        # The first column is an id people copy: never wrap it.
        view.add_column(column, overflow="fold", no_wrap=n == 0)
    for row in rows:
        view.add_row(*(cell(v) for v in row))
    console.print(view)


def fail(message: str) -> None:
    """Print an error for people on stderr."""
    errors.print(f"[red]switchyard:[/red] {escape(message)}", highlight=False)
