"""`switchyard payments`: intents, unknown provider attempts, and verifying the books."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from config import get_settings
from ops.output import emit_json, fail, table
from store.db import transaction
from tasks.payments import audit, reconciliation, service

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
    columns = ("operation", "intent", "kind", "attempt", "asks", "age_seconds")
    table("unknown attempts", columns, [[r[c] for c in columns] for r in rows])


@payments_app.command()
def verify(as_json: JsonOpt = False) -> None:
    """Check every intent's hash chain, every account's balances recomputed from its
    transfers, and debits = credits per currency (exit 1 if not)."""
    with transaction(get_settings()) as session:
        report = audit.verify(session)
    drift: list[dict[str, Any]] = [
        {"account": d.account, "currency": d.currency,
         "stored": asdict(d.stored), "recomputed": asdict(d.recomputed)}
        for d in report.drift
    ]  # fmt: skip
    if as_json:
        emit_json(
            {
                "chains": report.chains,
                "accounts": report.accounts,
                "broken": report.broken,
                "drift": drift,
                "imbalance": report.imbalance,
                "sound": report.sound,
            }
        )
    elif report.sound:
        typer.echo(
            f"ok: {report.chains} intent chains intact, {report.accounts} accounts match"
            " their transfers, every currency balances"
        )
    for intent_id in report.broken:
        fail(f"intent {intent_id}: its history does not hash to its chain head")
    for d in drift:
        differs = ", ".join(
            f"{name} {stored} stored, {d['recomputed'][name]} from transfers"
            for name, stored in d["stored"].items()
            if stored != d["recomputed"][name]
        )
        fail(f"account {d['account']}: {differs}")
    for currency, (posted, pending) in report.imbalance.items():
        fail(f"{currency}: debits - credits = {posted} posted, {pending} pending")
    if not report.sound:
        raise typer.Exit(1)


@payments_app.command()
def recon(
    run: Annotated[bool, typer.Option("--run", help="Reconcile the report now first.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Open reconciliation exceptions (with --run: reconcile the provider's report first)."""
    settings = get_settings()
    with transaction(settings) as session:
        if run:
            summary = reconciliation.run(session, settings=settings)
            typer.echo(f"reconciled: {summary}", err=True)
        rows = [
            {
                "id": e.id,
                "kind": e.kind,
                "provider_ref": e.provider_ref,
                "intent": e.intent_id,
                "expected": e.expected,
                "actual": e.actual,
                "detail": e.detail,
                "since": e.created_at.isoformat(),
            }
            for e in reconciliation.open_exceptions(session)
        ]
    if as_json:
        emit_json(rows)
        return
    columns = ("id", "kind", "provider_ref", "intent", "expected", "actual", "detail")
    table("open reconciliation exceptions", columns, [[r[c] for c in columns] for r in rows])


@payments_app.command("recon-resolve")
def recon_resolve(
    exception_id: Annotated[int, typer.Argument(help="The exception's id (see `recon`).")],
    resolution: Annotated[reconciliation.Resolution, typer.Option(help="What was decided.")],
    note: Annotated[str, typer.Option(help="Why: kept with the exception.")],
    by: Annotated[str, typer.Option(help="Who decided (default: $USER).", envvar="USER")] = "",
) -> None:
    """Resolve an open exception; who, what, why and when are kept and never change."""
    if not by:
        fail("--by is required: who decided (it defaults to $USER, which is not set here)")
        raise typer.Exit(2)
    if not note.strip():
        fail("--note must say why")
        raise typer.Exit(2)
    try:
        with transaction(get_settings()) as session:
            row = reconciliation.resolve(
                session, exception_id, resolution=resolution, by=by, note=note
            )
            done = f"exception {row.id} ({row.kind} {row.provider_ref}): {row.resolution}, {by}"
    except (
        reconciliation.ReconExceptionNotFoundError,
        reconciliation.ReconExceptionResolvedError,
    ) as exc:
        fail(str(exc))
        raise typer.Exit(1) from None
    typer.echo(done)
