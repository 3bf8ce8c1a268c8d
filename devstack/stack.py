"""`switchyard dev`: PostgreSQL, Redis, Mosquitto, API, relay, worker, beat, the MQTT bridge and
Flower as one process tree."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from config import Settings
from devstack import bootstrap, dev_defaults
from devstack.children import PARENT_ENV, Child, LogMux, die_with_parent, spawn
from devstack.mail_sink import start_sink
from devstack.mqtt_broker import (
    NoMqttBrokerError,
    listening,
    mosquitto_argv,
    provision_dev_broker,
)
from devstack.postgres import EmbeddedPostgres
from devstack.readiness import answers, flower_sees_workers
from devstack.redis_server import free_loopback_port, redis_argv
from devstack.restarts import Restarts
from errors import SwitchyardError
from logs import get_logger

log = get_logger("switchyard.dev")
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
FLAT_ALIASES = ("SWITCHYARD_DATABASE_URL", "SWITCHYARD_REDIS_URL")


class StartupAbortedError(SwitchyardError):
    """Ctrl-C, or a child died, before the stack came up."""

    code = "startup_aborted"


def _given(settings: Settings, section: str) -> bool:
    """True when the operator set this section's URL (then we never start our own server)."""
    nested = getattr(settings, section)
    return section in settings.model_fields_set and "url" in nested.model_fields_set


def _with_urls(settings: Settings, *, database: str, redis_url: str) -> Settings:
    return settings.model_copy(
        update={
            "database": settings.database.model_copy(update={"url": database}),
            "redis": settings.redis.model_copy(update={"url": redis_url}),
        }
    )


class DevStack:
    """The supervisor: starts everything in order, prints the banner, stops it all in reverse."""

    def __init__(self, settings: Settings, *, out: Any = None) -> None:
        self.settings = settings
        self.data = Path(settings.data_dir).resolve()
        self.mux = LogMux(out or sys.stdout, colour=(out or sys.stdout).isatty())
        self.stop_requested = threading.Event()
        self.children: list[Child] = []
        self.postgres: EmbeddedPostgres | None = None
        self.mail_sink: Any = None  # aiosmtpd's Controller, once started

    # -- helpers ---------------------------------------------------------------------------
    def _wait(
        self, what: str, check: Callable[[], bool], *, timeout: float = READY_TIMEOUT
    ) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.stop_requested.is_set():
                raise StartupAbortedError("stopped before the stack came up")
            for child in self.children:
                if child.popen.poll() is not None:
                    raise StartupAbortedError(
                        f"{child.name} exited with {child.popen.returncode} while waiting for "
                        f"{what}:\n{''.join(child.tail)}"
                    )
            if time.monotonic() > deadline:
                raise StartupAbortedError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.1)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], **kw: Any) -> Child:
        child = spawn(name, argv, env=env, mux=self.mux, index=len(self.children), **kw)
        self.children.append(child)
        return child

    def _start_redis(self) -> str:
        port = free_loopback_port()
        # Redis is spawned before any log thread exists, so a preexec hook is safe here.
        self._spawn("redis", redis_argv(self.data / "redis", port=port), dict(os.environ),
                    preexec=_pdeathsig_for(os.getpid()))  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"

        def pong() -> bool:
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False
            finally:
                client.close()

        self._wait("Redis to answer", pong, timeout=20)
        return url

    def _start_mqtt(self) -> str | None:
        """A Mosquitto with per-device credentials, or None (logged) if there is none here."""
        port = free_loopback_port()
        try:
            argv = mosquitto_argv(self.data / "mqtt", port=port)
        except NoMqttBrokerError as exc:
            self.mux.line("dev", f"MQTT is off: {exc}")
            return None
        # It asks for PDEATHSIG itself (log threads run by now, so no preexec hook).
        self._spawn("mqtt", argv, {**os.environ, PARENT_ENV: str(os.getpid())})
        self._wait("Mosquitto to listen", lambda: listening(port), timeout=20)
        return f"mqtt://127.0.0.1:{port}"

    def _start_payment_simulator(self, env: dict[str, str], *, api_url: str) -> str | None:
        """Unless a payment gateway is configured, run the simulator and point Stripe's adapter
        at it, and its webhooks at the API, signed with a secret of this run (the children's
        environment gains the gateway settings)."""
        if "SWITCHYARD_PAYMENTS__GATEWAY" in env or "payments" in (
            self.settings.__pydantic_extra__ or {}
        ):
            return None
        port = free_loopback_port()
        secret = f"whsec_dev_{secrets.token_hex(16)}"
        self._spawn(
            "payment-simulator",
            [
                *(sys.executable, "-m", "devstack.payment_simulator", "--port", str(port)),
                *("--webhook-url", f"{api_url}/v1/payments/webhooks/stripe"),
                *("--webhook-secret", secret),
            ],
            env,
        )
        url = f"http://127.0.0.1:{port}"
        bootstrap.write_secret(self.data / "dev-webhook-secret", secret)  # for the README's tour
        env.update(
            SWITCHYARD_PAYMENTS__GATEWAY="stripe",
            SWITCHYARD_PAYMENTS__API_BASE=url,
            SWITCHYARD_PAYMENTS__WEBHOOK_SECRETS=json.dumps([secret]),
        )
        self._wait("the payment simulator", lambda: answers(f"{url}/healthz"))
        return url

    def _start_mail_sink(self, env: dict[str, str]) -> str | None:
        """Unless an SMTP server is configured, catch every email in `mail/` (read them with
        `switchyard dev-mail`) and point the children at the sink."""
        if not dev_defaults.wants_mail_sink(self.settings, env):
            return None
        port = free_loopback_port()
        self.mail_sink = start_sink(self.data / "mail", port=port)
        env.update(dev_defaults.smtp_env(port))
        return f"127.0.0.1:{port}"

    def _child_env(self, settings: Settings, *, metrics_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in FLAT_ALIASES}
        env.update(
            SWITCHYARD_DATABASE__URL=settings.database.url,
            SWITCHYARD_REDIS__URL=settings.redis.url,
            SWITCHYARD_DATA_DIR=str(self.data),
            SWITCHYARD_METRICS__MULTIPROC_DIR=str(metrics_dir),
            PYTHONUNBUFFERED="1",
        )
        env[PARENT_ENV] = str(os.getpid())
        return env

    # -- the run ---------------------------------------------------------------------------
    def start(self) -> bootstrap.StackInfo:
        """Bring everything up; returns what the banner shows."""
        from ops.migrate import upgrade

        s = self.settings
        embedded_db = not _given(s, "database")
        embedded_redis = not _given(s, "redis")
        if embedded_db:
            self.postgres = EmbeddedPostgres(self.data / "pgdata")
            database = self.postgres.start()
        else:
            database = s.database.url
        redis_url = self._start_redis() if embedded_redis else s.redis.url
        mqtt = self._start_mqtt()
        run = _with_urls(s, database=database, redis_url=redis_url)
        upgrade(run)
        token = bootstrap.dev_api_key(run, self.data)
        user, password = bootstrap.FLOWER_DEV_USER, bootstrap.flower_password(self.data)
        if run.flower.user and run.flower.password:
            user, password = run.flower.user, run.flower.password.get_secret_value()
        metrics_dir = self.data / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)  # counters start at zero with the stack
        metrics_dir.mkdir(parents=True)
        env = self._child_env(run, metrics_dir=metrics_dir)
        if mqtt:  # the bridge reads the broker; the API and workers provision devices on it
            env.update(provision_dev_broker(self.data / "mqtt", url=mqtt))
        cli = [sys.executable, "-m", "cli"]
        api_url = f"http://{run.api.host}:{run.api.port}"
        simulator = self._start_payment_simulator(env, api_url=api_url)
        smtp = self._start_mail_sink(env)
        if note := dev_defaults.allow_loopback_webhooks(self.settings, env):
            self.mux.line("dev", note)
        api = self._spawn("api", [*cli, "api"], env)
        self._spawn("relay", [*cli, "relay"], env)
        worker = self._spawn(
            "worker", [*cli, "worker", "--hostname", "dev@%h"], env, ready_marker="ready."
        )
        self._spawn("beat", [*cli, "beat"], env)
        if mqtt:  # devices' readings through the broker, PUBACK after commit
            self._spawn("mqtt-bridge", [*cli, "mqtt-bridge"], env)
        flower_env = {k: v for k, v in env.items() if "MULTIPROC" not in k}
        flower_env.update(SWITCHYARD_FLOWER__USER=user, SWITCHYARD_FLOWER__PASSWORD=password)
        self._spawn("flower", [*cli, "flower"], flower_env)
        flower_url = f"http://{run.flower.host}:{run.flower.port}{run.flower.url_prefix}"
        self._wait("the API", lambda: answers(f"{api_url}/healthz"))
        self._wait("Flower", lambda: answers(f"{flower_url}/healthcheck"))
        self._wait("the worker", worker.ready.is_set)
        # Asking Flower to refresh also fills its worker list, which it left empty at start.
        self._wait(
            "Flower to see the worker", lambda: flower_sees_workers(flower_url, user, password)
        )
        log.info("dev_stack_ready", api_pid=api.pid)
        bootstrap.write_state(
            self.data,
            {"pid": os.getpid(), "api": api_url, "flower": flower_url, "database": database,
             "redis": redis_url, "mqtt": mqtt, "payment_simulator": simulator,
             "smtp": smtp},
        )  # fmt: skip
        return bootstrap.StackInfo(
            api=api_url, flower=flower_url, flower_user=user, flower_password=password,
            database=database, redis=redis_url, embedded_database=embedded_db,
            embedded_redis=embedded_redis, token=token, data_dir=self.data, smtp=smtp,
            mqtt=mqtt,
        )  # fmt: skip

    def run_until_stopped(self) -> None:
        """Wait for Ctrl-C/SIGTERM/SIGHUP, restarting any child that exits meanwhile, after
        a backoff (devstack.restarts), and saying so in the log."""
        restarts = Restarts(self.mux)
        while not self.stop_requested.wait(0.2):
            for child in self.children:
                if child.popen.poll() is not None:
                    restarts.crashed(child)
            restarts.restart_due(self.children)

    def shutdown(self) -> None:
        """Stop the children newest first (Redis last of them), then PostgreSQL."""
        for child in reversed(self.children):
            child.stop(timeout=STOP_TIMEOUT)
        if self.mail_sink is not None:
            self.mail_sink.stop()
        if self.postgres is not None:
            self.postgres.stop()
        (self.data / "dev.json").unlink(missing_ok=True)


def _pdeathsig_for(parent: int) -> Callable[[], None]:
    def hook() -> None:
        os.environ[PARENT_ENV] = str(parent)
        die_with_parent()

    return hook
