"""UUIDv7 job ids sort by creation time."""

from __future__ import annotations

import time

from store.ids import uuid7


def test_uuid7_has_version_7_and_the_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"


def test_ids_made_later_sort_later() -> None:
    first = uuid7()
    time.sleep(0.002)  # the id's clock has millisecond resolution
    second = uuid7()
    assert first < second
    assert len({uuid7() for _ in range(10_000)}) == 10_000
