"""Alembic wiring: the config object, upgrades, and the "refuse an unmigrated database" check.

Migrations live in migrations/versions; a domain may keep its own version directory
(`Domain.migrations`, an Alembic branch), so the schema is at "heads" when every branch is.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from config import Settings, get_settings
from errors import SwitchyardError
from store.db import autocommit
from tasks.registry import domains

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class NotMigratedError(SwitchyardError):
    """The database lacks the schema this code needs."""

    code = "not_migrated"


def alembic_config(settings: Settings | None = None) -> Config:
    """An Alembic config pointing at our migrations, the domains' and the configured database."""
    settings = settings or get_settings()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    locations = [MIGRATIONS / "versions", *domains(settings).migrations]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    # migrations/env.py reads the domains from them, and connects through store.db with them.
    cfg.attributes["settings"] = settings
    return cfg


def upgrade(settings: Settings | None = None, revision: str = "heads") -> None:
    """Bring the database schema up to `revision` (every branch's head by default)."""
    command.upgrade(alembic_config(settings), revision)


def require_migrated(settings: Settings | None = None) -> None:
    """Refuse to run against a database that `switchyard migrate` has not brought up to date."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    heads = set(script.get_heads())
    with autocommit(settings) as session:
        conn = session.connection()
        current = set(MigrationContext.configure(conn).get_current_heads())
        has_jobs = inspect(conn).has_table("jobs")
    # A head another branch depends on (`depends_on`) is recorded only through its dependant.
    if not heads <= _applied(script, current) or not has_jobs:
        raise NotMigratedError(
            f"database is at revision {', '.join(sorted(current)) or 'none'}, code needs "
            f"{', '.join(sorted(heads))}: run `switchyard migrate` first"
        )


def _applied(script: ScriptDirectory, current: set[str]) -> set[str]:
    """Every revision the current heads imply: their ancestors and dependencies."""
    seen: set[str] = set()
    known = {r.revision for r in script.walk_revisions()}
    # A plugin's branch applied by another deployment (or a test) is not ours to resolve.
    todo = [r for r in current if r in known]
    while todo:
        rev = script.get_revision(todo.pop())
        if rev is None or rev.revision in seen:
            continue
        seen.add(rev.revision)
        for parents in (rev.down_revision, rev.dependencies):
            names = (parents,) if isinstance(parents, str) else parents or ()
            todo += [r.revision for r in script.get_revisions(names) if r is not None]
    return seen


def exit_unless_migrated() -> None:
    """For commands: exit 2 with the reason when the database is not migrated."""
    try:
        require_migrated()
    except NotMigratedError as exc:
        typer.secho(f"switchyard: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
