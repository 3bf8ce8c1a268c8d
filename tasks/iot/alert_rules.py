"""Declaring alert rules: a threshold on a numeric metric of a profile (N consecutive readings
or a `for_seconds` duration), or an offline rule; and who is told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from config import Settings
from errors import ConflictError, InvalidFieldError
from tasks.iot.api_schemas import Bound, MetricName, Slug
from tasks.iot.devices import get_profile
from tasks.iot.models import AlertRule, Profile
from tasks.notifications.service import normalise_recipient
from tasks.notifications.settings import NotificationSettings
from tasks.web.fields import Text


class AlertRuleCreate(BaseModel):
    """`POST /v1/alert-rules`: a threshold fires past `set_at` and resolves back past
    `clear_at`; an offline rule fires when a device goes silent and resolves on its next
    reading."""

    model_config = ConfigDict(extra="forbid", strict=True)  # as the other IoT request bodies
    id: Slug
    profile: Slug
    kind: Literal["threshold", "offline"] = "threshold"
    metric: MetricName | None = None
    direction: Literal["above", "below"] = "above"
    set_at: Bound | None = None
    clear_at: Bound | None = None
    consecutive: Annotated[int, Field(ge=1, le=10_000)] = 1
    for_seconds: Annotated[float, Field(gt=0, le=366 * 86_400)] | None = None
    channel: Literal["email", "sms"]
    to: Annotated[Text, Field(min_length=1, max_length=2_048)]


class AlertRuleView(AlertRuleCreate):
    """A rule as stored (`to` in its canonical form)."""

    model_config = ConfigDict(strict=False)  # a response, read from columns: not a request

    created_at: datetime

    @classmethod
    def of(cls, r: AlertRule) -> AlertRuleView:
        """The view of a row."""
        return cls(
            id=r.id, profile=r.profile_id, kind=r.kind, metric=r.metric, direction=r.direction,
            set_at=r.set_at, clear_at=r.clear_at, consecutive=r.consecutive,
            for_seconds=r.for_seconds, channel=r.channel, to=r.recipient,
            created_at=r.created_at,
        )  # fmt: skip


def _check_threshold(body: AlertRuleCreate, profile: Profile) -> None:
    spec = profile.metrics.get(body.metric or "")
    if spec is None or spec["type"] != "number":
        raise InvalidFieldError("not a numeric metric of the profile", field="metric")
    set_at, clear_at = body.set_at, body.clear_at
    if set_at is None:
        raise InvalidFieldError("a threshold rule needs it", field="set_at")
    if clear_at is None:
        raise InvalidFieldError("a threshold rule needs it", field="clear_at")
    # Hysteresis: an above rule resolves at clear_at or below, so clear_at may not exceed
    # set_at (equal: no band); a below rule the other way round. The error names clear_at.
    if body.direction == "above" and clear_at > set_at:
        raise InvalidFieldError("an above rule's clear_at must not exceed set_at", field="clear_at")
    if body.direction == "below" and clear_at < set_at:
        raise InvalidFieldError(
            "a below rule's clear_at must not be below set_at", field="clear_at"
        )
    if body.for_seconds is not None and body.consecutive != 1:
        raise InvalidFieldError("give for_seconds or consecutive, not both", field="for_seconds")


def _check_offline(body: AlertRuleCreate, profile: Profile) -> None:
    for name in ("metric", "set_at", "clear_at", "for_seconds"):
        if getattr(body, name) is not None:
            raise InvalidFieldError("an offline rule takes no threshold", field=name)
    if body.consecutive != 1:
        raise InvalidFieldError("an offline rule takes no threshold", field="consecutive")
    if not any(spec.get("interval") for spec in profile.metrics.values()):
        raise InvalidFieldError(
            "the profile declares no expected interval to be silent for", field="profile"
        )


def create(session: Session, body: AlertRuleCreate, *, settings: Settings) -> AlertRule:
    """Store a rule on an existing profile, its shape and recipient checked now."""
    profile = get_profile(session, body.profile)
    (_check_offline if body.kind == "offline" else _check_threshold)(body, profile)
    if session.get(AlertRule, body.id) is not None:
        raise ConflictError(f"alert rule {body.id!r} exists already")
    recipient = normalise_recipient(
        body.channel, body.to, settings=settings.section(NotificationSettings)
    )
    rule = AlertRule(
        id=body.id, profile_id=profile.id, kind=body.kind, metric=body.metric,
        direction=body.direction, set_at=body.set_at, clear_at=body.clear_at,
        consecutive=body.consecutive, for_seconds=body.for_seconds, channel=body.channel,
        recipient=recipient, created_at=datetime.now(UTC),
    )  # fmt: skip
    session.add(rule)
    session.flush()
    return rule
