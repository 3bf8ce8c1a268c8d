"""The IoT domain's job types and their payloads."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from tasks.registry import JobSpec, NoArguments

QUEUE = "iot"


class IngestPayload(BaseModel):
    """Store one received batch (its row holds the body)."""

    model_config = ConfigDict(extra="forbid")
    batch_id: uuid.UUID


INGEST = JobSpec(
    "iot.ingest",
    IngestPayload,
    QUEUE,
    "Parses, validates and stores one telemetry batch: duplicates and conflicts counted.",
)


PARTITIONS = JobSpec(
    "iot.partitions",
    NoArguments,
    QUEUE,
    "Creates the readings' daily partitions ahead and drops those past retention.",
)


ROLLUP = JobSpec(
    "iot.rollup",
    NoArguments,
    QUEUE,
    "Folds the minute buckets stored batches touched into the 1 min, 1 h and 1 d roll-ups.",
)


OFFLINE = JobSpec(
    "iot.offline",
    NoArguments,
    QUEUE,
    "Fires the offline alerts of devices silent for K times their profile's expected interval.",
)


RETENTION = JobSpec(
    "iot.retention",
    NoArguments,
    QUEUE,
    "Deletes roll-up buckets past their tier's retention, and finished batches past theirs.",
)


class DevicePayload(BaseModel):
    """One device, by id."""

    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=100)


MQTT_REVOKE = JobSpec(
    "iot.mqtt_revoke",
    DevicePayload,
    QUEUE,
    "Deletes a revoked device's MQTT client on the broker and closes its connection.",
)
