"""`switchyard iot simulate`: a device fleet sending readings, resends, late and future ones.

It provisions (or takes over) a profile, N devices and an alert rule through the API with an
admin key, then sends each device's batches over HTTP or, with `--mqtt`, publishes them with
QoS 1 to the devices' topics with their own credentials (the API gave them to the broker when
it created or rotated the devices). When it stops (after `--seconds`, or
on Ctrl-C, once the batches in flight are accepted) it prints what it sent, to check against
the store: the store holds `unique` new rows; it counts `duplicates` and `conflicts` as here,
and refuses the `future` readings.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.console import RenderableType
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from config import Settings, get_settings
from devstack.bootstrap import read_state
from ops.fleet import Fleet, FleetBatch, Mix
from ops.fleet_drive import Pace, drive
from ops.fleet_http import Delivery, FleetError, http_client, post_batch, provision
from ops.fleet_mqtt import DevicePublisher
from ops.output import emit_json, errors, fail, table


def _api_of(settings: Settings) -> str:
    state = read_state(Path(settings.data_dir))
    return str(state.get("api") or f"http://{settings.api.host}:{settings.api.port}")


def _key_of(settings: Settings) -> str | None:
    key = os.environ.get("SWITCHYARD_API_KEY")
    path = Path(settings.data_dir) / "dev-api-key"
    return key or (path.read_text().strip() if path.exists() else None)


def _broker_of(settings: Settings, url: str | None) -> tuple[str, int]:
    url = url or str(read_state(Path(settings.data_dir)).get("mqtt") or "")
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname or not parts.port:
        raise FleetError("no MQTT broker: give --mqtt-url mqtt://HOST:PORT (or run make dev)")
    return parts.hostname, parts.port


async def _run_http(api: str, tokens: dict[str, str], fleet: Fleet, pace: Pace,
                    delivery: Delivery, stop: asyncio.Event) -> float:  # fmt: skip
    async with http_client(api, connections=pace.concurrency) as client:

        async def send(batch: FleetBatch) -> None:
            await post_batch(client, tokens[batch.device], batch, delivery)

        return await drive(fleet, send, pace, stop=stop)


async def _run_mqtt(host: str, port: int, tokens: dict[str, str], fleet: Fleet, pace: Pace,
                    delivery: Delivery, stop: asyncio.Event) -> float:  # fmt: skip
    publishers = {d: DevicePublisher(d, t, host=host, port=port) for d, t in tokens.items()}
    try:
        for publisher in publishers.values():
            await asyncio.to_thread(publisher.connect)

        async def send(batch: FleetBatch) -> None:
            await publishers[batch.device].publish(batch, delivery)

        return await drive(fleet, send, pace, stop=stop)
    finally:
        for publisher in publishers.values():
            publisher.close()


Runner = Callable[[asyncio.Event], Coroutine[Any, Any, float]]
PLAIN_EVERY = 5.0  # seconds between tally lines when stderr is not a terminal (a log, a pipe)


class _Tally(Progress):
    """A progress bar with the tally of what was sent on a line of its own below it."""

    tally = ""

    def get_renderables(self) -> Iterable[RenderableType]:
        """The bar, then the tally."""
        yield self.make_tasks_table(self.tasks)
        yield Text(self.tally)


def _tally(delivery: Delivery) -> tuple[str, str]:
    c = delivery.counts
    return f"{c.batches} batches, {c.readings} readings", (
        f"{c.unique} new ({c.late} late) · {c.duplicates} resent · {c.conflicts} changed · "
        f"{c.future} future · waited out {delivery.throttled} x 429, {delivery.unavailable} x 503"
    )


async def _run(send_with: Runner, pace: Pace, delivery: Delivery, *, quiet: bool) -> float:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    columns = [SpinnerColumn(), TextColumn("sending"), BarColumn(bar_width=20),
               TimeElapsedColumn(), TextColumn("{task.description}")]  # fmt: skip
    with _Tally(*columns, console=errors, disable=quiet) as progress:
        task = progress.add_task("", total=pace.seconds)
        began = loop.time()

        async def ticking() -> None:
            logged = began
            while True:
                sent, progress.tally = _tally(delivery)
                now = loop.time()
                progress.update(task, completed=now - began, description=sent)
                # Without a terminal the bar shows only at the end: a line now and then instead.
                if not quiet and not errors.is_terminal and now - logged >= PLAIN_EVERY:
                    errors.print(
                        Text(f"{now - began:.0f}s: {sent} · {progress.tally}"), soft_wrap=True
                    )
                    logged = now
                await asyncio.sleep(0.25)

        ticker = asyncio.create_task(ticking())
        try:
            return await send_with(stop)
        finally:
            ticker.cancel()
            progress.update(task, description=_tally(delivery)[0])
            progress.tally = _tally(delivery)[1]


def _fraction(what: str) -> Any:
    return typer.Option(min=0.0, max=1.0, help=f"Fraction of {what}.")


Devices = Annotated[int, typer.Option(min=1, help="Devices in the fleet.")]
Rate = Annotated[float, typer.Option(min=0.1, help="Readings per second, all devices together.")]
BatchSize = Annotated[int, typer.Option(min=1, max=10_000, help="Readings per batch.")]
Seconds = Annotated[float | None, typer.Option(help="Stop after this long (Ctrl-C stops too).")]
Mqtt = Annotated[bool, typer.Option("--mqtt", help="Publish over MQTT (QoS 1) instead of HTTP.")]
Api = Annotated[str | None, typer.Option(help="API base URL (default: the dev stack's).")]
Key = Annotated[
    str | None,
    typer.Option(
        envvar="SWITCHYARD_API_KEY",
        show_default=False,
        help="A key with iot:admin (default: the dev key).",
    ),
]
MqttUrl = Annotated[str | None, typer.Option(help="mqtt://HOST:PORT (default: the dev broker).")]
AlertTo = Annotated[str, typer.Option(help="Email told when temp > 30 ('' for no alert rule).")]
Prefix = Annotated[str, typer.Option(help="Device ids are PREFIX-0001….")]
Seed = Annotated[int, typer.Option(help="Seed of the readings' generator.")]
Connections = Annotated[int, typer.Option(min=1, help="Batches in flight at once.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the tally as JSON.")]


def simulate(
    devices: Devices = 10,
    rate: Rate = 100,
    batch: BatchSize = 10,
    seconds: Seconds = None,
    mqtt: Mqtt = False,
    duplicates: Annotated[float, _fraction("readings resent")] = 0.1,
    late: Annotated[float, _fraction("readings 1-72 h late")] = 0.05,
    future: Annotated[float, _fraction("readings in the future")] = 0.005,
    conflicts: Annotated[float, _fraction("resends with another value")] = 0.03,
    api: Api = None,
    key: Key = None,
    mqtt_url: MqttUrl = None,
    alert_to: AlertTo = "ops@example.com",
    prefix: Prefix = "sim",
    seed: Seed = 1,
    connections: Connections = 8,
    as_json: AsJson = False,
) -> None:
    """Simulate a device fleet: readings, resends, late and future ones, with a live tally."""
    settings = get_settings()
    try:
        mix = Mix(duplicates=duplicates, late=late, future=future, conflicts=conflicts)
    except ValueError as exc:
        fail(str(exc))
        raise typer.Exit(2) from exc
    fleet = Fleet(devices, mix=mix, prefix=prefix, seed=seed)
    base, admin = api or _api_of(settings), key or _key_of(settings)
    if not admin:
        fail("no admin key: pass --key or set SWITCHYARD_API_KEY (a key with iot:admin)")
        raise typer.Exit(2)
    pace = Pace(size=batch, rate=rate, seconds=seconds, concurrency=connections)
    delivery = Delivery()
    try:
        tokens = provision(base, admin, fleet, alert_to=alert_to or None)
        if mqtt:
            host, port = _broker_of(settings, mqtt_url)

            def send_with(stop: asyncio.Event) -> Coroutine[Any, Any, float]:
                return _run_mqtt(host, port, tokens, fleet, pace, delivery, stop)
        else:

            def send_with(stop: asyncio.Event) -> Coroutine[Any, Any, float]:
                return _run_http(base, tokens, fleet, pace, delivery, stop)

        took = asyncio.run(_run(send_with, pace, delivery, quiet=as_json))
    except FleetError as exc:
        fail(str(exc))
        raise typer.Exit(1) from exc
    report = {**asdict(delivery.counts), "throttled": delivery.throttled,
              "unavailable": delivery.unavailable, "reconnects": delivery.reconnects,
              "seconds": round(took, 2), "transport": "mqtt" if mqtt else "http"}  # fmt: skip
    if as_json:
        emit_json({**report, "devices": fleet.ids, "batch_ids": delivery.batch_ids})
        return
    table("sent (the store should hold `unique` new rows)", ("measure", "value"),
          [[k, v] for k, v in report.items()])  # fmt: skip
