"""A Jinja2 sandbox with bounded work: output size, loop iterations, CPU time and value sizes.

Jinja's own sandbox keeps templates away from Python internals but not from the CPU or the
memory: a 100-byte template can loop a billion times, print gigabytes or build them in one
call. This one bounds every render of one part by:

- loop steps: every `for` iteration of the render together, at most MAX_LOOP_STEPS (each
  `for`'s iterable is wrapped when the template is compiled);
- CPU time: at most MAX_RENDER_SECONDS of this thread's CPU, checked at every loop step,
  call, filter and intercepted operator (so a busy machine does not fail a cheap render);
- output: at most `max_chars` characters;
- values: whatever a call, a filter, `+`, `*` or `~` produces, and a list, dict or set a
  method changed in place, weighs at most `max_chars` (characters of strings and items of
  containers, counted through nested containers); integers stay within MAX_INT_BITS;
- work before the result exists: integer arguments and format widths/precisions (`%`,
  `|format`, `str.format`) at most `max_chars`; `**` exponents at most MAX_EXPONENT; and the
  two largest sizes handed to a string method or to `replace`, `join`, `wordwrap`, `indent`
  or `trim` (string lengths, a joined sequence's length, `indent`/`expandtabs` widths by
  line/tab count) multiply to at most MAX_WORK_FACTOR times `max_chars`, so none goes
  quadratic.

`lipsum` is not offered (a notification has no use for it, and it has no size bound).
A bound passed raises TemplateTooCostlyError; the caller names the field.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from errors import SwitchyardError

MAX_LOOP_STEPS = 100_000  # iterations of every loop of one render together
MAX_EXPONENT = 64
MAX_RENDER_SECONDS = 1.0  # CPU seconds (this thread's) for one part
MAX_INT_BITS = 16_384  # ~4,900 digits, past what Python prints anyway
MAX_WORK_FACTOR = 64  # size x size handed to one call, in multiples of max_chars
COMPILED_CACHE = 256  # compiled sources kept per environment

_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_QUADRATIC = frozenset({"replace", "join", "wordwrap", "indent", "trim"})  # filters
_MUTATORS = frozenset(
    {"append", "extend", "insert", "update", "setdefault", "add", "__setitem__", "__iadd__"}
)


class TemplateTooCostlyError(SwitchyardError):
    """Rendering would exceed a bound; the message says which (the caller names the field)."""

    status, code = 422, "template_too_costly"


class _Budget:
    """One render's loop steps and CPU deadline."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.thread_time() + MAX_RENDER_SECONDS


_budget: ContextVar[_Budget] = ContextVar("template_budget")


def _tick() -> None:
    budget = _budget.get(None)  # None while compiling: constant folding gives up on errors
    if budget is not None and time.thread_time() > budget.deadline:
        raise TemplateTooCostlyError(f"rendering took more than {MAX_RENDER_SECONDS} s of CPU")


def _weight(value: Any, limit: int) -> int:
    """Characters and container items in `value`, counting stops once past `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1 + len(item)
            stack.extend(item)
        elif isinstance(item, range):
            total += 1 + len(item)
        else:
            total += 1
    return total


class _CountedLoops(CodeGenerator):
    """Compiles `{% for x in it %}` as `for x in environment.counted(it)`, `a ~ b` as
    `environment.sized(a ~ b)`."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """Mark this loop's iterable, then generate the loop as Jinja does."""
        self._loop_iterables = [*getattr(self, "_loop_iterables", []), node.iter]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """Generate the concatenation as Jinja does, checked by size."""
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")

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
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, *, max_chars: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_chars = max_chars
        self.globals.pop("lipsum", None)
        # Jinja caches only what a loader loads: compile each source once, not per render.
        self._compiled = functools.lru_cache(maxsize=COMPILED_CACHE)(self.from_string)
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """Yield from `iterable`, charging each item to the current render's loop budget."""
        budget = _budget.get()
        for item in iterable:
            budget.steps += 1
            if budget.steps > MAX_LOOP_STEPS:
                raise TemplateTooCostlyError(f"loops ran more than {MAX_LOOP_STEPS} times")
            _tick()
            yield item

    def sized(self, value: Any) -> Any:
        """`value`, or TemplateTooCostlyError if it weighs more than the output bound."""
        if type(value) is int and value.bit_length() > MAX_INT_BITS:
            raise TemplateTooCostlyError(f"integers are limited to {MAX_INT_BITS} bits")
        if _weight(value, self.max_chars) > self.max_chars:
            raise TemplateTooCostlyError("a value exceeds the output bound")
        return value

    def _check_args(
        self, args: Iterable[Any], *, product: bool = False, widths: Iterable[Any] = ()
    ) -> None:
        """Refuse integer arguments past the bound and, with `product`, sizes whose product
        passes the work bound."""
        sizes = [abs(w) for w in widths if type(w) is int]
        for value in args:
            if type(value) is int and abs(value) > self.max_chars:
                raise TemplateTooCostlyError("an argument exceeds the output bound")
            if product and isinstance(value, str | list | tuple | dict):
                sizes.append(len(value))
        sizes.sort()
        if len(sizes) >= 2 and sizes[-1] * sizes[-2] > MAX_WORK_FACTOR * self.max_chars:
            raise TemplateTooCostlyError("a call would do more work than the output bound allows")

    def _check_printf(self, fmt: str, values: Any) -> None:
        for match in _PRINTF.finditer(fmt):
            for number in match.groups():
                if number and number.isdigit() and int(number) > self.max_chars:
                    raise TemplateTooCostlyError("a format width exceeds the output bound")
        self._check_args(values if isinstance(values, tuple) else (values,))

    def _check_format_spec(self, fmt: str) -> None:
        try:
            specs = [spec for _, _, spec, _ in string.Formatter().parse(fmt) if spec]
        except ValueError:
            return  # str.format reports it
        for spec in specs:
            if any(int(n) > self.max_chars for n in re.findall(r"\d+", spec)):
                raise TemplateTooCostlyError("a format width exceeds the output bound")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Jinja's safe `str.format`, refusing widths past the output bound."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            self._check_format_spec(str(value.__self__))
        return wrapped

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`*`, `**`, `+` and `%`, refused when their result would be too large to render."""
        _tick()
        ints = type(left) is int and type(right) is int
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise TemplateTooCostlyError(f"exponents are limited to {MAX_EXPONENT}")
        if operator == "**" and ints and left.bit_length() * abs(right) > MAX_INT_BITS:
            raise TemplateTooCostlyError(f"integers are limited to {MAX_INT_BITS} bits")
        if operator == "*":
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateTooCostlyError(f"integers are limited to {MAX_INT_BITS} bits")
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > self.max_chars:
                    raise TemplateTooCostlyError("a repetition exceeds the output bound")
        if operator == "%" and isinstance(left, str):
            self._check_printf(left, right)
        return self.sized(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """A call from the template, its arguments and result held to the bounds."""
        _tick()
        owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        widths: list[int] = []
        if isinstance(owner, str) and name == "expandtabs" and args:
            widths = [owner.count("\t") or 1, args[0]] if type(args[0]) is int else []
        if isinstance(owner, str) and name == "join" and args and not isinstance(args[0], str):
            args = (list(args[0]), *args[1:])
        if isinstance(owner, str):  # a string method: sizes may multiply
            self._check_args((owner, *args, *kwargs.values()), product=True, widths=widths)
        else:
            self._check_args((*args, *kwargs.values()))
        result = super().call(context, obj, *args, **kwargs)
        if name in _MUTATORS and isinstance(owner, list | dict | set):
            self.sized(owner)
        return self.sized(result)

    def _bounded(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)  # keeps Jinja's pass_context & co. markers
        def bounded(*args: Any, **kwargs: Any) -> Any:
            _tick()
            plain = [a for a in args if not isinstance(a, EvalContext | Context)]
            widths: list[int] = []
            if name == "join" and plain and not isinstance(plain[0], str | list | tuple):
                listed = list(plain[0])
                args = tuple(listed if a is plain[0] else a for a in args)
                plain[0] = listed
            if name == "indent" and plain:
                width = kwargs.get("width", plain[1] if len(plain) > 1 else 4)
                lines = str(plain[0]).count("\n") + 1
                widths = [lines, width if type(width) is int else len(str(width))]
            if name == "format" and plain and isinstance(plain[0], str):
                self._check_printf(plain[0], ())
            self._check_args((*plain, *kwargs.values()), product=name in _QUADRATIC, widths=widths)
            return self.sized(function(*args, **kwargs))

        return bounded

    def render_bounded(self, source: str, data: Mapping[str, Any]) -> str:
        """`source` rendered with `data`, or TemplateTooCostlyError."""
        token = _budget.set(_Budget())
        try:
            out: list[str] = []
            size = 0
            for chunk in self._compiled(source).generate(**data):
                size += len(chunk)
                if size > self.max_chars:
                    raise TemplateTooCostlyError(f"output exceeds {self.max_chars} characters")
                out.append(chunk)
            return "".join(out)
        finally:
            _budget.reset(token)
