"""The toy domain's settings section: `SWITCHYARD_TOY__…`."""

from __future__ import annotations

from typing import ClassVar

from config import Section


class ToySettings(Section):
    """What the toy handler writes into each note."""

    section_name: ClassVar[str] = "toy"

    greeting: str = "hello"
