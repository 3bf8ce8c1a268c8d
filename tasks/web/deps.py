"""Request-scoped dependencies: settings and one database session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from config import Settings
from store.db import new_session


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (async: no I/O, so no threadpool hop)."""
    return request.app.state.settings  # type: ignore[no-any-return]


async def db_session(request: Request) -> AsyncIterator[Session]:
    """A session for this request; routes commit what they mean to keep, the rest rolls back.

    Async so that closing it (returning the connection) happens on the event loop: a sync
    cleanup waits for a threadpool slot while holding its connection, and enough concurrent
    requests then deadlock the pool against the threads.
    """
    session = new_session(request.app.state.settings)
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(db_session)]
