"""Delivery channels: what each reports, and how a failed delivery says whether to retry."""

from __future__ import annotations

from dataclasses import dataclass

from errors import SwitchyardError


@dataclass(frozen=True)
class DeliveryReport:
    """What the far side answered to a delivery it accepted."""

    status_code: int | None = None
    reply: str | None = None


class DeliveryError(SwitchyardError):
    """A delivery the far side did not accept."""

    code = "delivery_failed"
    retryable = True
    outcome = "failed"

    def __init__(
        self, message: str, *, status_code: int | None = None, reply: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.reply = reply


class TransientDeliveryError(DeliveryError):
    """Worth another attempt: a timeout, a 4xx SMTP reply, a non-2xx webhook answer."""


class RejectedDeliveryError(DeliveryError):
    """No retry will help: a 5xx SMTP reply, a refused address, 410 Gone."""

    code = "delivery_rejected"
    retryable = False


class RefusedDestinationError(RejectedDeliveryError):
    """We refused to connect (the SSRF guard)."""

    code = "destination_refused"
    outcome = "refused"
