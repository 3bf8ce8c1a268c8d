"""Templates: sandboxed Jinja2, autoescaped HTML, versioned rows; missing variables are named."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta
from jinja2.exceptions import SecurityError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from errors import InvalidFieldError, NotFoundError
from tasks.notifications.models import NotificationTemplate
from tasks.notifications.sandbox import BoundedEnvironment, TemplateTooCostlyError

PARTS = ("subject", "text", "html")
DEFAULT_MAX_CHARS = 262_144  # NotificationSettings.template_max_chars's default
# What a sandboxed render raises from template content or data, besides the sandbox's own
# bounds: Jinja's errors, `range` past MAX_RANGE (OverflowError), `1/0`, `'a' + 1`, a macro
# recursing without end, `{% include %}` without a loader (TypeError), an allocation that fails.
RENDER_ERRORS = (
    TemplateError,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    RuntimeError,
    MemoryError,
)


class TemplateNotFoundError(NotFoundError):
    """No live template of that name (and version)."""

    code = "template_not_found"

    def __init__(self, name: str, *, version: int | None = None) -> None:
        suffix = f" version {version}" if version is not None else ""
        super().__init__(f"no template {name!r}{suffix}")


@dataclass(frozen=True)
class Rendered:
    """A template's parts with the data filled in."""

    subject: str | None
    text: str | None
    html: str | None


@functools.cache
def _env(part: str, max_chars: int = DEFAULT_MAX_CHARS) -> BoundedEnvironment:
    return BoundedEnvironment(
        max_chars=max_chars, undefined=StrictUndefined, autoescape=part == "html"
    )


@functools.lru_cache(maxsize=256)
def _undeclared(part: str, source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_env(part).parse(source)))


def variables(parts: Mapping[str, str | None]) -> list[str]:
    """Every variable the parts use; InvalidFieldError naming the part if one does not parse."""
    names: set[str] = set()
    for part, source in parts.items():
        if source is None:
            continue
        try:
            names |= _undeclared(part, source)
        except TemplateSyntaxError as exc:
            raise InvalidFieldError(f"line {exc.lineno}: {exc.message}", field=part) from exc
        except RecursionError as exc:
            raise InvalidFieldError("nested too deeply to parse", field=part) from exc
    return sorted(names)


def render(
    parts: Mapping[str, str | None],
    data: Mapping[str, Any],
    *,
    field: str,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Rendered:
    """Fill the parts with `data`; a missing variable is InvalidFieldError on `field.<name>`,
    a render past the bounds (`max_chars` per part, loop steps, CPU time: see sandbox.py) or
    failing (RENDER_ERRORS) InvalidFieldError on `field`, an unsafe or unparsable part one on
    the part."""
    missing = [name for name in variables(parts) if name not in data]
    if missing:
        raise InvalidFieldError(
            f"missing template variable {missing[0]!r}", field=f"{field}.{missing[0]}"
        )
    out: dict[str, str | None] = {}
    for part in PARTS:
        source = parts.get(part)
        if source is None:
            out[part] = None
            continue
        try:
            out[part] = _env(part, max_chars).render_bounded(source, data)
        except TemplateTooCostlyError as exc:
            raise InvalidFieldError(f"{part}: {exc}", field=field) from exc
        except UndefinedError as exc:
            raise InvalidFieldError(f"{part}: {exc.message}", field=field) from exc
        except SecurityError as exc:
            raise InvalidFieldError(f"{part}: unsafe template: {exc}", field=part) from exc
        except TemplateSyntaxError as exc:
            raise InvalidFieldError(f"line {exc.lineno}: {exc.message}", field=part) from exc
        except RENDER_ERRORS as exc:
            detail = f"{part}: rendering failed: {type(exc).__name__}: {exc}"
            raise InvalidFieldError(detail[:500], field=field) from exc
    return Rendered(subject=out["subject"], text=out["text"], html=out["html"])


def parts_of(row: NotificationTemplate) -> dict[str, str | None]:
    """A stored template's parts by name."""
    return {"subject": row.subject, "text": row.text_body, "html": row.html_body}


def save_template(
    session: Session,
    name: str,
    *,
    producer: str,
    parts: Mapping[str, str | None],
    sample_data: Mapping[str, Any] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> NotificationTemplate:
    """Store a new version of `name` after checking it parses (and renders `sample_data`)."""
    if not any(parts.get(p) for p in PARTS):
        raise InvalidFieldError(
            "a template needs at least one of subject, text, html", field="text"
        )
    variables(parts)
    if sample_data is not None:
        render(parts, sample_data, field="sample_data", max_chars=max_chars)
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"tpl:{producer}:{name}"))))
    latest = session.scalar(
        select(func.max(NotificationTemplate.version)).where(
            NotificationTemplate.producer == producer, NotificationTemplate.name == name
        )
    )
    row = NotificationTemplate(
        producer=producer,
        name=name,
        version=(latest or 0) + 1,
        subject=parts.get("subject"),
        text_body=parts.get("text"),
        html_body=parts.get("html"),
    )
    session.add(row)
    session.flush()
    return row


def find_template(
    session: Session, name: str, *, producer: str, version: int | None = None
) -> NotificationTemplate:
    """The newest live version of `name` (or exactly `version`)."""
    stmt = select(NotificationTemplate).where(
        NotificationTemplate.producer == producer,
        NotificationTemplate.name == name,
        NotificationTemplate.deleted_at.is_(None),
    )
    if version is not None:
        stmt = stmt.where(NotificationTemplate.version == version)
    row = session.scalars(stmt.order_by(NotificationTemplate.version.desc()).limit(1)).first()
    if row is None:
        raise TemplateNotFoundError(name, version=version)
    return row


def list_templates(session: Session, *, producer: str) -> list[NotificationTemplate]:
    """The newest live version of every template, by name."""
    rows = session.scalars(
        select(NotificationTemplate)
        .where(NotificationTemplate.producer == producer, NotificationTemplate.deleted_at.is_(None))
        .order_by(NotificationTemplate.name, NotificationTemplate.version.desc())
        .distinct(NotificationTemplate.name)
    )
    return list(rows)


def delete_template(session: Session, name: str, *, producer: str) -> None:
    """Retire every version of `name` (sent notifications keep their rendered copy), or
    TemplateNotFoundError if it has no live version."""
    moved = session.execute(
        update(NotificationTemplate)
        .where(
            NotificationTemplate.producer == producer,
            NotificationTemplate.name == name,
            NotificationTemplate.deleted_at.is_(None),
        )
        .values(deleted_at=func.now())
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        raise TemplateNotFoundError(name)
