"""Request-scoped dependencies: settings and one database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from config import Settings


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (async: no I/O, so no threadpool hop)."""
    return request.app.state.settings  # type: ignore[no-any-return]


def db_session(request: Request) -> Iterator[Session]:
    """A session for this request; routes commit what they mean to keep, the rest rolls back."""
    with request.app.state.session_factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(db_session)]
