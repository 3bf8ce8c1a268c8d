"""A Mosquitto of our own for `switchyard dev` and the tests: loopback only, a free port, its
persistence and its dynamic-security configuration under a data directory.

Nobody connects anonymously. Mosquitto's dynamic-security plugin holds the credentials: an
`admin` client that may only send the plugin its commands (its password generated once and
kept in `admin-password`, mode 0600), and one client per device, named by the device id, whose
role lets it publish to `devices/<device id>/telemetry` and nowhere else. The API and the
workers add, rotate and remove devices while the broker runs (`tasks.iot.broker_accounts`),
with the admin credential `provision_dev_broker` hands them; removing one disconnects it at
once. Queues are not capped (`max_queued_messages 0`): a slow subscriber makes the broker hold
messages, never drop them.

Run as `python -m devstack.mqtt_broker CONFIG`, it becomes Mosquitto on CONFIG after asking to
die with `switchyard dev` (a preexec hook is not safe once log threads run).
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from devstack.bootstrap import write_secret
from devstack.children import die_with_parent
from errors import SwitchyardError
from tasks.iot.broker_accounts import MqttAdmin
from tasks.iot.settings import IotSettings

ADMIN_USER = "admin"
PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/*/mosquitto_dynamic_security.so",
)


class NoMqttBrokerError(SwitchyardError):
    """No `mosquitto` on PATH, or no dynamic-security plugin beside it."""

    code = "no_mqtt_broker"


def mosquitto_binary() -> str:
    """`mosquitto` from PATH (or /usr/sbin, where Debian puts it)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if not found:
        raise NoMqttBrokerError("no mosquitto on PATH: apt-get install mosquitto")
    return found


def dynsec_plugin() -> str:
    """The dynamic-security plugin's shared object."""
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise NoMqttBrokerError("no mosquitto_dynamic_security.so: install mosquitto 2.0 or later")


def admin_password(data_dir: Path) -> str:
    """The admin client's password, generated on first use and kept in `admin-password`."""
    return stored_password(data_dir, "admin-password")


def stored_password(data_dir: Path, name: str) -> str:
    """A password generated on first use and kept in `data_dir/name` (mode 0600)."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    write_secret(path, password)
    return password


def _dynsec_config(password: str) -> dict[str, Any]:
    """The plugin's first configuration: the admin client and nothing else allowed."""
    salt = secrets.token_bytes(12)
    iterations = 101  # Mosquitto's own default; the password is 24 random bytes
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    control = "$CONTROL/dynamic-security/#"
    return {
        "clients": [{
            "username": ADMIN_USER, "textName": "Switchyard provisioning",
            "password": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode(),
            "iterations": iterations, "roles": [{"rolename": ADMIN_USER}],
        }],
        "roles": [{
            "rolename": ADMIN_USER,
            "acls": [{"acltype": kind, "topic": control, "allow": True}
                     for kind in ("publishClientSend", "publishClientReceive", "subscribePattern")],
        }],
        "defaultACLAccess": {
            "publishClientSend": False, "publishClientReceive": True,
            "subscribe": False, "unsubscribe": True,
        },
    }  # fmt: skip


def write_config(data_dir: Path, *, port: int) -> Path:
    """Write `mosquitto.conf` (and, the first time, the plugin's configuration) into
    `data_dir`; returns the configuration's path."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    dynsec = data_dir / "dynamic-security.json"
    if not dynsec.exists():
        write_secret(dynsec, json.dumps(_dynsec_config(admin_password(data_dir)), indent=2))
    conf = data_dir / "mosquitto.conf"
    conf.write_text(
        "\n".join([
            f"user {pwd.getpwuid(os.getuid()).pw_name}",  # as root it would become `mosquitto`
            f"listener {port} 127.0.0.1",
            "allow_anonymous false",
            "persistence true",
            f"persistence_location {data_dir}/",
            "max_queued_messages 0",
            f"plugin {dynsec_plugin()}",
            f"plugin_opt_config_file {dynsec}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
        ])
    )  # fmt: skip
    return conf


def mosquitto_argv(data_dir: Path, *, port: int) -> list[str]:
    """Command line for a foreground Mosquitto on `port` whose state lives in `data_dir`,
    dying with `switchyard dev` when started by it."""
    mosquitto_binary()  # refuse now, not in the child
    return [sys.executable, "-m", "devstack.mqtt_broker", str(write_config(data_dir, port=port))]


def local_admin(data_dir: Path, *, port: int) -> MqttAdmin:
    """An admin client of the broker on loopback `port` whose state lives in `data_dir`."""
    password = admin_password(data_dir)
    return MqttAdmin(host="127.0.0.1", port=port, user=ADMIN_USER, password=password)


def provision_dev_broker(data_dir: Path, *, url: str) -> dict[str, str]:
    """Give the MQTT bridge its reader credential on the dev broker at `url` (its password kept
    in `bridge-password`); returns the settings that point the stack there: the bridge's, and
    the admin credential with which the API and the workers provision devices."""
    password = stored_password(data_dir, "bridge-password")
    with local_admin(data_dir, port=int(url.rpartition(":")[2])) as admin:
        admin.add_reader(IotSettings().mqtt_username, password)
    return {
        "SWITCHYARD_IOT__MQTT_URL": url,
        "SWITCHYARD_IOT__MQTT_PASSWORD": password,
        "SWITCHYARD_IOT__MQTT_ADMIN_USERNAME": ADMIN_USER,
        "SWITCHYARD_IOT__MQTT_ADMIN_PASSWORD": admin_password(data_dir),
    }


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """True once something accepts TCP connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> None:
    """Become Mosquitto on the configuration `argv[0]`."""
    die_with_parent()
    binary = mosquitto_binary()
    os.execv(binary, [binary, "-c", argv[0]])


if __name__ == "__main__":
    main(sys.argv[1:])
