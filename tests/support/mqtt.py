"""A Mosquitto of a test's own (free port, per-device credentials) and paho clients that record
what the broker tells them; the MQTT bridge as a real process."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from config import Settings
from devstack.mqtt_broker import listening, local_admin, mosquitto_argv
from devstack.processes import Process, free_port, settings_env, switchyard, wait_until
from devstack.redis_server import free_loopback_port
from tasks.iot.broker_accounts import MqttAdmin

DEADLINE = 20.0
BRIDGE_USER, BRIDGE_PASSWORD = "switchyard-bridge", "bridge-password"


def wait_for(what: str, check: Callable[[], bool]) -> None:
    """Poll `check` until true, or fail after DEADLINE seconds."""
    wait_until(check, timeout=DEADLINE, interval=0.02, what=what)


class Broker:
    """A Mosquitto process of the test's own."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it listens, as the bridge's settings say it."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = mosquitto_argv(self.data_dir, port=self.port)
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for("mosquitto to listen", lambda: listening(self.port))

    def stop(self) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=DEADLINE)

    def admin(self) -> MqttAdmin:
        return local_admin(self.data_dir, port=self.port)


class Client:
    """A paho MQTT 5 client that records what the broker tells it."""

    def __init__(self, broker: Broker, username: str, password: str) -> None:
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{username}",
                                protocol=mqtt.MQTTv5)  # fmt: skip
        self.paho.username_pw_set(username, password)
        self.lock = threading.Lock()
        self.connack: ReasonCode | None = None
        self.disconnected = threading.Event()
        self.pubacks: dict[int, ReasonCode] = {}
        self.subscribed = threading.Event()
        self.received: list[tuple[str, bytes]] = []
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = lambda *_: self.disconnected.set()
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = lambda *_: self.subscribed.set()
        self.paho.on_message = self._on_message
        self.paho.connect("127.0.0.1", broker.port, keepalive=30)
        self.paho.loop_start()
        wait_for("CONNACK", lambda: self.connack is not None)

    def _on_connect(self, _: Any, __: Any, ___: Any, code: ReasonCode, ____: Any) -> None:
        self.connack = code

    def _on_publish(self, _: Any, __: Any, mid: int, code: ReasonCode, ___: Any) -> None:
        with self.lock:
            self.pubacks[mid] = code

    def _on_message(self, _: Any, __: Any, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.received.append((message.topic, bytes(message.payload)))

    @property
    def connected(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(
        self, topic: str, payload: bytes, content_type: str | None = None, *, retain: bool = False
    ) -> ReasonCode:
        """Publish at QoS 1 (with MQTT 5's content type, if given) and wait for the PUBACK."""
        props = None
        if content_type is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
        mid = self.paho.publish(topic, payload, qos=1, properties=props, retain=retain).mid
        wait_for("PUBACK", lambda: mid in self.pubacks)
        return self.pubacks[mid]

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def bridge_settings(broker: Broker) -> dict[str, Any]:
    """The iot settings that point a bridge at `broker` (as `running_broker` provisioned it)."""
    return {"mqtt_url": broker.url, "mqtt_username": BRIDGE_USER,
            "mqtt_password": BRIDGE_PASSWORD}  # fmt: skip


def running_broker(data_dir: Path) -> Iterator[Broker]:
    """A started broker that knows the bridge's credential, stopped after (for fixtures)."""
    broker = Broker(data_dir)
    broker.start()
    with broker.admin() as admin:
        admin.add_reader(BRIDGE_USER, BRIDGE_PASSWORD)
    yield broker
    broker.stop()


def start_bridge(settings: Settings, logs_dir: Path, *, name: str = "bridge") -> Process:
    """Run `switchyard mqtt-bridge` and wait until it has subscribed (a broker keeps only the
    messages of a session that has subscribed)."""
    proc = Process(
        switchyard("mqtt-bridge"),
        env=settings_env(settings),
        log_path=logs_dir / f"{name}-{free_port()}.log",
    )

    def connected() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(f"bridge exited:\n{proc.output()}")
        return "mqtt_subscribed" in proc.output()

    wait_until(connected, timeout=60, what=f"bridge {name} to connect")
    return proc
