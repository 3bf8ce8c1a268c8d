"""The type of the `make_key` fixture, so tests that take it are type-checked."""

from __future__ import annotations

from typing import Protocol


class MakeKey(Protocol):
    """make_key(name, scopes) -> a new API key's token."""

    def __call__(
        self, name: str = ..., scopes: tuple[str, ...] = ("jobs:write", "jobs:read")
    ) -> str: ...
