"""Influx line protocol: every escaping rule of InfluxData's reference, the value types, the
timestamp precisions, and refusals per line or per field that keep the valid rest (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from errors import InvalidFieldError
from tasks.iot.formats import line_protocol
from tasks.iot.formats.line_protocol import Precision
from tasks.iot.readings import Parsed, Reading, Value

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
TS = 1556813561098000000  # the reference's example timestamp, in nanoseconds
AT = datetime(2019, 5, 2, 16, 12, 41, 98000, tzinfo=UTC)


def parse(body: str, *, precision: Precision = "ns", device: str = "dev-1") -> Parsed:
    return line_protocol.parse(body.encode(), device=device, received_at=NOW, precision=precision)


def one(line: str) -> Reading:
    parsed = parse(line)
    assert parsed.refusals == [], parsed.refusals
    [(_, reading)] = parsed.readings
    return reading


def metrics(body: str) -> list[str]:
    parsed = parse(body)
    assert parsed.refusals == [], parsed.refusals
    return [r.metric for _, r in parsed.readings]


# -- escaping, rule by rule (InfluxData: "Special characters") ----------------------------
@pytest.mark.parametrize(
    ("line", "metric"),
    [
        (r"my\ Measurement value=1", "my Measurement"),  # measurement: space
        (r"my\,Measurement value=1", "my,Measurement"),  # measurement: comma
        (r"a=b value=1", "a=b"),  # measurement: an equals sign needs no escape
        (r"a\=b value=1", r"a\=b"),  # ...and a backslash before it is itself
        (r'"quoted" value=1', '"quoted"'),  # quotes outside field values are the name's
        (r"'single' value=1", "'single'"),
        (r"m field\ key=1", "m.field key"),  # field key: space
        (r"m field\,key=1", "m.field,key"),  # field key: comma
        (r"m field\=key=1", "m.field=key"),  # field key: equals sign
        (r"m,tag\ key=v value=1", "m,tag key=v"),  # tag key: space
        (r"m,tag\,key=v value=1", "m,tag,key=v"),  # tag key: comma
        (r"m,tag\=key=v value=1", "m,tag=key=v"),  # tag key: equals sign
        (r"m,t=tag\ value value=1", "m,t=tag value"),  # tag value: space
        (r"m,t=tag\,value value=1", "m,t=tag,value"),  # tag value: comma
        (r"m,t=tag\=value value=1", "m,t=tag=value"),  # tag value: equals sign
        (r"m,t=a\b value=1", r"m,t=a\b"),  # a backslash before anything else is itself
        ("myMeasurement,tagKey=🍭 value=1", "myMeasurement,tagKey=🍭"),  # emoji
    ],
)
def test_names_unescape_as_the_reference_says(line: str, metric: str) -> None:
    assert one(line).metric == metric


@pytest.mark.parametrize(
    ("escaped", "meant"),
    [("\\", "\\"), ("\\\\", "\\"), ("\\\\\\", "\\\\"), ("\\\\\\\\", "\\\\"),
     ("\\\\\\\\\\", "\\\\\\"), ("\\\\\\\\\\\\", "\\\\\\")],
)  # fmt: skip
def test_backslashes_follow_the_reference_table(escaped: str, meant: str) -> None:
    assert one(f"m{escaped}x value=1").metric == f"m{meant}x"  # measurement
    assert one(f"m,t=a{escaped}x value=1").metric == f"m,t=a{meant}x"  # tag value
    assert one(f"m k{escaped}x=1").metric == f"m.k{meant}x"  # field key
    assert one(f'm value="a{escaped}x"').value == f"a{meant}x"  # string field value


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (r'"\"string\" within a string"', '"string" within a string'),  # double quote
        (r'"a\\b"', "a\\b"),  # backslash
        (r'"ends with a backslash\\"', "ends with a backslash\\"),
        (r'"C:\temp"', r"C:\temp"),  # a backslash before anything else is itself
        ('"string value, with = and spaces"', "string value, with = and spaces"),
        ('"Launch 🚀"', "Launch 🚀"),
        ('""', ""),
    ],
)
def test_string_field_values_unescape_quotes_and_backslashes_only(raw: str, text: str) -> None:
    assert one(f"m value={raw}").value == text


def test_the_references_own_examples() -> None:
    parsed = parse(
        'my\\ Measurement fieldKey="string value"\n'
        'myMeasurement fieldKey="\\"string\\" within a string"\n'
        "myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100\n"
        'myMeasurement,tagKey=🍭 fieldKey="Launch 🚀" 1556813561098000000\n'
    )
    assert [(i, r.metric, r.value) for i, r in parsed.readings] == [
        (0, "my Measurement.fieldKey", "string value"),
        (1, "myMeasurement.fieldKey", '"string" within a string'),
        (2, "myMeasurement.fieldKey,tag Key1=tag Value1,tag Key2=tag Value2", 100.0),
        (3, "myMeasurement.fieldKey,tagKey=🍭", "Launch 🚀"),
    ]
    assert parsed.readings[3][1].ts == AT
    assert parsed.refusals == []


# -- the mapping to readings ----------------------------------------------------------------
def test_each_field_is_a_reading_and_tags_qualify_the_metric_sorted() -> None:
    parsed = parse(f"weather,zone=b,location=us-midwest,unit=F temperature=82,humidity=71i {TS}")
    assert parsed.readings == [
        (0, Reading("dev-1", "weather.temperature,location=us-midwest,zone=b", AT, 82.0, "F")),
        (0, Reading("dev-1", "weather.humidity,location=us-midwest,zone=b", AT, 71.0, "F")),
    ]


def test_the_device_tag_must_be_the_sender() -> None:
    parsed = parse(f"m,device=dev-1 value=1 {TS}\nm,device=dev-2 value=2 {TS}\n")
    assert parsed.readings == [(0, Reading("dev-1", "m", AT, 1.0))]
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [
        (1, "foreign_device", "tag.device")
    ]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1", 1.0), ("1.0", 1.0), ("-1.234456e+78", -1.234456e78), ("1E3", 1000.0),
        (".5", 0.5), ("+2", 2.0), ("1i", 1.0), ("-9007199254740992i", -(2.0**53)),
        ("0u", 0.0), ("9007199254740992u", 2.0**53),
        *[(b, True) for b in ("t", "T", "true", "True", "TRUE")],
        *[(b, False) for b in ("f", "F", "false", "False", "FALSE")],
    ],
)  # fmt: skip
def test_field_value_types(raw: str, value: Value) -> None:
    reading = one(f"m value={raw}")
    assert reading.value == value and type(reading.value) is type(value)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("NaN", "invalid_value"), ("inf", "invalid_value"), ("-Infinity", "invalid_value"),
        ("1e999", "number_out_of_range"), ("9223372036854775808i", "number_out_of_range"),
        ("9007199254740993i", "number_out_of_range"), ("-1u", "invalid_value"),
        ("18446744073709551616u", "number_out_of_range"), ("1.5i", "invalid_value"),
        ("yes", "invalid_value"), ("tRUE", "invalid_value"), ("12x", "invalid_value"),
        ('"a\x00b"', "invalid_text"), ('"' + "x" * 4097 + '"', "invalid_value"),
        ('"abc"d', "syntax_error"), ("1.7e308", "number_out_of_range"),
        ("\u0664\u0663.\u0665", "invalid_value"), ("\uff14\uff12i", "invalid_value"),  # not ASCII
    ],
)  # fmt: skip
def test_a_bad_field_is_refused_and_the_lines_other_fields_kept(raw: str, code: str) -> None:
    parsed = parse(f"m a=1,bad={raw},b=2 {TS}")
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [(0, code, "field.bad")]
    assert [(r.metric, r.value) for _, r in parsed.readings] == [("m.a", 1.0), ("m.b", 2.0)]


@pytest.mark.parametrize(
    ("line", "code", "field"),
    [
        ("measurement_only", "syntax_error", None),
        ("m a=1 123 extra", "syntax_error", None),
        (",t=1 a=1", "syntax_error", "measurement"),
        ("m,t a=1", "syntax_error", None),
        ("m,t= a=1", "syntax_error", None),
        ("m,=v a=1", "syntax_error", None),
        ("m,t=a=b a=1", "syntax_error", None),
        ("m a=", "syntax_error", None),
        ("m =1", "syntax_error", None),
        ('m a="open', "syntax_error", None),
        ("m,t=1,t=2 a=1", "duplicate_key", "tag.t"),
        ("m a=1 12.5", "invalid_timestamp", "timestamp"),
        ("m a=1 -1", "timestamp_out_of_range", "timestamp"),
        ("m a=1 99999999999999999999", "invalid_timestamp", "timestamp"),
        ("m,unit=" + "u" * 33 + " a=1", "invalid_unit", "tag.unit"),
        ("x" * 129 + " value=1", "invalid_metric", "measurement"),
        ("m\x00 a=1", "invalid_text", "measurement"),
        ("m\x07 a=1", "invalid_metric", "measurement"),
        ("m,t=a\x00 a=1", "invalid_text", "tag.t"),
    ],
)
def test_a_bad_line_is_refused_as_a_whole_and_the_next_kept(
    line: str, code: str, field: str | None
) -> None:
    parsed = parse(f"ok value=1 {TS}\n{line}\nok value=2 {TS}")
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [(1, code, field)]
    assert [(i, r.value) for i, r in parsed.readings] == [(0, 1.0), (2, 2.0)]


def test_a_metric_grown_too_long_by_field_or_tags_is_refused_per_field() -> None:
    parsed = parse(f"{'m' * 120} short=1,{'f' * 10}=2")
    assert [r.metric for _, r in parsed.readings] == ["m" * 120 + ".short"]
    assert [(r.code, r.field) for r in parsed.refusals] == [("invalid_metric", "field." + "f" * 10)]


def test_a_repeated_field_is_refused_and_the_first_kept() -> None:
    parsed = parse("m a=1,a=2")
    assert [(r.metric, r.value) for _, r in parsed.readings] == [("m.a", 1.0)]
    assert [(r.code, r.field) for r in parsed.refusals] == [("duplicate_key", "field.a")]


# -- lines, comments, whitespace, timestamps --------------------------------------------------
def test_comments_blank_lines_whitespace_and_crlf() -> None:
    parsed = parse(f"# a comment\n\n   \t\n  m value=1   {TS}  \r\nm value=2\r\n#m value=3")
    assert [(i, r.value, r.ts) for i, r in parsed.readings] == [(3, 1.0, AT), (4, 2.0, NOW)]
    assert parsed.refusals == []


def test_a_newline_in_a_string_value_is_not_line_protocol() -> None:
    parsed = parse('m value="two\nlines"')
    assert parsed.readings == []
    assert [(r.index, r.code) for r in parsed.refusals] == [
        (0, "syntax_error"),
        (1, "syntax_error"),
    ]


@pytest.mark.parametrize(
    ("precision", "stamp", "expected"),
    [
        ("ns", "1556813561098000999", AT),  # nanoseconds are floored to the microsecond
        ("us", "1556813561098000", AT),
        ("ms", "1556813561098", AT),
        ("s", "1556813561", AT - timedelta(microseconds=98000)),
        ("ns", "0", datetime(1970, 1, 1, tzinfo=UTC)),
        ("ns", "9223372036854775807", datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)),
    ],
)
def test_timestamp_precisions(precision: Precision, stamp: str, expected: datetime) -> None:
    parsed = parse(f"m value=1 {stamp}", precision=precision)
    assert [r.ts for _, r in parsed.readings] == [expected]


def test_a_timestamp_beyond_the_range_in_coarse_precision_is_refused() -> None:
    parsed = parse("m value=1 9223372036854775", precision="ms")
    assert [(r.code, r.field) for r in parsed.refusals] == [("timestamp_out_of_range", "timestamp")]


@pytest.mark.parametrize(
    "body", [b"\xef\xbb\xbfm value=1", b"m value=\xff", "m v=1".encode("utf-16-le")]
)
def test_a_body_that_is_not_utf8_raises(body: bytes) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        line_protocol.parse(body, device="dev-1", received_at=NOW)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        400, "invalid_encoding", "body"
    )  # fmt: skip


def test_an_empty_body_has_no_readings() -> None:
    assert parse("") == Parsed()
