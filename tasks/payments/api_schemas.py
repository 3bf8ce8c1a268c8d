"""The `/v1/payment-intents` request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from tasks.payments.models import Dispute, Intent, Operation
from tasks.web.fields import Text

DisputeStatus = Literal["open", "won", "lost"]  # pay_disputes' CHECK
Token = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_\-]+$")


class IntentCreate(BaseModel):
    """A new payment intent; `amount` is in the currency's minor units."""

    model_config = ConfigDict(extra="forbid", strict=True)
    amount: int = Field(gt=0, le=2**53)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    capture_method: Literal["automatic", "manual"] = "automatic"
    payment_method: str | None = Token
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)
    receipt_email: Text | None = Field(
        default=None, min_length=3, max_length=320, description="Where receipts are emailed."
    )


class Confirm(BaseModel):
    """Confirm an intent, optionally attaching its payment method (a provider token)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    payment_method: str | None = Token


class Capture(BaseModel):
    """Capture all or part of an authorization; `final` releases whatever is left."""

    model_config = ConfigDict(extra="forbid", strict=True)
    amount: int | None = Field(default=None, gt=0, le=2**53)
    final: bool = False


class Refund(BaseModel):
    """Refund all or part of what was captured."""

    model_config = ConfigDict(extra="forbid", strict=True)
    amount: int | None = Field(default=None, gt=0, le=2**53)


class OperationView(BaseModel):
    """A provider operation and its outcome."""

    id: str
    kind: str
    amount: int
    status: str
    attempt: int
    fee: int
    net: int

    @classmethod
    def of(cls, op: Operation) -> OperationView:
        """The view of an operation row."""
        return cls(
            id=op.id,
            kind=op.kind,
            amount=op.amount,
            status=op.status,
            attempt=op.attempt,
            fee=op.fee,
            net=op.net,
        )


class IntentView(BaseModel):
    """A payment intent as the API shows it."""

    id: str
    object: Literal["payment_intent"] = "payment_intent"
    amount: int
    currency: str
    status: str
    capture_method: str
    payment_method: str | None
    amount_capturable: int
    amount_received: int
    amount_refunded: int
    amount_disputed: int
    fee: int
    cancellation_reason: str | None
    receipt_email: str | None
    metadata: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, i: Intent) -> IntentView:
        """The view of an intent row."""
        return cls(
            id=i.id,
            amount=i.amount,
            currency=i.currency,
            status=i.status,
            capture_method=i.capture_method,
            payment_method=i.payment_method,
            amount_capturable=i.amount_capturable,
            amount_received=i.amount_captured,
            amount_refunded=i.amount_refunded,
            amount_disputed=i.amount_disputed + i.amount_lost,
            fee=i.fee - i.fee_returned,
            cancellation_reason=i.cancellation_reason,
            receipt_email=i.receipt_email,
            metadata=i.metadata_,
            created_at=i.created_at,
        )


class HistoryEntry(BaseModel):
    """One entry of an intent's history."""

    seq: int
    event: str
    from_status: str | None
    to_status: str
    data: dict[str, Any]
    hash: str
    at: datetime


class DisputeView(BaseModel):
    """A provider's dispute of the intent's charge, as its webhooks reported it."""

    id: str = Field(description="The provider's dispute id.")
    status: DisputeStatus
    amount: int = Field(description="Withdrawn from the intent while open; back if won.")
    fee: int = Field(description="The provider's dispute fee, charged to the merchant.")
    opened_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, d: Dispute) -> DisputeView:
        """The view of a dispute row."""
        return cls(
            id=d.id,
            status=cast(DisputeStatus, d.status),
            amount=d.amount,
            fee=d.fee,
            opened_at=d.created_at,
            closed_at=d.closed_at,
        )
