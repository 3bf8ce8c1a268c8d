"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from tasks.web.deps import SessionDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


def _check_redis(url: str) -> str:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
        return "ok"
    except redis.RedisError as exc:
        return f"unavailable: {exc}"
    finally:
        client.close()


def _check_database(session: SessionDep) -> str:
    try:
        session.execute(select(1))
        return "ok"
    except Exception as exc:  # any failure means not ready; the body says which
        return f"unavailable: {type(exc).__name__}"


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable."}})
def readyz(session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """PostgreSQL and Redis both answer."""
    checks: dict[str, Any] = {
        "database": _check_database(session),
        "redis": _check_redis(settings.redis.url),
    }
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
