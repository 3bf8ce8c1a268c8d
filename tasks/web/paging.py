"""Opaque keyset cursors: a row's time-sortable UUID, base64url-encoded."""

from __future__ import annotations

import base64
import binascii
import uuid

from errors import InvalidFieldError


def encode_cursor(row_id: uuid.UUID) -> str:
    """The cursor that continues after `row_id`."""
    return base64.urlsafe_b64encode(row_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> uuid.UUID:
    """The row id inside a cursor; a 422 naming `cursor` if this API did not issue it."""
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidFieldError("not a cursor this API issued", field="cursor") from exc
