"""Fuzzing the real API process: schemathesis over the served OpenAPI, and hypothesis's JSON
edge values at every request model the OpenAPI names. Bounded (derandomized, a fixed number of
examples per operation) so it runs in `make test`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from config import Settings
from tasks.registry import domains
from tests.support.api import auth
from tests.support.keys import MakeKey

FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def every_scope(settings: Settings, make_key: MakeKey) -> str:
    return str(make_key(name="fuzzer", scopes=tuple(domains(settings).scopes)))


def test_the_api_keeps_its_documented_promises(api: str, every_scope: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == len(results), "the served schema has an operation it cannot read"
    assert len(operations) >= 15
    failures = []
    for operation in operations:

        @FUZZ
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(
                headers=auth(every_scope),
                timeout=10,
                checks=[not_a_server_error, status_code_conformance, content_type_conformance],
            )

        try:
            call()
        except Exception as exc:  # every operation is tried; all failures are reported
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


# JSON edge values: what a parser, a column or a clock may not survive.
EDGES = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "\r\n", "", "9" * 400]),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**400, 1e308, -0.0, 5e-324]),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]).map(lambda s: ("raw", s)),
    st.sampled_from(
        [
            "9999-12-31T23:59:59-15:59",
            "0001-01-01T00:00:00+15:59",
            "2030-01-01T00:00:00+16:00",
            "2030-01-01T00:00:00-23:59",
            "9999-12-30T00:00:00Z",
            "2030-02-30T00:00:00Z",
        ]
    ),
    st.integers(min_value=30, max_value=40).map(lambda n: ("raw", "[" * n + "]" * n)),
    st.booleans(),
    st.none(),
)


def _encode(value: Any) -> str:
    if isinstance(value, tuple):
        return str(value[1])
    return json.dumps(value)


def body_operations(api: str) -> list[tuple[str, str, list[str]]]:
    """(method, concrete path, the model's field names) of every operation taking a body."""
    spec = httpx.get(f"{api}/openapi.json", timeout=5).json()
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            model = content.get("application/json", {}).get("schema")
            if model is None:
                continue
            model = next((m for m in model.get("anyOf", []) if "$ref" in m), model)
            if "$ref" in model:
                model = spec["components"]["schemas"][model["$ref"].rsplit("/", 1)[1]]
            concrete = path.replace("{name}", "fuzz").replace(
                "{endpoint_id}", "00000000-0000-0000-0000-000000000000"
            )
            found.append((method.upper(), concrete, sorted(model.get("properties", {}))))
    return found


def edge_test(api: str, token: str, method: str, path: str, fields: list[str]) -> Any:
    """A hypothesis test sending edge values in up to three of `fields` at one operation."""

    @FUZZ
    @given(data=st.data())
    def throw(data: st.DataObject) -> None:
        chosen = data.draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3))
        members = ", ".join(f'"{f}": {_encode(data.draw(EDGES))}' for f in set(chosen))
        if "payload" in fields and data.draw(st.booleans()):  # free JSON is walked too
            members = f'"type": "system.echo", "payload": {{"k": {_encode(data.draw(EDGES))}}}'
        resp = httpx.request(
            method,
            f"{api}{path}",
            content=f"{{{members}}}".encode(),
            headers={**auth(token), "Content-Type": "application/json"},
            timeout=10,
        )
        assert resp.status_code < 500, (method, path, members, resp.text)
        if resp.status_code in (400, 422):
            problem = resp.json()
            assert problem["field"], problem
            assert problem["code"] != "http_error", problem

    return throw


def test_every_request_model_survives_edge_values(api: str, every_scope: str) -> None:
    operations = body_operations(api)
    assert len(operations) >= 5  # jobs, notifications, templates, endpoints, rotation
    for method, path, fields in operations:  # every model gets its own examples
        edge_test(api, every_scope, method, path, fields)()
