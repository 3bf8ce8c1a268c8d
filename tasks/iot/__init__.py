"""IoT telemetry: devices, readings stored exactly once, day-partitioned, rolled up, alerted on."""

from __future__ import annotations

from config import Settings
from tasks.iot import models
from tasks.iot.schemas import INGEST, MQTT_REVOKE, OFFLINE, PARTITIONS, QUEUE, RETENTION, ROLLUP
from tasks.iot.settings import IotSettings
from tasks.registry import Domain, Every


def _partition_interval(settings: Settings) -> float:
    return settings.section(IotSettings).partition_interval


def _rollup_interval(settings: Settings) -> float:
    return settings.section(IotSettings).rollup_interval


def _offline_interval(settings: Settings) -> float:
    return settings.section(IotSettings).offline_interval


def _retention_interval(settings: Settings) -> float:
    return settings.section(IotSettings).retention_interval


DOMAIN = Domain(
    name="iot",
    job_types=(INGEST, PARTITIONS, ROLLUP, OFFLINE, RETENTION, MQTT_REVOKE),
    queues=(QUEUE,),
    scopes=("iot:admin", "iot:read"),
    handlers="tasks.iot.jobs",
    routes=("tasks.iot.routes", "tasks.iot.query_routes", "tasks.iot.shadow_routes"),
    schedule={
        "iot-partitions": Every(job_type=PARTITIONS.name, seconds=_partition_interval),
        "iot-rollups": Every(job_type=ROLLUP.name, seconds=_rollup_interval),
        "iot-offline": Every(job_type=OFFLINE.name, seconds=_offline_interval),
        "iot-retention": Every(job_type=RETENTION.name, seconds=_retention_interval),
    },
    settings=IotSettings,
    metadata=models.metadata,
    metrics="tasks.iot.metrics",
    tables=(
        "iot_shadows",
        "iot_ingest_counts",
        "iot_alert_events",
        "iot_alert_states",
        "iot_alert_rules",
        "iot_rollup_dirty",
        "iot_rollups",
        "iot_conflicts",
        "iot_latest",
        "iot_readings",
        "iot_batches",
        "iot_devices",
        "iot_profiles",
    ),
)
