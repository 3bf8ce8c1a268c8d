"""`switchyard mqtt-bridge`: devices' MQTT telemetry into durable batches, PUBACK after commit.

paho's network thread only queues what arrives; the bridge's own thread takes what has queued
(in arrival order), records each message's batch and `iot.ingest` job in one transaction
(`mqtt_intake.record`), and only once that has committed acknowledges the messages, in the order
they arrived. Until then the broker keeps them: the session is persistent (MQTT 5, a stable
client id, no clean start, a session expiry), so a bridge that dies, or loses the broker, gets
every unacknowledged message again when it is back. The broker sends at most the receive
maximum of unacknowledged messages, so a slow or unreachable database, or an iot queue that is
behind, makes the broker hold the rest; no QoS 1 message is dropped and memory stays bounded.

A message redelivered after its batch committed (the bridge died before its PUBACK) makes a
second batch whose readings are stored once: the store counts them as duplicates (a reading
without its own time takes the receipt time, so its second copy is a new key). PUBACKs are
only sent on the connection the message came on; after a reconnect the broker resends it.

The subscription asks for no retained messages: a device's retained message would otherwise be
sent again at every (re)subscription and stored again. QoS 0 messages, which the receive
maximum does not bound, are dropped (counted, logged at each heartbeat) while the inbox holds a
receive maximum's worth of messages: at most once is what their sender chose.
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError

from config import Settings
from errors import SwitchyardError
from logs import get_logger
from store.db import transaction
from tasks.iot.backpressure import IngestBehindError, LagGauge
from tasks.iot.mqtt_intake import ALL_TELEMETRY, Message, record
from tasks.iot.parsing import extra_parsers
from tasks.iot.settings import IotSettings

log = get_logger("switchyard.iot.mqtt")
HEARTBEAT_EVERY = 5.0
MAX_BACKOFF = 5.0
# The broker refuses these for good: no retry will change its mind.
FATAL_CONNACK = {"Bad user name or password", "Not authorized", "Client identifier not valid",
                 "Banned", "Bad authentication method"}  # fmt: skip


class BridgeRefusedError(SwitchyardError):
    """The bridge cannot go on: no broker configured, or the broker refuses its credential."""

    code = "mqtt_bridge_refused"


def heartbeat_path(settings: Settings) -> Path:
    """Where the bridge says, every few seconds, whether it is connected (for healthchecks)."""
    client_id = settings.section(IotSettings).mqtt_client_id
    return Path(tempfile.gettempdir()) / f"switchyard-mqtt-bridge-{client_id}.json"


class Bridge:
    """One bridge: `run()` until `stop` is set; returns its exit status."""

    def __init__(self, settings: Settings, *, stop: threading.Event) -> None:
        own = settings.section(IotSettings)
        if own.mqtt_url is None or own.mqtt_password is None:
            raise BridgeRefusedError(
                "set SWITCHYARD_IOT__MQTT_URL and SWITCHYARD_IOT__MQTT_PASSWORD"
            )
        self.settings, self.own, self.stop = settings, own, stop
        self.host, _, port = own.mqtt_url.removeprefix("mqtt://").rpartition(":")
        self.port = int(port)
        self.inbox: queue.Queue[Message] = queue.Queue()
        self.extra = extra_parsers(settings)
        self.lag = LagGauge()
        self._lock = threading.Lock()  # the connection generation, acks sent on it, drops
        self._generation = 0
        self._connected = False
        self._qos0_dropped = 0  # since the last heartbeat
        self.refused: str | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=own.mqtt_client_id,
            protocol=mqtt.MQTTv5, manual_ack=True,
        )  # fmt: skip
        self.client.username_pw_set(own.mqtt_username, own.mqtt_password.get_secret_value())
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # -- paho's thread -------------------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _: Any, flags: Any, code: ReasonCode, __: Any
    ) -> None:
        if code.is_failure:
            log.error("mqtt_connect_refused", reason=str(code))
            if str(code) in FATAL_CONNACK:
                self.refused = str(code)
                self.stop.set()
            return
        with self._lock:
            self._generation += 1
            self._connected = True
        log.info("mqtt_connected", session_present=bool(flags.session_present))
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
        client.subscribe(ALL_TELEMETRY, options=options)

    def _on_subscribe(
        self, _: mqtt.Client, __: Any, ___: int, codes: list[ReasonCode], ____: Any
    ) -> None:
        if any(code.is_failure for code in codes):
            log.error("mqtt_subscribe_refused", reasons=[str(c) for c in codes])
            self.refused = f"cannot subscribe to {ALL_TELEMETRY}"
            self.stop.set()
        else:
            log.info("mqtt_subscribed", topic=ALL_TELEMETRY)

    def _on_disconnect(
        self, _: mqtt.Client, __: Any, ___: Any, code: ReasonCode, ____: Any
    ) -> None:
        with self._lock:
            self._connected = False
        log.warning("mqtt_disconnected", reason=str(code))

    def _on_message(self, _: mqtt.Client, __: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.qos == 0 and self.inbox.qsize() >= self.own.mqtt_receive_maximum:
            with self._lock:
                self._qos0_dropped += 1
            return
        content_type = getattr(msg.properties, "ContentType", None)
        self.inbox.put(Message(
            mid=msg.mid, qos=msg.qos, topic=msg.topic, payload=bytes(msg.payload),
            content_type=content_type, received_at=datetime.now(UTC),
            generation=self._generation,
        ))  # fmt: skip

    # -- the bridge's thread -------------------------------------------------------------
    def run(self) -> int:
        """Connect (retrying while the broker is away), bridge until stopped; 0, or non-zero
        when the broker refuses the bridge's credential."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.own.mqtt_session_expiry
        props.ReceiveMaximum = self.own.mqtt_receive_maximum
        self.client.connect_async(
            self.host, self.port, keepalive=30, clean_start=False, properties=props
        )
        self.client.loop_start()
        log.info("mqtt_bridge_started", broker=self.own.mqtt_url, client_id=self.own.mqtt_client_id)
        beat = 0.0
        try:
            while not self.stop.is_set():
                if time.monotonic() - beat >= HEARTBEAT_EVERY:
                    self._heartbeat()
                    beat = time.monotonic()
                group = self._take()
                if group and self._commit(group):
                    self._ack(group)
        finally:
            self.client.disconnect()  # the session stays: what is not acknowledged comes back
            self.client.loop_stop()
            heartbeat_path(self.settings).unlink(missing_ok=True)
        if self.refused:
            log.error("mqtt_bridge_refused", reason=self.refused)
            return 3
        return 0

    def _take(self) -> list[Message]:
        """What has arrived, oldest first (waiting a little for the first)."""
        try:
            group = [self.inbox.get(timeout=0.5)]
        except queue.Empty:
            return []
        while len(group) < self.own.mqtt_receive_maximum:
            try:
                group.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return group

    def _commit(self, group: list[Message]) -> bool:
        """Record `group`, retrying through database outages and ingest lag; False if stopped
        first (nothing acknowledged: the broker sends it again)."""
        delay = 0.1
        while not self.stop.is_set():
            try:
                self.lag.check(self.settings)
                self._record(group)
                return True
            except IngestBehindError as exc:
                log.warning("mqtt_bridge_waits", reason=str(exc))
                delay = max(self.own.lag_check, 1.0)
            except ProgrammingError:
                raise  # the schema is not what this code needs: nothing to retry
            except DBAPIError as exc:
                log.warning("mqtt_bridge_database_unavailable", error=type(exc.orig).__name__)
                delay = min(delay * 2, MAX_BACKOFF)
            self.stop.wait(delay)
        return False

    def _record(self, group: list[Message]) -> None:
        """One transaction for the group; a message the database refuses (bad bytes, a device
        deleted meanwhile) is isolated and dropped with a log line, its neighbours recorded."""
        try:
            with transaction(self.settings) as session:
                record(session, group, extra=self.extra, settings=self.settings)
        except (IntegrityError, DataError):
            if len(group) == 1:
                log.error("mqtt_message_refused_by_database", topic=group[0].topic)
                return
            for message in group:
                self._record([message])

    def _ack(self, group: list[Message]) -> None:
        """PUBACK the committed messages that arrived on this connection, in arrival order."""
        with self._lock:
            for message in group:
                if message.qos == 1 and message.generation == self._generation:
                    self.client.ack(message.mid, 1)

    def _heartbeat(self) -> None:
        with self._lock:
            dropped, self._qos0_dropped = self._qos0_dropped, 0
        if dropped:
            log.warning("mqtt_qos0_dropped", messages=dropped, reason="the inbox is full")
        path = heartbeat_path(self.settings)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"at": time.time(), "connected": self._connected}))
        tmp.replace(path)
