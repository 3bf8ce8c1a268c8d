"""The `switchyard` command: run the processes and operate the ledger."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from config import SettingsRefusedError, get_settings
from devstack.bootstrap import attach_to_running_stack
from devstack.children import die_with_parent
from logs import configure_logging, scrub
from ops.dev_mail import dev_mail_app
from ops.iot import iot_app
from ops.jobs import jobs_app
from ops.keys import keys_app
from ops.migrate import exit_unless_migrated
from ops.payments import payments_app
from store.db import set_role

app = typer.Typer(
    help="Switchyard: durable jobs over HTTP, a PostgreSQL ledger and Celery workers on Redis.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")
app.add_typer(payments_app, name="payments")
app.add_typer(dev_mail_app, name="dev-mail")
app.add_typer(iot_app, name="iot")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FLAT_ALIASES = {
    "SWITCHYARD_DATABASE_URL": "SWITCHYARD_DATABASE__URL",
    "SWITCHYARD_REDIS_URL": "SWITCHYARD_REDIS__URL",
}


@app.callback()
def _operator() -> None:
    # Runs before every command: an operator command's ledger connections are `switchyard-cli`
    # in pg_stat_activity; a process command renames its own in _setup.
    set_role("cli")


def _setup(process: str, *, metrics: bool = True, own_multiproc_dir: bool = False) -> None:
    settings = get_settings()
    set_role(process)
    configure_logging(settings.resolved_log_format, prefix=process)
    # Multiprocess metrics must be chosen before prometheus-client is first imported.
    directory = settings.metrics.multiproc_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if own_multiproc_dir and not directory:
        directory = tempfile.mkdtemp(prefix=f"switchyard-metrics-{process}-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    if metrics and directory:
        os.makedirs(directory, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    elif not metrics:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


@app.command()
def migrate(
    revision: Annotated[
        str, typer.Argument(help="Target revision (every branch's head by default).")
    ] = "heads",
) -> None:
    """Apply database migrations (the API and workers refuse to start without them)."""
    from ops.migrate import upgrade

    _setup("migrate")
    upgrade(revision=revision)
    typer.echo(f"database migrated to {revision}")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings).")] = None,
) -> None:
    """Run the HTTP intake (OpenAPI docs at /docs, Prometheus metrics at /metrics)."""
    _setup("api")
    import uvicorn

    from producers.api.app import create_app

    settings = get_settings()
    intake = create_app(settings)  # first: settings it refuses say so before any database check
    exit_unless_migrated()
    uvicorn.run(
        intake,
        host=host or settings.api.host,
        port=port if port is not None else settings.api.port,
        log_config=None,
        access_log=False,
    )


@app.command("payments-simulator")
def payments_simulator(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 12111,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where to send webhooks (none when unset).")
    ] = None,
    webhook_secret: Annotated[
        str | None, typer.Option(help="The secret that signs them (`whsec_…`).")
    ] = None,
) -> None:
    """Run the payment provider simulator (the subset of Stripe's API the adapter uses)."""
    from devstack.payment_simulator import serve

    serve(host=host, port=port, webhook_url=webhook_url, webhook_secret=webhook_secret)


@app.command()
def worker(
    queues: Annotated[
        str | None,
        typer.Option(help="Comma-separated queues to consume (default: every declared queue)."),
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Celery node name, e.g. `iot@%h`.")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve this host's metrics on this port (for hosts without an API)."),
    ] = None,
) -> None:
    """Run a Celery worker on the given queues (any host that reaches Redis and PostgreSQL)."""
    settings = get_settings()
    metrics_port = metrics_port if metrics_port is not None else settings.metrics.worker_port
    # The pool's children count in their own processes: serving them needs multiprocess mode.
    _setup("worker", own_multiproc_dir=metrics_port is not None)
    import workers.signals  # noqa: F401  (connects our logging)
    from workers.app import create_celery, run_worker

    exit_unless_migrated()
    if metrics_port is not None:
        from workers.telemetry import serve_worker_metrics

        serve_worker_metrics(metrics_port)
    from tasks.registry import domains

    argv = [
        "worker",
        "--queues",
        queues or ",".join(domains(settings).queues),
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency or settings.worker.concurrency),
    ]
    if hostname:
        argv += ["--hostname", hostname]
    # The worker's exit status, passed on: 0 for a shutdown on request, non-zero when it could
    # not go on (an unrecoverable error) — what restart policies act on.
    raise typer.Exit(run_worker(create_celery(settings), argv))


@app.command()
def beat() -> None:
    """Run Celery beat: relay sweep, reaper, retention (each slot fires once across beats)."""
    _setup("beat")
    import workers.signals  # noqa: F401
    from workers.app import create_celery

    exit_unless_migrated()
    create_celery().start(["beat", "--loglevel", "INFO"])


@app.command()
def relay() -> None:
    """Run the outbox relay: publish committed jobs to Redis as soon as they are due."""
    _setup("relay")
    from workers.app import create_celery
    from workers.relay import run_forever

    exit_unless_migrated()
    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_forever(create_celery(settings), settings, stop)


@app.command("mqtt-bridge")
def mqtt_bridge() -> None:
    """Run the MQTT bridge: devices' telemetry into durable batches, PUBACK after commit."""
    _setup("mqtt-bridge")
    from tasks.iot.mqtt_bridge import Bridge, BridgeRefusedError

    exit_unless_migrated()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        bridge = Bridge(get_settings(), stop=stop)
    except BridgeRefusedError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(bridge.run())


@app.command()
def dev() -> None:
    """Run everything on embedded defaults: PostgreSQL, Redis, API, relay, worker, beat, Flower.

    Data lives under `SWITCHYARD_DATA_DIR` (default `./.switchyard/`) and survives restarts.
    Set `SWITCHYARD_DATABASE_URL` / `SWITCHYARD_REDIS_URL` to use servers of your own instead.
    Email goes to a local SMTP sink (`switchyard dev-mail`). Ctrl-C or SIGHUP stops everything.
    """
    from devstack.command import run_dev

    _setup("dev", metrics=False)
    raise typer.Exit(run_dev(get_settings()))


@app.command()
def flower(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 5555).")] = None,
) -> None:
    """Run Flower: basic auth from settings (required outside dev), state kept in the data dir."""
    _setup("flower", metrics=False)
    from workers.flower import FlowerConfigError, run_flower

    try:
        code = run_flower(get_settings(), host=host, port=port)
    except FlowerConfigError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


@app.command()
def queues(as_json: JsonOpt = False) -> None:
    """Per queue: messages in Redis, due jobs in the ledger and the oldest one's age; relay lag."""
    from ops.queues import show_queues

    exit_unless_migrated()
    show_queues(get_settings(), as_json=as_json)


@app.command()
def healthcheck(
    component: Annotated[
        str, typer.Argument(help="api, relay, worker, beat, flower or mqtt-bridge.")
    ],
) -> None:
    """Exit 0 if this host's COMPONENT does its job (for container healthchecks)."""
    from ops.health import Component, check

    try:
        ok, why = check(Component(component), get_settings())
    except ValueError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    except Exception as exc:  # unreachable dependencies make the probe fail, not crash
        ok, why = False, f"{type(exc).__name__}: {exc}"
    typer.echo(f"{component}: {'healthy' if ok else 'unhealthy'} ({why})")
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    """Entry point of the `switchyard` script."""
    for flat, nested in FLAT_ALIASES.items():
        if os.environ.get(flat) and not os.environ.get(nested):
            os.environ[nested] = os.environ[flat]
    die_with_parent()  # a no-op unless `switchyard dev` started us
    if sys.argv[1:2] != ["dev"]:
        # `switchyard jobs …` in a second terminal talks to the running dev stack.
        attach_to_running_stack(os.environ)
    try:
        app()
    except (ValidationError, SettingsRefusedError) as exc:  # inputs hidden: no secret printed
        typer.secho(f"switchyard: refusing these settings: {exc}", fg="red", err=True)
        raise SystemExit(2) from None
    except OperationalError as exc:
        detail = scrub(str(exc.orig)).strip().splitlines()[0]
        typer.secho(
            f"switchyard: the ledger is unreachable ({detail}). Is `switchyard dev` running "
            "(same SWITCHYARD_DATA_DIR), or SWITCHYARD_DATABASE_URL set?",
            fg="red",
            err=True,
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
