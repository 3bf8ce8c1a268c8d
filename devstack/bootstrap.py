"""Chores of `switchyard dev`: the lock, the dev API key, Flower's password, the banner."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from config import Settings
from errors import SwitchyardError

DEV_KEY_NAME = "dev"
FLOWER_DEV_USER = "admin"


class AlreadyRunningError(SwitchyardError):
    """Another `switchyard dev` holds this data directory."""

    code = "dev_already_running"


def acquire_lock(data_dir: Path) -> IO[str]:
    """Hold `dev.lock` for the life of this process (the kernel frees it if we die)."""
    handle = (data_dir / "dev.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        state = read_state(data_dir)
        where = f" (pid {state.get('pid')}, API at {state.get('api')})" if state else ""
        raise AlreadyRunningError(
            f"switchyard dev is already running on {data_dir}{where}; "
            "stop it with Ctrl-C first, or set SWITCHYARD_DATA_DIR to run a second stack"
        ) from exc
    return handle


def read_state(data_dir: Path) -> dict[str, object]:
    """What the running stack wrote about itself, if anything."""
    try:
        return dict(json.loads((data_dir / "dev.json").read_text()))
    except (OSError, ValueError):
        return {}


def write_state(data_dir: Path, state: dict[str, object]) -> None:
    """Record the running stack's pid and URLs for a second `switchyard dev` to report."""
    (data_dir / "dev.json").write_text(json.dumps(state, indent=2))


def attach_to_running_stack(environ: dict[str, str] | os._Environ[str]) -> bool:
    """Point this process at a running `switchyard dev`'s servers (its database, Redis and
    payment simulator) unless it was given its own."""
    if environ.get("SWITCHYARD_ENV", "dev") != "dev":
        return False
    if any(
        environ.get(f"SWITCHYARD_{s}{x}")
        for s in ("DATABASE", "REDIS")
        for x in ("", "_URL", "__URL")
    ):
        return False
    state = read_state(Path(environ.get("SWITCHYARD_DATA_DIR", ".switchyard")))
    if not state.get("database") or not state.get("redis"):
        return False
    environ["SWITCHYARD_DATABASE__URL"] = str(state["database"])
    environ["SWITCHYARD_REDIS__URL"] = str(state["redis"])
    gateway_given = {"SWITCHYARD_PAYMENTS", "SWITCHYARD_PAYMENTS__GATEWAY"} & set(environ)
    if state.get("payment_simulator") and not gateway_given:
        # `payments recon --run` and `unknown --ask` call the provider the stack's workers call
        environ["SWITCHYARD_PAYMENTS__GATEWAY"] = "stripe"
        environ["SWITCHYARD_PAYMENTS__API_BASE"] = str(state["payment_simulator"])
    return True


def write_secret(path: Path, value: str) -> None:
    """Write `value` to `path`, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")


def dev_api_key(settings: Settings, data_dir: Path) -> str:
    """The dev key kept in `dev-api-key`; a new one if the file is missing or the key is gone."""
    from store.api_keys import authenticate, create_key
    from store.db import transaction
    from tasks.registry import domains

    # Every scope but `admin`: enough for every README example, and a key of its own producer.
    scopes = domains(settings).scopes - {"admin"}
    path = data_dir / "dev-api-key"
    token = path.read_text().strip() if path.exists() else ""
    with transaction(settings) as session:
        principal = authenticate(session, token) if token else None
        if principal is not None and scopes <= principal.scopes:
            return token
        _, token = create_key(session, name=DEV_KEY_NAME, scopes=sorted(scopes), known=scopes)
    write_secret(path, token)
    return token


def flower_password(data_dir: Path) -> str:
    """Flower's dev password, generated on first run and kept in `flower-password`."""
    path = data_dir / "flower-password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(12)
    write_secret(path, password)
    return password


@dataclass(frozen=True)
class StackInfo:
    """What the banner tells."""

    api: str
    flower: str
    flower_user: str
    flower_password: str
    database: str
    redis: str
    embedded_database: bool
    embedded_redis: bool
    token: str
    data_dir: Path
    smtp: str | None  # the mail sink's address, None when an SMTP server was configured
    mqtt: str | None = None  # None: no mosquitto on this machine


def banner(info: StackInfo) -> str:
    """The block printed once everything answers."""
    auth = f"-H 'Authorization: Bearer {info.token}'"
    body = '{"type": "system.echo", "payload": {"hello": "world"}}'
    pg = "embedded, data in pgdata/" if info.embedded_database else "given"
    rd = "embedded, AOF in redis/" if info.embedded_redis else "given"
    mail = (
        f"  Mail       switchyard dev-mail list   (SMTP sink at {info.smtp}, kept in mail/)\n"
        if info.smtp
        else ""
    )
    mqtt = (
        f"{info.mqtt}   (per-device credentials; admin password in mqtt/admin-password)"
        if info.mqtt
        else "not running: no mosquitto on PATH (apt-get install mosquitto)"
    )
    extract_id = "python3 -c 'import json, sys; print(json.load(sys.stdin)[\"id\"])'"
    submit = (
        f"JOB=$(curl -s -X POST {info.api}/v1/jobs {auth} "
        f"-H 'Content-Type: application/json' -d '{body}' | {extract_id})"
    )
    return f"""
================================ Switchyard is up ================================
  API docs   {info.api}/docs
  Flower     {info.flower}   (user {info.flower_user}, password {info.flower_password})
  Metrics    {info.api}/metrics   (bearer key below; scope metrics:read)
  PostgreSQL {info.database}   ({pg})
  Redis      {info.redis}   ({rd})
  MQTT       {mqtt}
{mail}  Data dir   {info.data_dir}

Dev API key (kept in {info.data_dir / "dev-api-key"}):
  export SWITCHYARD_API_KEY={info.token}

Submit a system.echo job and read it back (copy-paste both lines):
{submit}
sleep 1; curl -s {info.api}/v1/jobs/$JOB {auth}

Ctrl-C stops everything.
==================================================================================
"""
