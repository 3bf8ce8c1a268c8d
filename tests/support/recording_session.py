"""A stand-in for an ORM session that runs nothing: it keeps the statements it is given."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable


class NoRows:
    """The answer to every statement: nothing matched."""

    def all(self) -> list[Any]:
        """No rows."""
        return []

    def one(self) -> tuple[None, None]:
        """The row of a statement that always answers one (the relay's mark-sent): nulls."""
        return (None, None)

    def one_or_none(self) -> None:
        """No row."""
        return None

    def scalar_one(self) -> datetime:
        """The one scalar the ledger asks for outside a transition: `now() + delay`."""
        return datetime.now(UTC)


class RecordingSession:
    """Keeps every statement executed on it and answers each with `NoRows`."""

    def __init__(self) -> None:
        self.statements: list[Executable] = []

    def execute(self, statement: Executable, params: Any = None) -> NoRows:
        """Record `statement`; run nothing."""
        self.statements.append(statement)
        return NoRows()

    def as_session(self) -> Session:
        """This fake, typed as what the ledger's functions take."""
        return cast(Session, self)
