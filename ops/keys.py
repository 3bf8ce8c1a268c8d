"""`switchyard keys`: create, list and revoke producers' API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ops.migrate import exit_unless_migrated
from ops.output import emit_json, table

keys_app = typer.Typer(help="Create, list and revoke producers' API keys.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="The producer this key belongs to.")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated scopes (see `switchyard keys scopes`).")
    ] = "jobs:write,jobs:read",
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from config import get_settings
    from store.api_keys import create_key
    from store.db import transaction
    from tasks.registry import domains

    exit_unless_migrated()
    try:
        with transaction() as session:
            row, token = create_key(
                session,
                name=name,
                scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                known=domains(get_settings()).scopes,
            )
    except ValueError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(token)
    typer.echo(
        f"key {row.id} for {name} ({', '.join(row.scopes)}); it is not shown again", err=True
    )


@keys_app.command("scopes")
def keys_scopes() -> None:
    """List every scope a key may carry (the core's and each domain's)."""
    from config import get_settings
    from tasks.registry import domains

    for scope in sorted(domains(get_settings()).scopes):
        typer.echo(scope)


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """List keys (ids, producers, scopes, revocation); secrets are never shown."""
    from store.api_keys import list_keys
    from store.db import transaction

    exit_unless_migrated()
    with transaction() as session:
        rows: list[dict[str, Any]] = [
            {"id": r.id, "name": r.name, "scopes": r.scopes, "created_at": r.created_at,
             "revoked_at": r.revoked_at}
            for r in list_keys(session)
        ]  # fmt: skip
    if as_json:
        emit_json(rows)
        return
    table(
        "API keys",
        ["id", "producer", "scopes", "created", "revoked"],
        (
            (r["id"], r["name"], ",".join(r["scopes"]), r["created_at"], r["revoked_at"])
            for r in rows
        ),
    )


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (second part).")]) -> None:
    """Revoke a key: its next request gets 401."""
    from store.api_keys import revoke_key
    from store.db import transaction

    exit_unless_migrated()
    with transaction() as session:
        if not revoke_key(session, key_id):
            typer.secho(f"switchyard: no active key {key_id}", fg="red", err=True)
            raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
