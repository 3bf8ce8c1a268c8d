"""Payload validation and request fingerprints, without I/O."""

from __future__ import annotations

import pytest

from config import Settings
from errors import InvalidFieldError
from tasks.enqueue import request_fingerprint, validate_payload
from tasks.registry import UnknownJobTypeError, domains


def test_an_invalid_payload_names_the_field() -> None:
    with pytest.raises(InvalidFieldError) as info:
        validate_payload("system.sleep", {"seconds": "soon"})
    assert info.value.field == "payload.seconds"


def test_an_unknown_field_is_refused_where_the_schema_forbids_it() -> None:
    with pytest.raises(InvalidFieldError) as info:
        validate_payload("system.fail", {"times": 1, "colour": "red"})
    assert info.value.field == "payload.colour"


def test_an_unknown_job_type_is_refused() -> None:
    with pytest.raises(UnknownJobTypeError):
        domains(Settings()).spec("system.nope")


def test_valid_payloads_come_back_normalised() -> None:
    assert validate_payload("system.fail", {"times": 2}) == {
        "times": 2,
        "mode": "retryable",
        "message": "failing on purpose",
    }


def test_the_fingerprint_ignores_key_order_but_not_values() -> None:
    a = request_fingerprint("system.echo", {"a": 1, "b": 2}, priority=0)
    b = request_fingerprint("system.echo", {"b": 2, "a": 1}, priority=0)
    c = request_fingerprint("system.echo", {"a": 1, "b": 3}, priority=0)
    assert a == b != c
