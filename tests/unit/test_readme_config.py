"""The README documents every setting the code reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from config import Settings
from tasks.registry import domains

README = Path(__file__).resolve().parents[2] / "README.md"


def variables(model: type[BaseModel], prefix: str = "SWITCHYARD_") -> list[str]:
    """Every environment variable a settings model reads, nested ones joined with `__`."""
    names: list[str] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names += variables(kind, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    text = README.read_text()
    table = text[text.index("<!-- config:begin -->") : text.index("<!-- config:end -->")]
    sections = [d.settings for d in domains(Settings()).domains if d.settings]
    names = variables(Settings) + [
        v for s in sections for v in variables(s, f"SWITCHYARD_{s.section_name.upper()}__")
    ]
    missing = [v for v in names if f"`{v}`" not in table]
    assert any("NOTIFICATIONS__SMTP__HOST" in v for v in names)  # the domains' sections count
    assert missing == []
