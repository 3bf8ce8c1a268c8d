"""`/v1/notification-templates` and `/v1/webhook-endpoints`: what notifications are made from."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from store.api_keys import Principal
from tasks.notifications.endpoints import (
    delete_endpoint,
    find_endpoint,
    list_endpoints,
    live,
    register_endpoint,
    rotate_secret,
)
from tasks.notifications.models import NotificationTemplate, WebhookEndpoint
from tasks.notifications.schemas import (
    NAME_PATTERN,
    EndpointRequest,
    EndpointSecret,
    EndpointView,
    SecretRequest,
    TemplateRequest,
    TemplateView,
)
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.templates import (
    delete_template,
    find_template,
    list_templates,
    parts_of,
    save_template,
    variables,
)
from tasks.web.auth import require_scope
from tasks.web.deps import SessionDep, SettingsDep
from tasks.web.fields import INT32_MAX
from tasks.web.routing import StrictRoute

router = APIRouter(tags=["notifications"], route_class=StrictRoute)
Writer = Annotated[Principal, Depends(require_scope("notifications:write"))]
Reader = Annotated[Principal, Depends(require_scope("notifications:read"))]
Name = Annotated[str, Path(pattern=NAME_PATTERN)]


def _template_view(row: NotificationTemplate) -> TemplateView:
    parts = parts_of(row)
    return TemplateView(
        name=row.name,
        version=row.version,
        subject=row.subject,
        text=row.text_body,
        html=row.html_body,
        variables=variables(parts),
        created_at=row.created_at,
    )


@router.put("/v1/notification-templates/{name}", response_model=TemplateView, status_code=201)
def put_template(
    name: Name, body: TemplateRequest, session: SessionDep, settings: SettingsDep, principal: Writer
) -> TemplateView:
    """Save a new version of a template (checked: it parses, and renders `sample_data`)."""
    parts = {"subject": body.subject, "text": body.text, "html": body.html}
    row = save_template(
        session,
        name,
        producer=principal.producer,
        parts=parts,
        sample_data=body.sample_data,
        max_chars=settings.section(NotificationSettings).template_max_chars,
    )
    session.commit()
    return _template_view(row)


@router.get("/v1/notification-templates", response_model=list[TemplateView])
def get_templates(session: SessionDep, principal: Reader) -> list[TemplateView]:
    """The newest version of every template."""
    return [_template_view(r) for r in list_templates(session, producer=principal.producer)]


@router.get("/v1/notification-templates/{name}", response_model=TemplateView)
def get_template(
    name: Name,
    session: SessionDep,
    principal: Reader,
    version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> TemplateView:
    """A template's newest version, or the one asked for."""
    row = find_template(session, name, producer=principal.producer, version=version)
    return _template_view(row)


@router.delete("/v1/notification-templates/{name}", status_code=204)
def remove_template(name: Name, session: SessionDep, principal: Writer) -> Response:
    """Retire every version of a template."""
    delete_template(session, name, producer=principal.producer)
    session.commit()
    return Response(status_code=204)


def _endpoint_view(row: WebhookEndpoint) -> EndpointView:
    return EndpointView(
        id=row.id, url=row.url, active_secrets=len(live(row.secrets)), created_at=row.created_at
    )


@router.post(
    "/v1/webhook-endpoints", response_model=EndpointSecret, status_code=status.HTTP_201_CREATED
)
def post_endpoint(
    body: EndpointRequest, session: SessionDep, settings: SettingsDep, principal: Writer
) -> EndpointSecret:
    """Register a webhook receiver; the answer carries its secret, shown only this once."""
    row, secret = register_endpoint(
        session, body.url, producer=principal.producer, secret=body.secret, settings=settings
    )
    session.commit()
    return EndpointSecret(**_endpoint_view(row).model_dump(), secret=secret)


@router.get("/v1/webhook-endpoints", response_model=list[EndpointView])
def get_endpoints(session: SessionDep, principal: Reader) -> list[EndpointView]:
    """The caller's webhook receivers."""
    return [_endpoint_view(r) for r in list_endpoints(session, producer=principal.producer)]


@router.post("/v1/webhook-endpoints/{endpoint_id}/rotate", response_model=EndpointSecret)
def rotate_endpoint_secret(
    endpoint_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: Writer,
    body: SecretRequest | None = None,
) -> EndpointSecret:
    """Issue a new secret; deliveries carry both signatures until the old one's grace ends."""
    row = find_endpoint(session, endpoint_id, producer=principal.producer)
    secret = rotate_secret(session, row, secret=body.secret if body else None, settings=settings)
    session.commit()
    return EndpointSecret(**_endpoint_view(row).model_dump(), secret=secret)


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204)
def remove_endpoint(endpoint_id: uuid.UUID, session: SessionDep, principal: Writer) -> Response:
    """Delete a webhook receiver and its secrets."""
    row = find_endpoint(session, endpoint_id, producer=principal.producer)
    delete_endpoint(session, row)
    session.commit()
    return Response(status_code=204)
