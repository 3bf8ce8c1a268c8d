"""`switchyard dev-mail`: read the emails `switchyard dev`'s SMTP sink caught."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from config import get_settings
from devstack.mail_sink import MailNotFoundError, one, stored
from ops.output import emit_json, fail, table

dev_mail_app = typer.Typer(
    help="Emails sent by `switchyard dev` (caught by its SMTP sink, kept in DATA_DIR/mail/).",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MAIL_DIR = "mail"


def mail_dir() -> Path:
    """Where the sink of the stack on this data dir stores its messages."""
    return Path(get_settings().data_dir).resolve() / MAIL_DIR


@dev_mail_app.command("list")
def list_mail(as_json: JsonOpt = False) -> None:
    """Every caught email, oldest first: number, arrival, From, To, Subject."""
    rows = [mail.summary() for mail in stored(mail_dir())]
    if as_json:
        emit_json(rows)
        return
    columns = ("id", "received", "from", "to", "subject")
    table(f"dev mail ({mail_dir()})", columns, [[r[c] for c in columns] for r in rows])


@dev_mail_app.command()
def show(
    mail_id: Annotated[int, typer.Argument(metavar="ID", help="The number `list` shows.")],
    raw: Annotated[bool, typer.Option("--raw", help="The message exactly as received.")] = False,
) -> None:
    """One caught email: its headers and text part (or the raw message with `--raw`)."""
    try:
        mail = one(mail_dir(), mail_id)
    except MailNotFoundError as exc:
        fail(str(exc))
        raise typer.Exit(1) from exc
    if raw:
        typer.echo(mail.path.read_text(errors="replace"))
        return
    message = mail.parsed()
    for header in ("Date", "From", "To", "Subject", "Message-ID"):
        typer.echo(f"{header}: {message.get(header, '')}")
    part = message.get_body(preferencelist=("plain", "html"))
    typer.echo("")
    typer.echo(part.get_content() if part is not None else "(no text part)")
