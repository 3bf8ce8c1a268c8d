"""Webhook endpoints: registration and secret rotation (old secrets sign on for a grace period)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from errors import ConflictError, NotFoundError
from tasks.notifications.models import WebhookEndpoint
from tasks.notifications.secrets import new_secret, seal, secret_bytes, unseal
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import check_url, parse_networks


class EndpointNotFoundError(NotFoundError):
    """No endpoint with that id belongs to the caller."""

    code = "endpoint_not_found"


class EndpointExistsError(ConflictError):
    """The caller already registered this URL."""

    code, field = "endpoint_exists", "url"


def live(secrets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sealed secrets (an endpoint's `secrets`) not yet past their grace period."""
    now = datetime.now(UTC)
    return [
        s
        for s in secrets
        if s.get("expires_at") is None or datetime.fromisoformat(s["expires_at"]) > now
    ]


def active_secrets(secrets: list[dict[str, Any]], *, settings: Settings) -> list[str]:
    """The plain secrets that sign right now: the current one, then any still in grace."""
    return [unseal(s["sealed"], settings=settings) for s in live(secrets)]


def register_endpoint(
    session: Session, url: str, *, producer: str, secret: str | None, settings: Settings
) -> tuple[WebhookEndpoint, str]:
    """Store an endpoint; returns it and its secret (the only time it is shown)."""
    check_url(
        url, allowed=parse_networks(settings.section(NotificationSettings).webhook_allowed_networks)
    )
    plain = secret or new_secret()
    secret_bytes(plain)
    taken = session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.producer == producer, WebhookEndpoint.url == url
        )
    ).first()
    if taken is not None:
        raise EndpointExistsError(f"endpoint {taken} already has this URL")
    row = WebhookEndpoint(
        producer=producer, url=url, secrets=[{"sealed": seal(plain, settings=settings)}]
    )
    session.add(row)
    session.flush()
    return row, plain


def find_endpoint(session: Session, endpoint_id: uuid.UUID, *, producer: str) -> WebhookEndpoint:
    """The caller's endpoint, or EndpointNotFoundError."""
    row = session.get(WebhookEndpoint, endpoint_id)
    if row is None or row.producer != producer:
        raise EndpointNotFoundError(f"no webhook endpoint {endpoint_id}")
    return row


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, *, secret: str | None, settings: Settings
) -> str:
    """Make a new current secret; the previous ones keep signing until the grace ends."""
    plain = secret or new_secret()
    secret_bytes(plain)
    grace_end = datetime.now(UTC) + timedelta(
        seconds=settings.section(NotificationSettings).secret_rotation_grace
    )
    kept = [
        old
        if old.get("expires_at")
        else {"sealed": old["sealed"], "expires_at": grace_end.isoformat()}
        for old in live(endpoint.secrets)
    ]
    endpoint.secrets = [{"sealed": seal(plain, settings=settings)}, *kept]
    session.flush()
    return plain


def list_endpoints(session: Session, *, producer: str) -> list[WebhookEndpoint]:
    """The caller's endpoints, oldest first."""
    return list(
        session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.producer == producer)
            .order_by(WebhookEndpoint.id)
        )
    )


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Forget an endpoint and its secrets; its undelivered notifications will fail."""
    session.delete(endpoint)
    session.flush()
