"""Every error Switchyard defines is rooted in `errors.SwitchyardError` with a status and code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections import defaultdict

import errors
from errors import SwitchyardError

# Every package and module of the product (migrations/ runs Alembic when imported).
PACKAGES = ("store", "tasks", "producers", "workers", "ops", "devstack")
MODULES = ("cli", "config", "errors", "logs")
CODE = re.compile(r"[a-z]+(_[a-z]+)*")


def _modules() -> list[str]:
    names = list(MODULES)
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        names += [m.name for m in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
    return names


def _defined_exceptions() -> list[type[BaseException]]:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found.append(cls)
    return found


def _subclasses(cls: type[SwitchyardError]) -> set[type[SwitchyardError]]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


def test_every_exception_class_derives_from_the_root() -> None:
    defined = _defined_exceptions()
    assert len(defined) > 20  # the walk found the codebase
    assert [c.__qualname__ for c in defined if not issubclass(c, SwitchyardError)] == []


def test_every_error_has_an_http_status_and_a_code_of_its_own() -> None:
    _defined_exceptions()  # imports every module, so that every subclass exists
    for cls in _subclasses(SwitchyardError):
        assert isinstance(cls.status, int) and 400 <= cls.status <= 599, cls
        assert isinstance(cls.code, str) and CODE.fullmatch(cls.code), cls
        assert cls.code != SwitchyardError.code, f"{cls} keeps the root's code"


def test_a_code_means_one_status() -> None:
    _defined_exceptions()
    statuses: dict[str, set[int]] = defaultdict(set)
    for cls in _subclasses(SwitchyardError) | {SwitchyardError}:
        statuses[cls.code].add(cls.status)
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}
    assert statuses["invalid_field"] == {errors.InvalidFieldError.status}
