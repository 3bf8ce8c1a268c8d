"""SenML JSON (RFC 8428): the RFC's own examples of section 5.1, base fields, relative times,
and refusals per record that keep the valid rest (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from errors import InvalidFieldError
from tasks.iot.formats import senml
from tasks.iot.readings import Parsed, Reading, Refusal

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
OW = "urn:dev:ow:10e2073a01080063"


def parse(body: str, device: str = OW) -> Parsed:
    return senml.parse(body.encode(), device=device, received_at=NOW)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def rows(parsed: Parsed) -> list[tuple[int, str, datetime, object, str | None]]:
    return [(i, r.metric, r.ts, r.value, r.unit) for i, r in parsed.readings]


def test_5_1_1_single_data_point_is_now_and_named_by_its_unit() -> None:
    parsed = parse('[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]')
    assert parsed.readings == [(0, Reading(OW, "Cel", NOW, 23.1, "Cel"))]
    assert parsed.refusals == []


def test_5_1_2_multiple_data_points_now() -> None:
    parsed = parse(
        '[{"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},'
        ' {"n":"current","u":"A","v":1.2}]'
    )
    assert rows(parsed) == [(0, "voltage", NOW, 120.1, "V"), (1, "current", NOW, 1.2, "A")]


def test_5_1_2_multiple_data_points_with_base_time_base_unit_and_version() -> None:
    device = "urn:dev:ow:10e2073a0108006"  # the RFC's own spelling in this example
    parsed = parse(
        """[
         {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,
          "bu":"A","bver":5,
          "n":"voltage","u":"V","v":120.1},
         {"n":"current","t":-5,"v":1.2},
         {"n":"current","t":-4,"v":1.3},
         {"n":"current","t":-3,"v":1.4},
         {"n":"current","t":-2,"v":1.5},
         {"n":"current","t":-1,"v":1.6},
         {"n":"current","v":1.7}
        ]""",
        device=device,
    )
    base = datetime(2010, 6, 8, 18, 1, 16, 1000, tzinfo=UTC)  # Tue Jun 8 18:01:16.001 2010
    second = timedelta(seconds=1)
    assert rows(parsed) == [
        (0, "voltage", base, 120.1, "V"),
        (1, "current", base - 5 * second, 1.2, "A"),
        (2, "current", base - 4 * second, 1.3, "A"),
        (3, "current", base - 3 * second, 1.4, "A"),
        (4, "current", base - 2 * second, 1.5, "A"),
        (5, "current", base - second, 1.6, "A"),
        (6, "current", base, 1.7, "A"),
    ]
    assert all(r.device == device for _, r in parsed.readings)


MULTIPLE_MEASUREMENTS = """[
 {"bn":"urn:dev:ow:10e2073a01080063","bt":1.320067464e+09,
  "bu":"%RH","v":20},
 {"u":"lon","v":24.30621},
 {"u":"lat","v":60.07965},
 {"t":60,"v":20.3},
 {"u":"lon","t":60,"v":24.30622},
 {"u":"lat","t":60,"v":60.07965},
 {"t":120,"v":20.7},
 {"u":"lon","t":120,"v":24.30623},
 {"u":"lat","t":120,"v":60.07966},
 {"u":"%EL","t":150,"v":98},
 {"t":180,"v":21.2},
 {"u":"lon","t":180,"v":24.30628},
 {"u":"lat","t":180,"v":60.07967}
]"""

RESOLVED = """[
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067464e+09,"v":20},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067464e+09,"v":24.30621},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067464e+09,"v":60.07965},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067524e+09,"v":20.3},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067524e+09,"v":24.30622},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067524e+09,"v":60.07965},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067584e+09,"v":20.7},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067584e+09,"v":24.30623},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067584e+09,"v":60.07966},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%EL","t":1.320067614e+09,"v":98},
 {"n":"urn:dev:ow:10e2073a01080063","u":"%RH","t":1.320067644e+09,"v":21.2},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lon","t":1.320067644e+09,"v":24.30628},
 {"n":"urn:dev:ow:10e2073a01080063","u":"lat","t":1.320067644e+09,"v":60.07967}
]"""


def test_5_1_3_multiple_measurements_differ_by_unit() -> None:
    parsed = parse(MULTIPLE_MEASUREMENTS)
    start = at(1_320_067_464)  # Mon Oct 31 13:24:24 UTC 2011
    assert start == datetime(2011, 10, 31, 13, 24, 24, tzinfo=UTC)
    assert rows(parsed)[:4] == [
        (0, "%RH", start, 20.0, "%RH"),
        (1, "lon", start, 24.30621, "lon"),
        (2, "lat", start, 60.07965, "lat"),
        (3, "%RH", start + timedelta(seconds=60), 20.3, "%RH"),
    ]
    assert rows(parsed)[9] == (9, "%EL", start + timedelta(seconds=150), 98.0, "%EL")
    keys = {(r.metric, r.ts) for _, r in parsed.readings}
    assert len(keys) == 13 and parsed.refusals == []


def test_5_1_4_resolved_records_are_the_same_readings() -> None:
    assert parse(RESOLVED) == parse(MULTIPLE_MEASUREMENTS)


def test_5_1_5_multiple_data_types_keep_their_kind_and_refuse_binary_data() -> None:
    parsed = parse(
        '[{"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},'
        ' {"n":"label","vs":"Machine Room"}, {"n":"open","vb":false},'
        ' {"n":"nfv-reader","vd":"aGkgCg"}]'
    )
    assert rows(parsed) == [
        (0, "temp", NOW, 23.1, "Cel"),
        (1, "label", NOW, "Machine Room", None),
        (2, "open", NOW, False, None),
    ]
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [(3, "unsupported_value", "vd")]


def test_5_1_6_collection_of_resources_refuses_the_other_device() -> None:
    parsed = parse(
        '[{"bn":"2001:db8::2/","bt":1.320078429e+09,"n":"temperature","u":"Cel","v":25.2},'
        ' {"n":"humidity","u":"%RH","v":30},'
        ' {"bn":"2001:db8::1/","n":"temperature","u":"Cel","v":12.3},'
        ' {"n":"humidity","u":"%RH","v":67}]',
        device="2001:db8::2",
    )
    when = datetime(2011, 10, 31, 16, 27, 9, tzinfo=UTC)
    assert rows(parsed) == [
        (0, "temperature", when, 25.2, "Cel"),
        (1, "humidity", when, 30.0, "%RH"),
    ]
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [
        (2, "foreign_device", "bn"), (3, "foreign_device", "bn")
    ]  # fmt: skip


def test_5_1_7_a_record_of_base_fields_only_sets_them() -> None:
    parsed = parse(
        '[{"bn":"urn:dev:ow:10e2073a01080063:"}, {"n":"temp","u":"Cel","v":23.1},'
        ' {"n":"heat","u":"/","v":1}, {"n":"fan","u":"/","v":0}]'
    )
    assert rows(parsed) == [
        (1, "temp", NOW, 23.1, "Cel"), (2, "heat", NOW, 1.0, "/"), (3, "fan", NOW, 0.0, "/")
    ]  # fmt: skip
    assert parsed.refusals == []


def test_5_1_7_absolute_and_sub_second_times() -> None:
    parsed = parse(
        '[{"bt":1.320078429e+09,"bu":"/","n":"light3","v":0.5}, {"n":"light3","t":0.1,"v":0}]'
    )
    assert [r.ts for _, r in parsed.readings] == [
        at(1_320_078_429), at(1_320_078_429) + timedelta(milliseconds=100)
    ]  # fmt: skip


def test_an_example_for_another_device_is_refused_record_by_record() -> None:
    parsed = parse(MULTIPLE_MEASUREMENTS, device="urn:dev:ow:0000000000000001")
    assert parsed.readings == []
    assert {(r.code, r.field) for r in parsed.refusals} == {("foreign_device", "bn")}
    assert len(parsed.refusals) == 13


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0, NOW),
        (-5, NOW - timedelta(seconds=5)),
        (30, NOW + timedelta(seconds=30)),  # the time policy decides about the future
        (2**28 - 1, NOW + timedelta(seconds=2**28 - 1)),
        (2**28, datetime(1978, 7, 4, 21, 24, 16, tzinfo=UTC)),
    ],
)
def test_times_below_2_28_are_relative_to_the_receipt(t: int, expected: datetime) -> None:
    assert parse(f'[{{"n":"x","t":{t},"v":1}}]').readings[0][1].ts == expected


def test_base_time_plus_time_decides_relative_or_absolute() -> None:
    parsed = parse('[{"bt":-60,"n":"x","v":1}, {"n":"y","t":10,"v":2}]')
    assert [r.ts for _, r in parsed.readings] == [
        NOW - timedelta(seconds=60),
        NOW - timedelta(seconds=50),
    ]


def test_base_value_is_added_to_numbers_only() -> None:
    parsed = parse(
        '[{"bn":"d:","bv":100,"n":"a","v":1.5}, {"n":"b","v":-2}, {"n":"c","vs":"text"},'
        ' {"bv":0.5,"n":"d","v":0}]',
        device="d",
    )
    assert [r.value for _, r in parsed.readings] == [101.5, 98.0, "text", 0.5]


def test_a_sum_is_a_reading_of_its_own_with_the_base_sum_added() -> None:
    parsed = parse(
        '[{"n":"energy","u":"W","v":10,"s":3600}, {"bs":1000,"n":"energy","u":"W","s":5}]'
    )
    assert rows(parsed) == [
        (0, "energy", NOW, 10.0, "W"), (0, "energy.sum", NOW, 3600.0, "W"),
        (1, "energy.sum", NOW, 1005.0, "W"),
    ]  # fmt: skip


def test_the_name_maps_to_the_metric() -> None:
    parsed = parse(
        '[{"bn":"urn:dev:ow:10e2073a01080063/","n":"room1/temp","v":1},'
        ' {"bn":"","n":"room2/temp","v":2}, {"bn":"kitchen.","n":"temp","v":3}]'
    )
    assert [r.metric for _, r in parsed.readings] == ["room1/temp", "room2/temp", "kitchen.temp"]


@pytest.mark.parametrize(
    ("records", "code", "field"),
    [
        ('{"n":"temp"}', "missing_field", "v"),
        ('{"n":"temp","v":1,"vs":"x"}', "ambiguous_value", "vs"),
        ('{"n":"temp","v":"1"}', "invalid_type", "v"),
        ('{"n":"temp","vb":1}', "invalid_type", "vb"),
        ('{"n":"temp","vs":1}', "invalid_type", "vs"),
        ('{"n":"temp","v":true}', "invalid_type", "v"),
        ('{"n":"temp","v":' + str(2**53 + 1) + "}", "number_out_of_range", "v"),
        ('{"n":"temp","v":1,"t":"now"}', "invalid_type", "t"),
        ('{"n":"temp","v":1,"t":-1e12}', "timestamp_out_of_range", "t"),
        ('{"n":"temp","v":1,"t":1e11}', "timestamp_out_of_range", "t"),
        ('{"n":"temp","v":1,"ut":"x"}', "invalid_type", "ut"),
        ('{"n":"temp","v":1,"u":""}', "invalid_unit", "u"),
        ('{"n":"temp","v":1,"x_":1}', "unknown_field", "x_"),
        ('{"n":"te mp","v":1}', "invalid_metric", "n"),
        ('{"n":"_temp","v":1}', "invalid_metric", "n"),
        ('{"n":"' + "t" * 129 + '","v":1}', "invalid_metric", "n"),
        ('{"bn":"urn:dev:ow:10e2073a01080063:","v":1}', "invalid_metric", "bn"),
        ('{"n":"urn:dev:ow:10e2073a01080063","v":1}', "invalid_metric", "n"),
        ('{"n":"other:temp","v":1}', "foreign_device", "n"),
        ('{"n":"temp","vs":"' + "x" * 4097 + '"}', "invalid_value", "vs"),
        ("[1]", "not_an_object", None),
    ],
)
def test_a_bad_record_is_refused_and_the_rest_kept(
    records: str, code: str, field: str | None
) -> None:
    parsed = parse(f'[{{"n":"before","v":1}}, {records}, {{"n":"after","v":2}}]')
    assert parsed.refusals == [Refusal(1, code, parsed.refusals[0].reason, field)]
    assert rows(parsed) == [(0, "before", NOW, 1.0, None), (2, "after", NOW, 2.0, None)]


def test_unknown_labels_are_ignored_as_the_rfc_requires() -> None:
    assert rows(parse('[{"n":"x","v":1,"l":"extension"}]')) == [(0, "x", NOW, 1.0, None)]


def test_a_broken_base_refuses_the_records_that_use_it_until_it_is_set_again() -> None:
    parsed = parse(
        '[{"bu":5,"n":"a","v":1}, {"n":"b","v":2}, {"n":"c","u":"V","v":3},'
        ' {"bu":"A","n":"d","v":4}]'
    )
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [
        (0, "invalid_type", "bu"), (1, "invalid_base", "bu")
    ]  # fmt: skip
    assert rows(parsed) == [(2, "c", NOW, 3.0, "V"), (3, "d", NOW, 4.0, "A")]


def test_a_version_above_10_is_not_used_nor_a_resolved_value_that_overflows() -> None:
    parsed = parse(
        '[{"bver":11,"n":"a","v":1}, {"n":"b","v":2}, {"bver":2.5,"n":"c","v":3},'
        ' {"bver":10,"bv":1e300,"n":"d","v":1e300}, {"bv":0,"n":"e","v":5}]'
    )
    assert [(r.index, r.code, r.field) for r in parsed.refusals] == [
        (0, "unsupported_version", "bver"), (1, "unsupported_version", "bver"),
        (2, "invalid_type", "bver"), (3, "number_out_of_range", "v"),
    ]  # fmt: skip
    assert rows(parsed) == [(4, "e", NOW, 5.0, None)]


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b'{"n":"x","v":1}', "invalid_field", 422),
        (b'[{"n":"x","v":NaN}]', "malformed_json", 400),
        (b'[{"n":"x","v":1e999}]', "number_out_of_range", 422),
        (b'[{"n":"x","vs":"a\\u0000"}]', "invalid_text", 422),
        (b'[{"n":"x","v":1,"v":2}]', "malformed_json", 400),
        (b"[", "malformed_json", 400),
        (b"\xef\xbb\xbf[]", "invalid_encoding", 400),
    ],
)
def test_a_body_that_is_not_a_pack_raises_naming_the_field(
    body: bytes, code: str, status: int
) -> None:
    with pytest.raises(InvalidFieldError) as caught:
        senml.parse(body, device=OW, received_at=NOW)
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.field
