"""The IoT domain's job types and their payloads."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from tasks.registry import JobSpec

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


class PartitionsPayload(BaseModel):
    """Beat's partition upkeep takes no arguments."""

    model_config = ConfigDict(extra="forbid")


PARTITIONS = JobSpec(
    "iot.partitions",
    PartitionsPayload,
    QUEUE,
    "Creates the readings' daily partitions ahead and drops those past retention.",
)


class RollupPayload(BaseModel):
    """Beat's roll-up fold takes no arguments."""

    model_config = ConfigDict(extra="forbid")


ROLLUP = JobSpec(
    "iot.rollup",
    RollupPayload,
    QUEUE,
    "Folds the minute buckets stored batches touched into the 1 min, 1 h and 1 d roll-ups.",
)


class OfflinePayload(BaseModel):
    """Beat's offline sweep takes no arguments."""

    model_config = ConfigDict(extra="forbid")


OFFLINE = JobSpec(
    "iot.offline",
    OfflinePayload,
    QUEUE,
    "Fires the offline alerts of devices silent for K times their profile's expected interval.",
)


class RetentionPayload(BaseModel):
    """Beat's roll-up and batch retention takes no arguments."""

    model_config = ConfigDict(extra="forbid")


RETENTION = JobSpec(
    "iot.retention",
    RetentionPayload,
    QUEUE,
    "Deletes roll-up buckets past their tier's retention, and finished batches past theirs.",
)
