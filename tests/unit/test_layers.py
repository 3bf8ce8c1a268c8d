"""The dependency direction of docs/architecture.md, checked on every module's imports."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from tasks.registry import BUILT_IN, domains

ROOT = Path(__file__).resolve().parents[2]
# Modules that may not name a specific domain: they loop over the declared ones.
CORE = [
    "config.py",
    "errors.py",
    "store",
    "workers",
    "producers/api/app.py",
    "tasks/registry.py",
    "tasks/enqueue.py",
    "tasks/context.py",
    "tasks/maintenance.py",
    "tasks/web",
    "migrations/env.py",
]


def modules(*places: str) -> Iterator[Path]:
    """Every Python file under `places`."""
    for place in places:
        path = ROOT / place
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending(paths: Iterator[Path], forbidden: tuple[str, ...]) -> list[str]:
    """`file: module` for each import of a forbidden package."""
    return [
        f"{p.name if not p.is_relative_to(ROOT) else p.relative_to(ROOT)}: {name}"
        for p in paths
        for name in sorted(imported(p))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


def test_store_imports_no_tasks_nor_anything_above_it() -> None:
    assert offending(modules("store"), ("tasks", "producers", "workers", "ops", "devstack")) == []


def test_tasks_import_neither_producers_nor_workers() -> None:
    assert offending(modules("tasks"), ("producers", "workers", "ops", "devstack")) == []


def test_only_the_command_line_imports_producers_and_workers() -> None:
    everything = [p for p in modules("store", "tasks", "producers", "workers", "migrations")]
    outside = offending(
        (p for p in everything if not p.is_relative_to(ROOT / "producers")), ("producers",)
    ) + offending((p for p in everything if not p.is_relative_to(ROOT / "workers")), ("workers",))
    assert outside == []


@pytest.mark.parametrize("domain", BUILT_IN)
def test_no_core_module_names_a_domain(domain: str) -> None:
    assert offending(modules(*CORE), (domain,)) == []
    name = domain.rsplit(".", 1)[1]
    mentions = [
        f"{p.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for p in modules(*CORE)
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value == name or node.value.startswith(f"{name}.") or f"{name}:" in node.value)
    ]
    assert mentions == []


def test_the_guard_sees_a_forbidden_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from tasks.notifications import models\n")
    assert offending(iter([bad]), ("tasks",)) == ["bad.py: tasks.notifications"]


def test_every_built_in_domain_is_declared() -> None:
    loaded = {d.name for d in domains(Settings()).domains}
    assert {m.rsplit(".", 1)[1] for m in BUILT_IN} == loaded
