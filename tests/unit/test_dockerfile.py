"""The Dockerfile copies every top-level module and package the image runs (no Docker engine
here: the file is parsed, and the imports of what it copies are followed)."""

from __future__ import annotations

import ast
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copied() -> set[str]:
    """The top-level names the Dockerfile's `COPY` lines bring into the image's /app."""
    names: set[str] = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        words = shlex.split(line)
        if any(w.startswith("--from") for w in words):
            continue
        names.update(Path(source).name for source in words[1:-1])
    return names


def local(name: str) -> str | None:
    """The repository's top-level module or package file name that `name` imports, if any."""
    top = name.split(".")[0]
    if (ROOT / f"{top}.py").is_file():
        return f"{top}.py"
    if (ROOT / top / "__init__.py").is_file():
        return top
    return None


def imports_of(path: Path) -> set[str]:
    """The local top-level modules and packages `path` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(filter(None, map(local, names)))
    return found


def files_of(entry: str) -> list[Path]:
    path = ROOT / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_the_image_holds_every_module_the_app_imports() -> None:
    image = copied()
    needed, todo = set(), ["cli.py"]  # the image's entry point: `switchyard` is `cli:main`
    while todo:
        entry = todo.pop()
        if entry in needed:
            continue
        needed.add(entry)
        for path in files_of(entry):
            todo.extend(imports_of(path) - needed)
    assert needed - image == set(), f"imported by the app but not copied: {needed - image}"


def test_the_image_holds_everything_pyproject_installs() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = {f"{m}.py" for m in setuptools["py-modules"]}
    declared |= {p.rstrip("*") for p in setuptools["packages"]["find"]["include"]}
    assert declared - copied() == set(), "`pip install -e .` in the image misses these"
