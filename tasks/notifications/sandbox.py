"""A Jinja2 sandbox with bounded work: output size, loop iterations and operator results.

Jinja's own sandbox keeps templates away from Python internals but not from the CPU: a
100-byte template can loop a billion times or print gigabytes. This one counts every loop
iteration (each `for`'s iterable is wrapped when the template is compiled), refuses `*` and
`**` whose result would be huge, refuses integer filter arguments beyond the output bound
(`center(10**9)`), and stops rendering a part once its output passes the bound.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from errors import SwitchyardError

MAX_LOOP_STEPS = 100_000  # iterations of every loop of one render together
MAX_EXPONENT = 64


class TemplateTooCostlyError(SwitchyardError):
    """Rendering would exceed a bound; the message says which (the caller names the field)."""

    status, code = 422, "template_too_costly"


_steps: ContextVar[list[int]] = ContextVar("template_loop_steps")


class _CountedLoops(CodeGenerator):
    """Compiles `{% for x in it %}` as `for x in environment.counted(it)`."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """Mark this loop's iterable, then generate the loop as Jinja does."""
        self._loop_iterables = [*getattr(self, "_loop_iterables", []), node.iter]
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        """Wrap a marked iterable in the counting call."""
        if any(node is it for it in getattr(self, "_loop_iterables", ())):
            self.write("environment.counted(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose renders stay within `max_chars` of output per part and bounded CPU."""

    code_generator_class = _CountedLoops
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, *, max_chars: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_chars = max_chars
        self.filters = {name: self._bounded(f) for name, f in self.filters.items()}

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Yield from `iterable`, charging each item to the current render's loop budget."""
        steps = _steps.get()
        for item in iterable:
            steps[0] += 1
            if steps[0] > MAX_LOOP_STEPS:
                raise TemplateTooCostlyError(f"loops ran more than {MAX_LOOP_STEPS} times")
            yield item

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`*` and `**`, refused when their result would be too large to render."""
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise TemplateTooCostlyError(f"exponents are limited to {MAX_EXPONENT}")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > self.max_chars:
                    raise TemplateTooCostlyError("a repetition exceeds the output bound")
        return super().call_binop(context, operator, left, right)

    def _bounded(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)  # keeps Jinja's pass_context & co. markers
        def bounded(*args: Any, **kwargs: Any) -> Any:
            for value in (*args, *kwargs.values()):
                if type(value) is int and abs(value) > self.max_chars:
                    raise TemplateTooCostlyError("a filter argument exceeds the output bound")
            return function(*args, **kwargs)

        return bounded

    def render_bounded(self, source: str, data: Mapping[str, Any]) -> str:
        """`source` rendered with `data`, or TemplateTooCostlyError."""
        token = _steps.set([0])
        try:
            out: list[str] = []
            size = 0
            for chunk in self.from_string(source).generate(**data):
                size += len(chunk)
                if size > self.max_chars:
                    raise TemplateTooCostlyError(f"output exceeds {self.max_chars} characters")
                out.append(chunk)
            return "".join(out)
        finally:
            _steps.reset(token)
