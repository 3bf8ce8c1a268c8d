"""The shared servers this run talks to (overridable for a machine of another shape)."""

from __future__ import annotations

import os
import uuid

ADMIN_URL = os.environ.get(
    "SWITCHYARD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MQTT_URL = os.environ.get("SWITCHYARD_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
# This run's own database, Redis key prefix and MQTT topic prefix carry it.
RUN_ID = uuid.uuid4().hex[:10]
