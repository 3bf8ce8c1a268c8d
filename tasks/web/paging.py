"""Keyset paging: one page shape, and opaque cursors (a row's time-sortable UUID, or the
tuple of values a page ended at), base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from errors import InvalidFieldError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of items in the listing's order; pass `next_cursor` as `cursor` for the next
    (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def encode_cursor(row_id: uuid.UUID) -> str:
    """The cursor that continues after `row_id`."""
    return base64.urlsafe_b64encode(row_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    """The row id inside a cursor; a 422 naming `cursor` if this API did not issue it."""
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidFieldError("not a cursor this API issued", field="cursor") from exc


def encode_key(*values: str) -> str:
    """The cursor that continues after the row whose sort key is `values`."""
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_key(cursor: str, arity: int) -> list[str]:
    """The `arity` sort-key values inside a cursor; a 422 naming `cursor` if this API did not
    issue it."""
    try:
        values: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidFieldError("not a cursor this API issued", field="cursor") from exc
    if not (
        isinstance(values, list)
        and len(values) == arity
        and all(isinstance(v, str) for v in values)
    ):
        raise InvalidFieldError("not a cursor this API issued", field="cursor")
    return values
