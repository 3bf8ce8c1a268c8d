"""The broker side of a worker, hardened against poison: a message that is not JSON, not an
envelope Kombu can deliver, or whose body cannot be decoded, is logged, counted and discarded
instead of stopping the worker (Celery's consumer acks what it cannot decode; Kombu raised)."""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from typing import Any, Literal

from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.message import Message
from kombu.transport import redis
from pydantic import BaseModel, ConfigDict, ValidationError

from store.states import PoisonReason
from workers.poison import discard


class _Properties(BaseModel):
    model_config = ConfigDict(extra="allow")

    delivery_tag: str
    body_encoding: Literal["base64", "utf-8"] | None = None
    delivery_info: dict[str, Any] | None = None


class _Envelope(BaseModel):
    """What Kombu's virtual Message reads from a message in a Redis list."""

    model_config = ConfigDict(extra="allow")

    properties: _Properties
    body: str | None = None
    headers: dict[str, Any] | None = None


def deliverable(message: Any) -> bool:
    """True if Kombu can turn `message` (a decoded Redis list item) into a Message."""
    try:
        envelope = _Envelope.model_validate(message)
        if envelope.body and envelope.properties.body_encoding == "base64":
            b64decode(envelope.body, validate=True)
    except (ValidationError, binascii.Error, ValueError):
        return False
    return True


class Channel(redis.Channel):
    """Kombu's Redis channel; an item that is not JSON is discarded when it is read."""

    def _brpop_read(self, **options: Any) -> bool:
        try:
            return bool(super()._brpop_read(**options))  # type: ignore[no-untyped-call]
        except json.JSONDecodeError as exc:
            # Kombu decodes the item it popped before delivering it, and nothing else it does
            # there decodes JSON: the item is gone from Redis, so discarding it is just this.
            discard(PoisonReason.NOT_JSON, error=str(exc))
            return True


class Transport(redis.Transport):
    """Kombu's Redis transport with the poison-proof channel."""

    Channel = Channel

    def _deliver(self, message: Any, queue: str) -> None:
        if not deliverable(message):
            discard(PoisonReason.MALFORMED_ENVELOPE, queue=queue, message=repr(message)[:200])
            return
        super()._deliver(message, queue)  # type: ignore[no-untyped-call]


class Consumer(CeleryConsumer):
    """Celery's consumer; a body it cannot decode (it logs and acks it) is also counted."""

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        """Count the message, then let Celery log and ack it."""
        discard(PoisonReason.UNDECODABLE_BODY, error=f"{type(exc).__name__}: {exc}")
        super().on_decode_error(message, exc)
