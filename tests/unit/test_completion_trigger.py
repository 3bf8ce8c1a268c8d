"""The completion-callback SQL file names nothing the code owns; rendering fills every name in."""

from __future__ import annotations

import re

import pytest

from tasks.notifications.completion_trigger import SQL_FILE, Identifier, names, render

pytestmark = pytest.mark.usefixtures("no_io")


def spellings(value: object) -> list[str]:
    """How `value` could be written into the SQL by hand."""
    if isinstance(value, tuple):
        return [s for v in value for s in spellings(v)]
    if isinstance(value, Identifier):
        return [str(value)]
    if isinstance(value, int):
        return [rf"\b{value}\b"]
    return [re.escape(f"'{value}'")]


@pytest.mark.parametrize("name", sorted(names()))
def test_the_file_spells_out_none_of_the_codes_values(name: str) -> None:
    template = SQL_FILE.read_text()
    for spelling in spellings(names()[name]):
        assert not re.search(spelling, template), f"{name} is written into the SQL by hand"


def test_rendering_fills_in_every_placeholder_with_the_codes_value() -> None:
    rendered = render()
    assert "{{" not in rendered and "}}" not in rendered
    for value in names().values():
        for spelling in spellings(value):
            assert re.search(spelling, rendered)


def test_a_placeholder_without_a_value_or_a_value_without_a_placeholder_is_refused() -> None:
    values = names()
    with pytest.raises(ValueError, match="queue"):
        render({k: v for k, v in values.items() if k != "queue"})
    with pytest.raises(ValueError, match="stray"):
        render({**values, "stray": 1})


def test_values_are_quoted_and_identifiers_must_need_no_quoting() -> None:
    rendered = render({**names(), "queue": "it's"})
    assert "'it''s'" in rendered
    with pytest.raises(ValueError, match="identifier"):
        render({**names(), "function": Identifier("drop table jobs; --")})
    with pytest.raises(ValueError, match="NUL"):
        render({**names(), "kind": "a\x00b"})
