"""`switchyard payments`: intents, unknown provider attempts, and verifying the books."""

from __future__ import annotations

from typing import Annotated

import typer

from config import get_settings
from ops.output import emit_json, fail, table
from store.db import transaction
from tasks.payments import audit, service

payments_app = typer.Typer(help="Inspect payments and verify the ledger.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@payments_app.command()
def intents(
    status: Annotated[str | None, typer.Option(help="Only intents in this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The newest payment intents."""
    with transaction(get_settings()) as session:
        rows = audit.list_intents(session, status=status, limit=limit)
    if as_json:
        emit_json(rows)
        return
    columns = ("id", "status", "amount", "currency", "captured", "refunded", "producer")
    table("payment intents", columns, [[r[c] for c in columns] for r in rows])


@payments_app.command()
def unknown(
    ask: Annotated[bool, typer.Option("--ask", help="Ask the provider about each now.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Provider attempts whose outcome is not known yet, oldest first."""
    settings = get_settings()
    with transaction(settings) as session:
        rows = audit.unknown_attempts(session)
        if ask:
            asked = service.ask_about_unknowns(session, settings=settings, now=True)
            typer.echo(f"asking the provider about {asked} operations", err=True)
    if as_json:
        emit_json(rows)
        return
    columns = ("operation", "intent", "kind", "attempt", "age_seconds")
    table("unknown attempts", columns, [[r[c] for c in columns] for r in rows])


@payments_app.command()
def verify(as_json: JsonOpt = False) -> None:
    """Check every intent's hash chain and debits = credits per currency (exit 1 if not)."""
    with transaction(get_settings()) as session:
        report = audit.verify(session)
    if as_json:
        emit_json({"chains": report.chains, "broken": report.broken,
                   "imbalance": report.imbalance, "sound": report.sound})  # fmt: skip
    elif report.sound:
        typer.echo(f"ok: {report.chains} intent chains intact, every currency balances")
    for intent_id in report.broken:
        fail(f"intent {intent_id}: its history does not hash to its chain head")
    for currency, (posted, pending) in report.imbalance.items():
        fail(f"{currency}: debits - credits = {posted} posted, {pending} pending")
    if not report.sound:
        raise typer.Exit(1)
