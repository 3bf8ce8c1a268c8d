"""The table a run prints: invariants, faults as they happened, restarts, the fuzzing pass."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from chaos.faults import Done
from chaos.invariants import Row
from chaos.stack import Exit


def _mark(ok: bool | None) -> str:
    return {True: "ok", False: "FAIL", None: ""}[ok]


def table(title: str, rows: Iterable[Row]) -> str:
    """Rows as an aligned text table: what, value, verdict, note."""
    rows = list(rows)
    width = max([len(r.name) for r in rows] + [10])
    lines = [f"{title}", f"  {'':<{width}}  {'value':>8}  {'':4}  note"]
    for r in rows:
        lines.append(f"  {r.name:<{width}}  {r.value!s:>8}  {_mark(r.ok):4}  {r.note}".rstrip())
    return "\n".join(lines)


def fault_lines(done: list[Done]) -> str:
    """The fault schedule as it ran."""
    lines = ["faults (seconds after the load started)"]
    lines += [f"  {d.at:6.1f}  {d.name:<40}  {d.result}" for d in done]
    return "\n".join(lines)


def restart_rows(exits: list[Exit]) -> list[Row]:
    """Restarts per process: after an injected kill, and after an exit of its own (code)."""
    injected = Counter(e.name for e in exits if e.injected)
    own = Counter((e.name, e.code, e.last_words) for e in exits if not e.injected)
    rows = [
        Row(
            "restarts after an injected kill -9",
            sum(injected.values()),
            note=", ".join(f"{k} x{v}" for k, v in sorted(injected.items())),
        ),
        Row("restarts after a process exited by itself", own.total()),
    ]
    rows += [
        Row(f"  {name} exited with code {code}", n, note=words)
        for (name, code, words), n in sorted(own.items())
    ]
    return rows


def verdict(failures: list[Row]) -> str:
    """The last line: PASS, or which invariants failed."""
    if not failures:
        return "chaos: PASS — every invariant held"
    return "chaos: FAIL — " + "; ".join(f"{r.name}: {r.value}" for r in failures)
