"""The IoT domain's settings section: `SWITCHYARD_IOT__…`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from config import MAX_ATTEMPTS, Section, Settings, SettingsRefusedError


class IotSettings(Section):
    """Time policy defaults, batch limits, upkeep, offline detection, cache, export, formats."""

    section_name: ClassVar[str] = "iot"

    # Readings older than this (seconds before receipt) are refused as too late; a profile
    # may choose a shorter window.
    late_window: float = Field(default=30 * 86_400.0, gt=0)
    # Readings further than this in the future are refused or clamped (per profile).
    future_skew: float = Field(default=300.0, ge=0)
    # The largest batch body accepted (413 beyond).
    max_batch_bytes: int = Field(default=1_048_576, gt=0, le=64 * 1_048_576)
    # Daily partitions of raw readings kept, and made ahead of today, by beat.
    retention_days: int = Field(default=90, ge=1, le=36_500)
    partitions_ahead: int = Field(default=3, ge=1, le=60)
    partition_interval: float = Field(default=3_600.0, gt=0)
    # How often beat folds the buckets stored batches touched into the roll-ups.
    rollup_interval: float = Field(default=10.0, gt=0)
    # Backpressure: each device may send `rate_limit` batches per `rate_window` seconds (429
    # beyond); when the iot queue's oldest due job has waited `max_lag` seconds, ingestion
    # answers 503 until workers catch up. The queue's lag is read at most every `lag_check`.
    rate_limit: int = Field(default=120, ge=1)
    rate_window: int = Field(default=60, ge=1, le=86_400)
    max_lag: float = Field(default=60.0, gt=0)
    lag_check: float = Field(default=1.0, ge=0)
    # Cached latest values and aggregate answers live this long at most (seconds): the bound
    # on staleness should an invalidation be lost to a Redis outage at a commit.
    cache_ttl: int = Field(default=60, ge=1, le=86_400)
    # Exports read this many readings per query, so their memory is bounded by it.
    export_chunk: int = Field(default=5_000, ge=1, le=100_000)
    # Offline detection: beat looks every `offline_interval` seconds for devices that sent no
    # reading for `offline_after` (K) times their profile's expected interval.
    offline_after: float = Field(default=3.0, gt=0)
    offline_interval: float = Field(default=30.0, gt=0)
    # Retention of each roll-up tier and of finished batches (days), applied by beat every
    # `retention_interval` seconds in small deletes that never wait for a lock.
    rollup_1m_days: int = Field(default=31, ge=1, le=36_500)
    rollup_1h_days: int = Field(default=400, ge=1, le=36_500)
    rollup_1d_days: int = Field(default=3_650, ge=1, le=36_500)
    batch_days: int = Field(default=7, ge=1, le=36_500)
    retention_interval: float = Field(default=3_600.0, gt=0)
    # Ingestion formats beyond the built-in ones: media type -> "module:function", each a
    # `parse(body, *, device, received_at) -> Parsed`.
    extra_parsers: dict[str, str] = Field(default_factory=dict)
    # The MQTT bridge (`switchyard mqtt-bridge`): the broker, the bridge's own credential (a
    # reader of every device's telemetry topic), its stable client id (the broker keeps its
    # session, and the messages not yet acknowledged, for `mqtt_session_expiry` seconds while
    # it is away), how many unacknowledged messages the broker may send it at once (its
    # receive maximum: beyond, the broker holds them), and the format of a message that says
    # none (MQTT 5's content type property says it otherwise).
    mqtt_url: str | None = Field(default=None, pattern=r"^mqtt://[^/@]+:\d+$")
    mqtt_username: str = "switchyard-bridge"
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str = Field(default="switchyard-bridge", min_length=1, max_length=64)
    mqtt_session_expiry: int = Field(default=7 * 86_400, ge=60, le=0xFFFFFFFF)
    mqtt_receive_maximum: int = Field(default=200, ge=1, le=65_535)
    mqtt_content_type: str = "application/json"
    # Devices' accounts on that broker: with its dynamic-security admin's credential, the API
    # gives each device it creates or rotates an MQTT client (its id, its token as password)
    # before the commit, and a worker deletes a revoked device's client (`iot.mqtt_revoke`,
    # up to `mqtt_revoke_attempts` tries while the broker is away). Without a password the
    # broker's accounts are left to its operator. `mqtt_admin_timeout` bounds each wait.
    mqtt_admin_username: str = Field(default="admin", min_length=1)
    mqtt_admin_password: SecretStr | None = None
    mqtt_admin_timeout: float = Field(default=5.0, gt=0, le=60)
    mqtt_revoke_attempts: int = Field(default=50, ge=1, le=MAX_ATTEMPTS)

    def check(self, settings: Settings) -> None:
        """Refuse an admin credential without its broker, and retentions shorter than the late
        window: a late reading needs a partition, and refolding its hour (day) needs every
        minute (hour) of it."""
        if self.mqtt_admin_password is not None and self.mqtt_url is None:
            raise SettingsRefusedError(
                "iot.mqtt_admin_password needs iot.mqtt_url: the broker whose devices it provisions"
            )
        if self.retention_days * 86_400 < self.late_window:
            raise SettingsRefusedError(
                "iot.retention_days must cover iot.late_window: a late reading needs a partition"
            )
        for name, days, span in (("rollup_1m_days", self.rollup_1m_days, 3_600),
                                 ("rollup_1h_days", self.rollup_1h_days, 86_400)):  # fmt: skip
            if days * 86_400 < self.late_window + span:
                raise SettingsRefusedError(
                    f"iot.{name} must cover iot.late_window and one bucket of the tier above:"
                    " a late reading refolds it"
                )
