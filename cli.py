"""The `switchyard` command: run the processes and operate the ledger."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from config import get_settings
from logs import configure_logging

app = typer.Typer(
    help="Switchyard: durable jobs over HTTP, a PostgreSQL ledger and Celery workers on Redis.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
keys_app = typer.Typer(help="Create, list and revoke producers' API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _setup(process: str) -> None:
    settings = get_settings()
    configure_logging(settings.resolved_log_format, prefix=process)


def _require_migrated() -> None:
    from store.db import NotMigratedError, require_migrated

    try:
        require_migrated()
    except NotMigratedError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (the API and workers refuse to start without them)."""
    from store.migrate import upgrade

    _setup("migrate")
    upgrade(revision=revision)
    typer.echo(f"database migrated to {revision}")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default: settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings).")] = None,
) -> None:
    """Run the HTTP intake (OpenAPI docs at /docs)."""
    import uvicorn

    from producers.api.app import create_app

    _setup("api")
    _require_migrated()
    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.api.host,
        port=port if port is not None else settings.api.port,
        log_config=None,
        access_log=False,
    )


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume.")
    ] = "iot,notifications,payments,maintenance",
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    hostname: Annotated[str | None, typer.Option(help="Celery node name.")] = None,
) -> None:
    """Run a Celery worker on the given queues."""
    import workers.signals  # noqa: F401  (connects our logging)
    from workers.app import create_celery

    _setup("worker")
    _require_migrated()
    settings = get_settings()
    argv = [
        "worker",
        "--queues",
        queues,
        "--loglevel",
        "INFO",
        "--concurrency",
        str(concurrency or settings.worker.concurrency),
    ]
    if hostname:
        argv += ["--hostname", hostname]
    create_celery(settings).worker_main(argv)


@app.command()
def beat() -> None:
    """Run Celery beat: relay sweep, reaper, retention (each slot fires once across beats)."""
    import workers.signals  # noqa: F401
    from workers.app import create_celery

    _setup("beat")
    _require_migrated()
    create_celery().start(["beat", "--loglevel", "INFO"])


@app.command()
def relay() -> None:
    """Run the outbox relay: publish committed jobs to Redis as soon as they are due."""
    from workers.app import create_celery
    from workers.relay import run_forever

    _setup("relay")
    _require_migrated()
    settings = get_settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_forever(create_celery(settings), settings, stop)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="The producer this key belongs to.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated scopes.")] = "jobs:write,jobs:read",
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from store.api_keys import create_key
    from store.db import transaction

    _require_migrated()
    try:
        with transaction() as session:
            row, token = create_key(
                session, name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()]
            )
    except ValueError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(token)
    typer.echo(
        f"key {row.id} for {name} ({', '.join(row.scopes)}); it is not shown again", err=True
    )


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, producers, scopes, revocation)."""
    from store.api_keys import list_keys
    from store.db import transaction

    _require_migrated()
    with transaction() as session:
        for row in list_keys(session):
            revoked = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            typer.echo(f"{row.id}  {row.name:<24} {','.join(row.scopes):<40} {revoked}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (second part).")]) -> None:
    """Revoke a key: its next request gets 401."""
    from store.api_keys import revoke_key
    from store.db import transaction

    _require_migrated()
    with transaction() as session:
        if not revoke_key(session, key_id):
            typer.secho(f"switchyard: no active key {key_id}", fg="red", err=True)
            raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def main() -> None:
    """Entry point of the `switchyard` script."""
    app()


if __name__ == "__main__":
    main()
