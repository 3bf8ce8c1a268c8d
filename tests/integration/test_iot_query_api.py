"""The IoT query routes through a real intake process: keyset-paged readings, aggregates with
gap-fill, streamed CSV and NDJSON exports, and 4xx naming the field for bad parameters."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from config import Settings
from tasks.iot import export
from tests.support.api import auth
from tests.support.iot import batch, ingest, provision, reading

NOW = datetime.now(UTC).replace(microsecond=0)
T = (NOW - timedelta(hours=2)).replace(minute=0, second=0)
SINCE = (T - timedelta(hours=1)).isoformat()


@pytest.fixture
def reader(api: str, make_key: Callable[..., str], settings: Settings) -> str:
    """A key with `iot:read`; device `q-1` holds five temps a minute apart and a door."""
    admin = make_key("iot-admin", ("iot:admin", "iot:read"))
    provision(api, admin, device="q-1")
    body = batch(
        *(reading("temp", T + timedelta(minutes=i), float(i)) for i in range(5)),
        reading("door", T, True),
    )
    assert ingest(settings, "q-1", body, now=NOW)["stored"] == 6
    return make_key("iot-reader", ("iot:read",))


def _get(api: str, key: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{api}/v1/devices/q-1/{path}", params=params, headers=auth(key), timeout=10)


def test_readings_are_keyset_paged_with_next_cursor(api: str, reader: str) -> None:
    seen: list[tuple[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"since": SINCE, "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = _get(api, reader, "readings", **params).json()
        seen += [(r["metric"], r["value"]) for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert seen == [("door", True), *(("temp", float(i)) for i in range(5))]


def test_an_aggregate_in_buckets_with_gap_fill(api: str, reader: str) -> None:
    every = {"metric": "temp", "since": T.isoformat(), "every": 120}
    until = (T + timedelta(minutes=8)).isoformat()
    kept = _get(api, reader, "aggregates", **every, until=until).json()
    assert [(b["count"], b["sum"], b["avg"], b["last"]) for b in kept] == [
        (2, 1.0, 0.5, 1.0), (2, 5.0, 2.5, 3.0), (1, 4.0, 4.0, 4.0),
    ]  # fmt: skip
    filled = _get(api, reader, "aggregates", **every, until=until, fill="previous").json()
    assert [(b["start"], b["count"], b["last"]) for b in filled][3] == (
        (T + timedelta(minutes=6)).isoformat().replace("+00:00", "Z"), 0, 4.0,
    )  # fmt: skip
    (whole,) = _get(api, reader, "aggregates", metric="temp", since=SINCE).json()
    assert (whole["count"], whole["min"], whole["max"], whole["sum"]) == (5, 0.0, 4.0, 10.0)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("aggregates", {"metric": "door", "since": SINCE}, "metric"),  # not numeric
        ("aggregates", {"metric": "nope", "since": SINCE}, "metric"),
        ("aggregates", {"metric": "temp"}, "since"),
        ("aggregates", {"metric": "temp", "since": SINCE, "until": SINCE}, "until"),
        ("aggregates", {"metric": "temp", "since": SINCE, "every": 0}, "every"),
        ("aggregates", {"metric": "temp", "since": SINCE, "every": 1}, "every"),  # too many
        ("aggregates", {"metric": "temp", "since": SINCE, "fill": "zero"}, "fill"),
        ("aggregates", {"metric": "temp", "since": "yesterday"}, "since"),
        ("readings", {"since": SINCE, "cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ("readings", {"since": SINCE, "limit": 0}, "limit"),
        ("export", {"since": SINCE, "format": "xml"}, "format"),
        ("export", {"since": SINCE, "until": "2000-01-01T00:00:00Z"}, "until"),
    ],
)
def test_a_bad_parameter_is_a_4xx_naming_it(
    api: str, reader: str, path: str, params: dict[str, Any], field: str
) -> None:
    answer = _get(api, reader, path, **params)
    assert 400 <= answer.status_code < 500, answer.text
    assert field in answer.json()["field"], answer.json()


def test_exports_stream_csv_and_ndjson(api: str, reader: str) -> None:
    with httpx.stream(
        "GET", f"{api}/v1/devices/q-1/export", params={"since": SINCE, "format": "csv"},
        headers=auth(reader), timeout=10,
    ) as streamed:  # fmt: skip
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/csv")
        assert streamed.headers["transfer-encoding"] == "chunked"
        rows = list(csv.DictReader(io.StringIO(streamed.read().decode())))
    assert [(r["metric"], r["value"]) for r in rows][:2] == [("door", "true"), ("temp", "0.0")]
    assert len(rows) == 6 and rows[0]["device"] == "q-1"
    lines = _get(api, reader, "export", since=SINCE, metric="temp").text.splitlines()
    assert [json.loads(line)["value"] for line in lines] == [0.0, 1.0, 2.0, 3.0, 4.0]
    missing = httpx.get(f"{api}/v1/devices/nope/export", params={"since": SINCE},
                        headers=auth(reader))  # fmt: skip
    assert missing.status_code == 404


def test_an_export_reads_one_chunk_at_a_time(settings: Settings, reader: str) -> None:
    chunks = export.readings(
        settings, "q-1", metric=None, since=T - timedelta(hours=1), until=NOW, chunk=4
    )
    first = next(chunks)  # one query's worth, before the rest is read
    assert len(first) == 4
    assert [len(c) for c in chunks] == [2]
