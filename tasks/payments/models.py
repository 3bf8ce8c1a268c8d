"""The payments domain's ORM tables: intents, their history, provider operations, webhook
events, disputes, reconciliation runs and the API's idempotency keys.

The ledger's tables (pay_accounts, pay_transfers, pay_hot_entries) are SQL of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, MetaData, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData()


class Base(DeclarativeBase):
    """The payments domain's declarative base."""

    metadata = metadata


class Intent(Base):
    """A payment intent; its amounts only grow, checked against each other by the database."""

    __tablename__ = "pay_intents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    producer: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    capture_method: Mapped[str] = mapped_column(String(16))
    payment_method: Mapped[str | None] = mapped_column(String(200))
    amount_capturable: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_captured: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_disputed: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_lost: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_returned: Mapped[int] = mapped_column(BigInteger, default=0)
    hold_id: Mapped[str | None] = mapped_column(String(200))  # the open hold, if any
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    cancellation_reason: Mapped[str | None] = mapped_column(String(32))
    receipt_email: Mapped[str | None] = mapped_column(String(320))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    chain_head: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IntentEvent(Base):
    """One entry of an intent's history, hash-chained to the one before."""

    __tablename__ = "pay_intent_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("pay_intents.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Operation(Base):
    """A call to the provider (authorize, capture, refund, cancel) and what came of it."""

    __tablename__ = "pay_operations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("pay_intents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    final: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed | unknown
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    asks: Mapped[int] = mapped_column(Integer, default=0)  # questions about an unknown outcome
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    net: Mapped[int] = mapped_column(BigInteger, default=0)
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookEvent(Base):
    """A provider's webhook event, recorded once by its id, and what applying it did."""

    __tablename__ = "pay_webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # received | applied | unchanged (already so) | stale (a later state holds) | ignored (not
    # acted on, not ours) | unexplained (no operation of ours explains it: a recon exception)
    status: Mapped[str] = mapped_column(String(16), default="received")
    intent_id: Mapped[str | None] = mapped_column(ForeignKey("pay_intents.id"), index=True)
    outcome: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Dispute(Base):
    """A provider's dispute of an intent's charge: open, then won or lost, once."""

    __tablename__ = "pay_disputes"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    intent_id: Mapped[str] = mapped_column(ForeignKey("pay_intents.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(8))  # open | won | lost
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReconRun(Base):
    """One reconciliation of the provider's settlement report."""

    __tablename__ = "pay_recon_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    lines: Mapped[int] = mapped_column(Integer)
    intents: Mapped[int] = mapped_column(Integer)
    exceptions: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ReconException(Base):
    """A difference between the provider and the intents, open until an operator resolves it:
    found by a reconciliation run, or raised by a provider event no operation of ours explains
    (exactly one of `run_id`, `webhook_event_id`)."""

    __tablename__ = "pay_recon_exceptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("pay_recon_runs.id"), index=True)
    webhook_event_id: Mapped[str | None] = mapped_column(ForeignKey("pay_webhook_events.id"))
    kind: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(200))
    intent_id: Mapped[str | None] = mapped_column(String(40))
    expected: Mapped[int | None] = mapped_column(BigInteger)
    actual: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(String(2000))


class IdempotencyKey(Base):
    """An `Idempotency-Key` of the payments API, per producer: what it was sent with, and the
    answer it got (stored in the request's own transaction, so a committed key has one)."""

    __tablename__ = "pay_idempotency_keys"

    producer: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
