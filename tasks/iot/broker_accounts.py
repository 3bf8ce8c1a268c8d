"""The broker's accounts: a running Mosquitto's dynamic-security plugin, driven over MQTT.

The admin client publishes the plugin's commands to `$CONTROL/dynamic-security/v1` and
waits for their answers (matched by correlation data). A device is a client named by its id
with a role of its own (`device:<id>`) allowed to publish to its telemetry topic only; a
reader (the MQTT bridge) may subscribe to every device's telemetry. Adding is idempotent: an
existing device gets the new password and its connections are closed (a rotation takes effect
at once); removing is idempotent too, and disconnects the device now.
"""

from __future__ import annotations

import json
import secrets
import threading
import unicodedata
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from errors import InvalidFieldError, UnavailableError
from tasks.iot.mqtt_intake import ALL_TELEMETRY, telemetry_topic

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
READER_ROLE = "telemetry-reader"
_EXISTS = ("Client already exists", "Role already exists")
_GONE = ("Client not found", "Role not found")


class MqttAdminError(UnavailableError):
    """The broker refused the admin client, did not answer, or refused a command."""

    code = "mqtt_admin_failed"


def check_device_id(device_id: str) -> str:
    """A device id usable as an MQTT username and topic level (no `/`, `+`, `#`)."""
    if not 1 <= len(device_id) <= 128:
        raise InvalidFieldError("a device id is 1 to 128 characters", field="device_id")
    if any(c in "/+#" or unicodedata.category(c) in ("Cc", "Cs") for c in device_id):
        raise InvalidFieldError("no /, +, # or control characters", field="device_id")
    return device_id


class MqttAdmin:
    """A connected admin client (use as a context manager)."""

    def __init__(
        self, *, host: str, port: int, user: str, password: str, timeout: float = 10.0
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"switchyard-admin-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(user, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._ready = threading.Event()
        self._refused: str | None = None
        self._answers: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()

    # -- connection ----------------------------------------------------------------------
    def __enter__(self) -> MqttAdmin:
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise MqttAdminError(f"no MQTT broker at {self.host}:{self.port}: {exc}") from exc
        self._client.loop_start()
        if not self._ready.wait(self.timeout) or self._refused:
            self.__exit__(None, None, None)
            raise MqttAdminError(f"the broker refused the admin client: {self._refused}")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _: Any, __: Any, code: ReasonCode, ___: Any) -> None:
        if code.is_failure:
            self._refused = str(code)
            self._ready.set()
        else:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(
        self, _: mqtt.Client, __: Any, ___: int, codes: list[ReasonCode], ____: Any
    ) -> None:
        if any(code.is_failure for code in codes):
            self._refused = f"cannot subscribe to {RESPONSE_TOPIC}"
        self._ready.set()

    def _on_message(self, _: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        try:
            answers = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return  # not an answer of the plugin's
        with self._answered:
            for answer in answers:
                if isinstance(answer, dict) and "correlationData" in answer:
                    self._answers[str(answer["correlationData"])] = answer
            self._answered.notify_all()

    # -- commands ------------------------------------------------------------------------
    def run(
        self, *commands: dict[str, Any], tolerate: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Send `commands` in one message; their answers, or MqttAdminError on an error not
        in `tolerate`."""
        ids = [secrets.token_hex(8) for _ in commands]
        body = {
            "commands": [{**c, "correlationData": i} for c, i in zip(commands, ids, strict=True)]
        }
        self._client.publish(CONTROL_TOPIC, json.dumps(body), qos=1)
        with self._answered:
            if not self._answered.wait_for(
                lambda: all(i in self._answers for i in ids), self.timeout
            ):
                raise MqttAdminError("the dynamic-security plugin did not answer")
            answers = [self._answers.pop(i) for i in ids]
        for answer in answers:
            error = answer.get("error")
            if error and error not in tolerate:
                raise MqttAdminError(f"{answer.get('command')}: {error}")
        return answers

    def add_device(self, device_id: str, password: str) -> None:
        """Let `device_id` connect with `password` and publish to its telemetry topic."""
        role = f"device:{check_device_id(device_id)}"
        acl = {"acltype": "publishClientSend", "topic": telemetry_topic(device_id), "allow": True}
        _, created = self.run(  # one message: the plugin runs its commands in order
            {"command": "createRole", "rolename": role, "acls": [acl]},
            {"command": "createClient", "username": device_id, "password": password,
             "roles": [{"rolename": role}]},
            tolerate=_EXISTS,
        )  # fmt: skip
        if created.get("error"):  # an existing device (created with its role): rotate, and
            self.run(  # disabling drops its sessions, so the old password stops working now
                {"command": "setClientPassword", "username": device_id, "password": password},
                {"command": "disableClient", "username": device_id},
                {"command": "enableClient", "username": device_id},
            )

    def remove_device(self, device_id: str) -> None:
        """Forget `device_id`: its connection is closed and it can no longer connect."""
        self.run(
            {"command": "deleteClient", "username": check_device_id(device_id)},
            {"command": "deleteRole", "rolename": f"device:{device_id}"},
            tolerate=_GONE,
        )

    def add_reader(self, username: str, password: str) -> None:
        """Let `username` subscribe to (and receive) every device's telemetry."""
        acls = [
            {"acltype": kind, "topic": ALL_TELEMETRY, "allow": True}
            for kind in ("subscribePattern", "publishClientReceive")
        ]
        self.run({"command": "createRole", "rolename": READER_ROLE, "acls": acls}, tolerate=_EXISTS)
        created = self.run(
            {"command": "createClient", "username": username, "password": password,
             "roles": [{"rolename": READER_ROLE}]},
            tolerate=_EXISTS,
        )  # fmt: skip
        if created[0].get("error"):
            self.run({"command": "setClientPassword", "username": username, "password": password})
