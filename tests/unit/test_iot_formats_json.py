"""The JSON batch format and the media-type table: readings, refusals per reading that keep
the valid rest, and bodies refused whole, naming the field (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from errors import InvalidFieldError
from tasks.iot import parsing
from tasks.iot.formats import PARSERS, json_batch, line_protocol, parser_for, senml
from tasks.iot.readings import Parsed, Reading, Refusal

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def parse(body: str, device: str = "dev-1") -> Parsed:
    return json_batch.parse(body.encode(), device=device, received_at=NOW)


def test_a_batch_of_every_kind_of_value() -> None:
    parsed = parse(
        '{"readings": ['
        '{"metric": "temp", "value": 21.5, "unit": "Cel", "ts": "2026-12-01T10:00:00.25+01:00"},'
        '{"metric": "door", "value": true, "ts": 1796119200},'
        '{"metric": "label", "value": "boiler room", "unit": null, "ts": null},'
        '{"metric": "count", "value": 7, "ts": 1796119200.125, "device": "dev-1"}]}'
    )
    assert parsed.readings == [
        (0, Reading("dev-1", "temp", datetime(2026, 12, 1, 9, 0, 0, 250000, UTC), 21.5, "Cel")),
        (1, Reading("dev-1", "door", datetime(2026, 12, 1, 10, 0, tzinfo=UTC), True)),
        (2, Reading("dev-1", "label", NOW, "boiler room")),
        (3, Reading("dev-1", "count", datetime(2026, 12, 1, 10, 0, 0, 125000, UTC), 7.0)),
    ]
    assert parsed.refusals == []


@pytest.mark.parametrize(
    ("reading", "code", "field"),
    [
        ("1", "not_an_object", None),
        ('{"value": 1}', "missing_field", "metric"),
        ('{"metric": "a"}', "missing_field", "value"),
        ('{"metric": "a", "value": 1, "extra": 1}', "unknown_field", "extra"),
        ('{"metric": "a", "value": 1, "device": "dev-2"}', "foreign_device", "device"),
        ('{"metric": "a", "value": 1, "device": 5}', "invalid_type", "device"),
        ('{"metric": 5, "value": 1}', "invalid_type", "metric"),
        ('{"metric": "", "value": 1}', "invalid_metric", "metric"),
        ('{"metric": " a", "value": 1}', "invalid_metric", "metric"),
        ('{"metric": "a\\u0007", "value": 1}', "invalid_metric", "metric"),
        ('{"metric": "' + "m" * 129 + '", "value": 1}', "invalid_metric", "metric"),
        ('{"metric": "a", "value": null}', "invalid_type", "value"),
        ('{"metric": "a", "value": [1]}', "invalid_type", "value"),
        ('{"metric": "a", "value": ' + "9" * 400 + "}", "number_out_of_range", "value"),
        ('{"metric": "a", "value": 9007199254740993}', "number_out_of_range", "value"),
        ('{"metric": "a", "value": -1.7e308}', "number_out_of_range", "value"),  # sums overflow
        ('{"metric": "a", "value": "' + "x" * 4097 + '"}', "invalid_value", "value"),
        ('{"metric": "a", "value": 1, "unit": ""}', "invalid_unit", "unit"),
        ('{"metric": "a", "value": 1, "unit": 1}', "invalid_type", "unit"),
        ('{"metric": "a", "value": 1, "ts": "yesterday"}', "invalid_timestamp", "ts"),
        ('{"metric": "a", "value": 1, "ts": "2026-12-01T10:00:00"}', "invalid_timestamp", "ts"),
        ('{"metric": "a", "value": 1, "ts": "2026-12-01T10:00:00+18:00"}', "invalid_timestamp",
         "ts"),
        ('{"metric": "a", "value": 1, "ts": "1969-12-31T23:59:59Z"}', "timestamp_out_of_range",
         "ts"),
        ('{"metric": "a", "value": 1, "ts": "9999-12-31T23:59:59-01:00"}',
         "timestamp_out_of_range", "ts"),
        ('{"metric": "a", "value": 1, "ts": -1}', "timestamp_out_of_range", "ts"),
        ('{"metric": "a", "value": 1, "ts": 1e300}', "timestamp_out_of_range", "ts"),
        ('{"metric": "a", "value": 1, "ts": ' + "9" * 30 + "}", "timestamp_out_of_range", "ts"),
        ('{"metric": "a", "value": 1, "ts": true}', "invalid_type", "ts"),
    ],
)  # fmt: skip
def test_a_bad_reading_is_refused_and_the_rest_kept(
    reading: str, code: str, field: str | None
) -> None:
    parsed = parse(
        f'{{"readings": [{{"metric": "a", "value": 1}}, {reading}, {{"metric": "b", "value": 2}}]}}'
    )
    assert parsed.refusals == [Refusal(1, code, parsed.refusals[0].reason, field)]
    assert [(i, r.metric) for i, r in parsed.readings] == [(0, "a"), (2, "b")]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"[]", "invalid_field", "body"),
        (b"{}", "invalid_field", "readings"),
        (b'{"readings": {}}', "invalid_field", "readings"),
        (b'{"readings": [], "device": "x"}', "invalid_field", "device"),
        (b'{"readings": [{"metric": "a", "value": NaN}]}', "malformed_json", "readings.0.value"),
        (b'{"readings": [{"metric": "a", "value": 1e999}]}', "number_out_of_range",
         "readings.0.value"),
        (b'{"readings": [{"metric": "a\\u0000", "value": 1}]}', "invalid_text",
         "readings.0.metric"),
        (b'{"readings": [{"metric": "\\udc00", "value": 1}]}', "invalid_text",
         "readings.0.metric"),
        (b"", "malformed_json", "body"),
        (b"\xff", "invalid_encoding", "body"),
    ],
)  # fmt: skip
def test_a_body_that_is_not_a_batch_raises_naming_the_field(
    body: bytes, code: str, field: str
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        json_batch.parse(body, device="dev-1", received_at=NOW)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_the_receipt_time_must_be_aware_and_is_kept_as_utc() -> None:
    later = datetime(2026, 12, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    parsed = json_batch.parse(
        b'{"readings": [{"metric": "a", "value": 1}]}', device="d", received_at=later
    )
    assert parsed.readings[0][1].ts == NOW and parsed.readings[0][1].ts.tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        json_batch.parse(b'{"readings": []}', device="d", received_at=datetime(2026, 1, 1))


def test_parsers_are_keyed_by_media_type() -> None:
    expected = {
        "application/json": json_batch.parse,
        "application/senml+json": senml.parse,
        "text/plain": line_protocol.parse,
    }
    assert expected == PARSERS
    assert parser_for("text/plain; charset=utf-8") is line_protocol.parse
    assert parser_for("Application/SenML+JSON") is senml.parse
    assert parser_for('application/json;charset="UTF-8"') is json_batch.parse


@pytest.mark.parametrize(
    "content_type", [None, "", "application/xml", "text/plain; charset=latin-1", "text/csv"]
)
def test_other_media_types_are_415(content_type: str | None) -> None:
    with pytest.raises(InvalidFieldError) as caught:  # as a route or the bridge asks
        parsing.parser_for(parsing.batch_type(content_type), extra={})
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        415, "unsupported_media_type", "Content-Type"
    )  # fmt: skip
