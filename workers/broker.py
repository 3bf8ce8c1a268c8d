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
from redis.exceptions import ConnectionError as RedisConnectionError

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
    """Kombu's Redis channel; an item that is not JSON is discarded when it is read, and an
    ack or reject on a channel that closed with its connection is a connection error."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        """Refuse, as a connection error, to build a pool once the connection is let go of.

        When the broker connection drops, the consumer closes it (the transport's `client`
        becomes None) while jobs still run; their ack, and the channel's restore of unacked
        messages at close, then ask for a new pool, and Kombu's AttributeError here stopped
        the worker. As a ConnectionError, Celery logs "Couldn't ack" and reconnects; the
        message stays in Redis's unacked set and comes back after the visibility timeout,
        where the ledger's guarded claim drops it (the outcome committed before the ack).
        """
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed; reconnecting")
        return dict(super()._connparams(asynchronous=asynchronous))  # type: ignore[no-untyped-call]

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
