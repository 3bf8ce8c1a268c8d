"""Properties of the three formats: readings rendered in a format parse back to the same
readings, and no body, however hostile, raises anything but an InvalidFieldError (no I/O)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from errors import InvalidFieldError
from tasks.iot.formats import PARSERS, json_batch, line_protocol, senml
from tasks.iot.formats.rules import EPOCH, LATEST, MAX_MAGNITUDE
from tasks.iot.readings import Reading

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DEVICES = st.sampled_from(["dev-1", "urn:dev:ow:10e2073a01080063", "3f1c0e2a-9b7d-4c1e"])
ABSOLUTE = datetime(1978, 7, 5, tzinfo=UTC)  # SenML times below 2**28 s are relative

# Names every format can carry: RFC 8428's characters, less the `:` that names a device.
SENML_NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9\-./_]{0,40}", fullmatch=True)


# Printable characters (no category C or Z but the space), often one that needs escaping.
SPECIAL = st.sampled_from(list(" ,=\"\\#'.:/_-"))
PRINTABLE = SPECIAL | st.characters(exclude_categories=["C", "Z"], include_characters=" ")
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
NAMES = st.text(PRINTABLE, min_size=1, max_size=60).filter(lambda s: s == s.strip())
UNITS = st.none() | st.text(PRINTABLE, min_size=1, max_size=32).filter(lambda s: s == s.strip())
VALUES = (
    st.floats(min_value=-MAX_MAGNITUDE, max_value=MAX_MAGNITUDE)
    | st.booleans()
    | st.text(
        SPECIAL | st.characters(exclude_categories=["Cs"], exclude_characters="\x00\n"),
        max_size=80,
    )
)
INSTANTS = st.datetimes(
    min_value=ABSOLUTE.replace(tzinfo=None), max_value=LATEST.replace(tzinfo=None)
).map(lambda naive: naive.replace(tzinfo=UTC))


def readings(names: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, list[Reading]]]:
    def batch(device: str) -> st.SearchStrategy[tuple[str, list[Reading]]]:
        one = st.builds(Reading, st.just(device), names, INSTANTS, VALUES, UNITS)
        return st.tuples(st.just(device), st.lists(one, max_size=8))

    return DEVICES.flatmap(batch)


def _seconds(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


# -- renderers: the simplest faithful writer of each format ----------------------------------
def render_json(batch: list[Reading]) -> bytes:
    def one(r: Reading) -> dict[str, object]:
        us = _seconds(r.ts)
        ts: object = us // 1_000_000 if us % 1_000_000 == 0 else r.ts.isoformat()
        item = {"metric": r.metric, "value": r.value, "ts": ts, "device": r.device}
        return item if r.unit is None else {**item, "unit": r.unit}

    return json.dumps({"readings": [one(r) for r in batch]}).encode()


def render_senml(batch: list[Reading]) -> bytes:
    records: list[dict[str, object]] = [{"bn": f"{batch[0].device}:"}] if batch else []
    for r in batch:
        us = _seconds(r.ts)  # whole seconds as the base time, the fraction as the time
        record: dict[str, object] = {"n": r.metric, "bt": us // 1_000_000}
        if us % 1_000_000:
            record["t"] = (us % 1_000_000) / 1_000_000
        kind = "vb" if isinstance(r.value, bool) else "vs" if isinstance(r.value, str) else "v"
        record[kind] = r.value
        if r.unit is not None:
            record["u"] = r.unit
        records.append(record)
    return json.dumps(records).encode()


def _escape(text: str, specials: str) -> str:
    text = text.replace("\\", "\\\\")
    for char in specials:
        text = text.replace(char, "\\" + char)
    return text


def render_line_protocol(batch: list[Reading]) -> bytes:
    lines = []
    for r in batch:
        series = _escape(r.metric, ", ")
        if r.unit is not None:
            series += ",unit=" + _escape(r.unit, ",= ")
        if isinstance(r.value, bool):
            value = "true" if r.value else "F"
        elif isinstance(r.value, str):
            value = '"' + _escape(r.value, '"') + '"'
        else:
            value = repr(r.value)
        lines.append(f"{series},device={r.device} value={value} {_seconds(r.ts) * 1000}")
    return "\n".join(lines).encode()


RENDERERS: dict[str, Callable[[list[Reading]], bytes]] = {
    "application/json": render_json,
    "application/senml+json": render_senml,
    "text/plain": render_line_protocol,
}


def _round_trip(media_type: str, device: str, batch: list[Reading]) -> None:
    body = RENDERERS[media_type](batch)
    parsed = PARSERS[media_type](body, device=device, received_at=NOW)
    assert parsed.refusals == []
    assert [reading for _, reading in parsed.readings] == batch
    assert [index for index, _ in parsed.readings] == [
        i + (media_type == "application/senml+json" and bool(batch)) for i in range(len(batch))
    ]


TRICKY = [  # every character each format escapes, in every place it can appear
    Reading("dev-1", 'a b,c=d"e\\f\\', ABSOLUTE, 'q"uo\\te\\" , = #', "u n,i=t\\"),
    Reading("dev-1", "#x", LATEST, "\\", None),
    Reading("dev-1", "x", ABSOLUTE + timedelta(microseconds=1), True, "="),
]


@pytest.mark.parametrize("media_type", sorted(RENDERERS))
@settings(max_examples=60, deadline=None)
@given(drawn=readings(SENML_NAMES))
def test_every_format_round_trips_the_names_they_all_carry(
    media_type: str, drawn: tuple[str, list[Reading]]
) -> None:
    _round_trip(media_type, *drawn)


@pytest.mark.parametrize("media_type", ["application/json", "text/plain"])
@settings(max_examples=60, deadline=None)
@given(drawn=readings(NAMES))
@example(drawn=("dev-1", TRICKY))
def test_json_and_line_protocol_round_trip_any_printable_name(
    media_type: str, drawn: tuple[str, list[Reading]]
) -> None:
    device, batch = drawn
    if media_type == "text/plain":  # a line starting with `#` is a comment
        batch = [r for r in batch if not r.metric.startswith("#")]
    _round_trip(media_type, device, batch)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | ANY_TEXT
    | st.sampled_from(["n", "v", "bn", "bt", "t", "vs", "metric", "value", "ts", "dev-1:"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(["n", "v", "vs", "vb", "s", "t", "u", "bn", "bt", "bu", "bv", "bs",
                         "bver", "metric", "value", "ts", "unit", "device", "readings", "x_"]),
        inner, max_size=6,
    ),
    max_leaves=12,
)  # fmt: skip


def _never_crashes(parse: Callable[..., object], body: bytes) -> None:
    with contextlib.suppress(InvalidFieldError):
        parse(body, device="dev-1", received_at=NOW)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_hostile_json_is_refused_never_crashes(value: object) -> None:
    body = json.dumps(value).encode()
    _never_crashes(senml.parse, body)
    _never_crashes(json_batch.parse, body)
    _never_crashes(json_batch.parse, json.dumps({"readings": value}).encode())


LP_PIECES = st.sampled_from(
    ["m", " ", ",", "=", '"', "\\", "\n", "#", "1", "i", "u", "t", "-", ".", "e", "x", "\x00",
     "device", "unit", "value", "1556813561098000000", "\r"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(LP_PIECES, max_size=40).map(lambda pieces: "".join(pieces).encode()) | st.binary())
def test_hostile_line_protocol_is_refused_never_crashes(body: bytes) -> None:
    _never_crashes(line_protocol.parse, body)
