"""`switchyard iot`: the device fleet, the ingestion lag, and alerts."""

from __future__ import annotations

from typing import Annotated

import typer

from config import get_settings
from ops.output import emit_json, table
from ops.simulate import simulate
from store.db import transaction
from tasks.iot import audit

iot_app = typer.Typer(help="Inspect IoT devices and ingestion.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@iot_app.command()
def devices(as_json: JsonOpt = False) -> None:
    """Every device: profile, credential, newest reading, batches waiting."""
    with transaction(get_settings()) as session:
        rows = audit.fleet(session)
    if as_json:
        emit_json(rows)
        return
    columns = ("device", "profile", "credential", "last_reading", "waiting_batches")
    table("devices", columns, [[r[c] for c in columns] for r in rows])


@iot_app.command()
def lag(as_json: JsonOpt = False) -> None:
    """How far ingestion is behind: batches waiting, the oldest's age, the iot queue's lag."""
    with transaction(get_settings()) as session:
        report = audit.lag(session)
    if as_json:
        emit_json(report)
        return
    table("ingestion lag", ("measure", "value"), [[k, v] for k, v in report.items()])


iot_app.command()(simulate)


@iot_app.command()
def alerts(
    recent: Annotated[int, typer.Option(min=1, max=1_000, help="Transitions shown.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Alerts firing now, and the newest transitions (firing, resolved) with durations."""
    with transaction(get_settings()) as session:
        report = audit.alerts(session, recent=recent)
    if as_json:
        emit_json(report)
        return
    firing = ("rule", "kind", "device", "metric", "since")
    table("firing", firing, [[r[c] for c in firing] for r in report["firing"]])
    moves = ("at", "rule", "device", "transition", "ts", "value", "duration")
    table("recent transitions", moves, [[r[c] for c in moves] for r in report["recent"]])
