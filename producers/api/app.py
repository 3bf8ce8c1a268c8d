"""`create_app`: the FastAPI intake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from config import Settings, get_settings
from producers.api.errors import install_error_handlers
from producers.api.intake import IntakeWriter
from producers.api.limits import BodySizeLimit
from producers.api.openapi import document_problems
from producers.api.routes import batch, health, jobs, metrics, submit
from tasks.registry import domains

DESCRIPTION = """
Submit jobs to Switchyard. A `202 Accepted` means the job is committed to the
PostgreSQL ledger and will reach exactly one terminal state (`succeeded`, `dead`
or `cancelled`). Authenticate with `Authorization: Bearer <api key>`; errors are
RFC 9457 `application/problem+json` bodies naming the failing `field`.
"""
DOCS_ASSETS = "/docs-assets"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.intake.start()
    yield
    await app.state.intake.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the intake app bound to `settings`."""
    settings = settings or get_settings()
    registry = domains(settings)
    registry.check(settings)
    # /docs (Swagger UI) and /redoc load their scripts and styles from DOCS_ASSETS, served
    # from the fastapi-offline package: the pages work without internet access.
    app = FastAPIOffline(
        title="Switchyard", version="0.1.0", description=DESCRIPTION, lifespan=_lifespan,
        static_url=DOCS_ASSETS,
    )  # fmt: skip
    app.state.settings = settings
    app.state.intake = IntakeWriter(settings)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    submit.install(app)  # first: the hottest route, matched before any router
    app.include_router(health.router)
    app.include_router(batch.router)
    app.include_router(jobs.router)
    app.include_router(metrics.router)
    for router in registry.routers():
        app.include_router(router)
    document_problems(app)
    return app
