"""A profile's rules as the validator reads them: metrics and the time policy, with defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tasks.iot.models import Profile
from tasks.iot.settings import IotSettings


@dataclass(frozen=True)
class MetricRule:
    """One declared metric: its value type, unit, valid range and expected interval."""

    type: str  # number | string | boolean
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    interval: float | None = None

    @classmethod
    def of(cls, spec: dict[str, Any]) -> MetricRule:
        """The rule stored in a profile's `metrics`."""
        return cls(
            type=spec["type"],
            unit=spec.get("unit"),
            min=spec.get("min"),
            max=spec.get("max"),
            interval=spec.get("interval"),
        )


@dataclass(frozen=True)
class Rules:
    """What a device's readings must satisfy."""

    metrics: dict[str, MetricRule]
    late_window: timedelta
    future_skew: timedelta
    clamp_future: bool

    @classmethod
    def of(cls, profile: Profile, settings: IotSettings) -> Rules:
        """The profile's rules, the settings' defaults where the profile names none."""
        return cls(
            metrics={name: MetricRule.of(spec) for name, spec in profile.metrics.items()},
            late_window=timedelta(seconds=profile.late_window or settings.late_window),
            future_skew=timedelta(
                seconds=settings.future_skew if profile.future_skew is None else profile.future_skew
            ),
            clamp_future=profile.future_policy == "clamp",
        )
