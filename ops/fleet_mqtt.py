"""The fleet over MQTT: each device connects with its own credentials (its id and token) and
publishes its batches with QoS 1 to its own telemetry topic; a batch counts as sent once the
broker's PUBACK says it took it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ops.fleet import FleetBatch
from ops.fleet_http import Delivery, FleetError
from tasks.iot.mqtt_intake import telemetry_topic

CONNECT_TIMEOUT = 10.0


class DevicePublisher:
    """One device's MQTT 5 connection; `publish` resolves on the broker's PUBACK."""

    def __init__(self, device: str, token: str, *, host: str, port: int) -> None:
        self.device, self.topic = device, telemetry_topic(device)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{device}", protocol=mqtt.MQTTv5
        )
        self._client.username_pw_set(device, token)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._refused: str | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[ReasonCode]]] = {}
        self._props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        self._props.ContentType = "application/json"
        self._host, self._port = host, port

    def connect(self) -> None:
        """Connect and wait for the broker's answer (FleetError if it refuses the device)."""
        try:
            self._client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise FleetError(f"no MQTT broker at {self._host}:{self._port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT) or self._refused:
            self.close()
            raise FleetError(
                f"the broker refused {self.device}: {self._refused or 'no answer'} (does the API"
                " provision devices there? SWITCHYARD_IOT__MQTT_ADMIN_PASSWORD)"
            )

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, _: mqtt.Client, __: Any, ___: Any, code: ReasonCode, ____: Any) -> None:
        if code.is_failure:
            self._refused = str(code)
        self._connected.set()

    def _on_publish(self, _: mqtt.Client, __: Any, mid: int, code: ReasonCode, ___: Any) -> None:
        with self._lock:
            waiting = self._waiting.pop(mid, None)
        if waiting is not None:
            loop, future = waiting
            loop.call_soon_threadsafe(future.set_result, code)

    async def publish(self, batch: FleetBatch, delivery: Delivery) -> None:
        """Publish `batch` with QoS 1 and wait for its PUBACK; add it to `delivery`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ReasonCode] = loop.create_future()
        with self._lock:  # the PUBACK cannot be handled before its future is registered
            info = self._client.publish(self.topic, batch.body(), qos=1, properties=self._props)
            self._waiting[info.mid] = (loop, future)
        code = await future
        if code.is_failure:
            raise FleetError(f"the broker refused {self.device}'s batch: {code}")
        delivery.counts.add(batch.counts)
