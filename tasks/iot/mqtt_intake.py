"""MQTT messages into telemetry batches: a session in, batches and their jobs out, exactly as
the HTTP path makes them (`service.receive_many`); no paho here.

The device is the topic's (`devices/<id>/telemetry`), which the broker lets only that device's
credential publish to. A message the HTTP path would answer with a 4xx (empty, too large, of a
format nobody reads) is recorded as a refused batch naming why; one from a device the registry
does not know, or whose credential is revoked, cannot be recorded and is only counted in the
log. Either way the caller acknowledges it: a bad message is never retried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from errors import InvalidFieldError
from logs import get_logger
from tasks.iot import ingest_counts, service
from tasks.iot.formats import Parser
from tasks.iot.ingest_counts import Outcomes
from tasks.iot.models import Device
from tasks.iot.parsing import batch_type, parser_for
from tasks.iot.settings import IotSettings

log = get_logger("switchyard.iot.mqtt")


@dataclass(frozen=True)
class Message:
    """One QoS 1 PUBLISH as received: `mid` acknowledges it on connection `generation`."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    content_type: str | None
    received_at: datetime
    generation: int


def telemetry_topic(device_id: str) -> str:
    """The one topic a device may publish its readings to (the broker's ACL says so)."""
    return f"devices/{device_id}/telemetry"


ALL_TELEMETRY = telemetry_topic("+")


def device_of_topic(topic: str) -> str | None:
    """The device id of `devices/<id>/telemetry`, else None."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == "devices" and parts[2] == "telemetry" and parts[1]:
        return parts[1]
    return None


def _problem(message: Message, content_type: str, *, limit: int,
             extra: Mapping[str, Parser]) -> InvalidFieldError | None:  # fmt: skip
    """What the HTTP path would refuse the message's batch for, if anything."""
    if not message.payload:
        return InvalidFieldError("the batch is empty", field="body")
    if len(message.payload) > limit:
        return InvalidFieldError(f"the batch is larger than {limit} bytes", field="body")
    try:
        parser_for(batch_type(content_type), extra=extra)
    except InvalidFieldError as exc:
        return exc
    return None


def _printable(content_type: str) -> str:
    """A refused content type as it can be stored and shown (at most 100 printable ASCII)."""
    return "".join(c for c in content_type if c.isascii() and c.isprintable())[:100]


def _live_devices(session: Session, ids: set[str]) -> dict[str, str]:
    """Those of `ids` registered with a live credential, with their profiles."""
    found = session.execute(
        select(Device.id, Device.profile_id).where(
            Device.id.in_(ids), Device.secret_hash.is_not(None)
        )
    )
    return {row.id: row.profile_id for row in found}


def record(
    session: Session,
    messages: Sequence[Message],
    *,
    extra: Mapping[str, Parser],
    settings: Settings,
) -> int:
    """Record each message's batch and job in the caller's transaction, in order; returns how
    many were recorded (the others came from no live device)."""
    own = settings.section(IotSettings)
    devices = [device_of_topic(m.topic) for m in messages]
    live = _live_devices(session, {d for d in devices if d is not None})
    arrived, problems = [], []
    for message, device in zip(messages, devices, strict=True):
        if device is None or device not in live:
            log.warning("mqtt_message_dropped", topic=message.topic, reason="no live device")
            continue
        content_type = message.content_type or own.mqtt_content_type
        problem = _problem(message, content_type, limit=own.max_batch_bytes, extra=extra)
        arrived.append(service.Received(
            device_id=device,
            content_type=batch_type(content_type) if not problem else _printable(content_type),
            body=b"" if problem else message.payload,
            received_at=message.received_at,
        ))  # fmt: skip
        problems.append(problem)
    batches = service.receive_many(session, arrived, settings=settings) if arrived else []
    for batch, problem in zip(batches, problems, strict=True):
        if problem:  # counted as the worker counts a batch it refuses whole
            service.refuse_whole(batch, problem, now=batch.received_at)
            ingest_counts.add(session, profile=live[batch.device_id], batch_id=batch.id,
                              outcomes=Outcomes(refused=1))  # fmt: skip
            log.info("mqtt_batch_refused", device=batch.device_id, code=problem.code,
                     reason=str(problem))  # fmt: skip
    return len(batches)
