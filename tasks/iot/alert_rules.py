"""Declaring alert rules: a numeric metric of a profile, thresholds, and who is told."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from config import Settings
from errors import ConflictError, InvalidFieldError
from tasks.iot.api_schemas import Bound, MetricName, Slug
from tasks.iot.devices import get_profile
from tasks.iot.models import AlertRule
from tasks.notifications.service import normalise_recipient
from tasks.notifications.settings import NotificationSettings
from tasks.web.fields import Text


class AlertRuleCreate(BaseModel):
    """`POST /v1/alert-rules`: fire past `set_at`, resolve back past `clear_at`."""

    model_config = ConfigDict(extra="forbid")
    id: Slug
    profile: Slug
    metric: MetricName
    direction: Literal["above", "below"] = "above"
    set_at: Bound
    clear_at: Bound
    consecutive: Annotated[int, Field(ge=1, le=10_000)] = 1
    channel: Literal["email", "sms"]
    to: Annotated[Text, Field(min_length=1, max_length=2_048)]

    @model_validator(mode="after")
    def _hysteresis(self) -> AlertRuleCreate:
        above = self.direction == "above"
        if (above and self.clear_at > self.set_at) or (not above and self.clear_at < self.set_at):
            raise ValueError("clear_at must lie on the safe side of set_at")
        return self


class AlertRuleView(AlertRuleCreate):
    """A rule as stored (`to` in its canonical form)."""

    created_at: datetime

    @classmethod
    def of(cls, r: AlertRule) -> AlertRuleView:
        """The view of a row."""
        return cls(
            id=r.id, profile=r.profile_id, metric=r.metric, direction=r.direction,
            set_at=r.set_at, clear_at=r.clear_at, consecutive=r.consecutive,
            channel=r.channel, to=r.recipient, created_at=r.created_at,
        )  # fmt: skip


def create(session: Session, body: AlertRuleCreate, *, settings: Settings) -> AlertRule:
    """Store a rule on a numeric metric of an existing profile, its recipient checked now."""
    profile = get_profile(session, body.profile)
    spec = profile.metrics.get(body.metric)
    if spec is None or spec["type"] != "number":
        raise InvalidFieldError("not a numeric metric of the profile", field="metric")
    if session.get(AlertRule, body.id) is not None:
        raise ConflictError(f"alert rule {body.id!r} exists already")
    recipient = normalise_recipient(
        body.channel, body.to, settings=settings.section(NotificationSettings)
    )
    rule = AlertRule(
        id=body.id, profile_id=profile.id, metric=body.metric, direction=body.direction,
        set_at=body.set_at, clear_at=body.clear_at, consecutive=body.consecutive,
        channel=body.channel, recipient=recipient, created_at=datetime.now(UTC),
    )  # fmt: skip
    session.add(rule)
    session.flush()
    return rule
