"""Streamed exports of a device's readings as CSV or NDJSON: read in keyset chunks of
`iot.export_chunk` readings, each in a short session of its own, and written out as they
come, so an export's memory is bounded by one chunk however long its range."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Literal

from config import Settings
from store.db import autocommit
from tasks.iot import queries
from tasks.iot.api_schemas import ReadingView

Format = Literal["csv", "ndjson"]
COLUMNS = ("device", "metric", "ts", "received_at", "value", "unit")


def readings(
    settings: Settings,
    device: str,
    *,
    metric: str | None,
    since: datetime,
    until: datetime,
    chunk: int,
) -> Iterator[list[ReadingView]]:
    """The device's readings in `[since, until)` in time order, `chunk` at a time."""
    cursor: str | None = None
    while True:
        with autocommit(settings) as session:
            page = queries.readings(
                session, device, metric=metric, since=since, until=until, limit=chunk,
                cursor=cursor,
            )  # fmt: skip
        if page.items:
            yield page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _csv(device: str, chunk: list[ReadingView]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for r in chunk:
        value = str(r.value).lower() if isinstance(r.value, bool) else r.value
        writer.writerow(
            [device, r.metric, r.ts.isoformat(), r.received_at.isoformat(), value, r.unit or ""]
        )
    return out.getvalue()


def _ndjson(device: str, chunk: list[ReadingView]) -> str:
    return "".join(
        json.dumps({"device": device, **r.model_dump(mode="json")}) + "\n" for r in chunk
    )


MEDIA_TYPES: dict[Format, str] = {"csv": "text/csv", "ndjson": "application/x-ndjson"}
_WRITERS: dict[Format, Callable[[str, list[ReadingView]], str]] = {"csv": _csv, "ndjson": _ndjson}


def lines(kind: Format, device: str, chunks: Iterator[list[ReadingView]]) -> Iterator[str]:
    """The export's text, a chunk at a time (CSV with a header line)."""
    if kind == "csv":
        yield ",".join(COLUMNS) + "\n"
    write = _WRITERS[kind]
    for chunk in chunks:
        yield write(device, chunk)
