"""Payment intent statuses and the legal transitions between them, as data."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Stripe's PaymentIntent statuses, plus `failed` (the provider confirmed a refusal)."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    FAILED = "failed"


class Event(StrEnum):
    """What happens to an intent; each names the statuses it may leave and where it goes."""

    ATTACHED = "payment_method_attached"
    CONFIRMED = "confirmed"
    ACTION_REQUIRED = "action_required"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"  # in part: stays requires_capture
    CAPTURED_FINAL = "captured_final"
    DECLINED = "declined"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    DISPUTE_OPENED = "dispute_opened"
    DISPUTE_WON = "dispute_won"
    DISPUTE_LOST = "dispute_lost"


S = Status
TRANSITIONS: dict[Event, dict[Status, Status]] = {
    Event.ATTACHED: {
        S.REQUIRES_PAYMENT_METHOD: S.REQUIRES_CONFIRMATION,
        S.REQUIRES_CONFIRMATION: S.REQUIRES_CONFIRMATION,
    },
    Event.CONFIRMED: {S.REQUIRES_CONFIRMATION: S.PROCESSING},
    Event.ACTION_REQUIRED: {S.PROCESSING: S.REQUIRES_ACTION},
    Event.AUTHORIZED: {S.PROCESSING: S.REQUIRES_CAPTURE, S.REQUIRES_ACTION: S.REQUIRES_CAPTURE},
    Event.CAPTURED: {S.REQUIRES_CAPTURE: S.REQUIRES_CAPTURE},
    Event.CAPTURED_FINAL: {S.REQUIRES_CAPTURE: S.SUCCEEDED},
    Event.DECLINED: {S.PROCESSING: S.FAILED, S.REQUIRES_ACTION: S.FAILED},
    Event.CANCELED: {
        S.REQUIRES_PAYMENT_METHOD: S.CANCELED,
        S.REQUIRES_CONFIRMATION: S.CANCELED,
        S.REQUIRES_ACTION: S.CANCELED,
        S.REQUIRES_CAPTURE: S.CANCELED,
    },
    Event.EXPIRED: {S.REQUIRES_CAPTURE: S.CANCELED},
    Event.REFUNDED: {S.SUCCEEDED: S.SUCCEEDED},
    Event.DISPUTE_OPENED: {S.SUCCEEDED: S.SUCCEEDED},
    Event.DISPUTE_WON: {S.SUCCEEDED: S.SUCCEEDED},
    Event.DISPUTE_LOST: {S.SUCCEEDED: S.SUCCEEDED},
}
TERMINAL = frozenset({S.SUCCEEDED, S.CANCELED, S.FAILED})


def target(event: Event, current: Status) -> Status | None:
    """Where `event` takes an intent in `current`, or None when it is not legal there."""
    return TRANSITIONS[event].get(current)
