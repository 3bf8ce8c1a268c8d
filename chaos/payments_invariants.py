"""The payments run's invariants, judged from the payments tables and the provider's truth.

Pure functions over what chaos.payments_ledger read, so the definitions are unit-tested.

A provider payment intent belongs to the local attempt named by its `switchyard_key` metadata
(`intent:kind:operation:attempt`, recorded before the call). It counts as an authorization
unless the provider declined it (`requires_payment_method`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from chaos.invariants import Row
from chaos.payments_ledger import TERMINAL, IntentRow, PaymentSnapshot, ProviderIntent
from chaos.payments_load import BURST_FLOW, Burst, Flow

DECLINED = "requires_payment_method"
# What the provider's status must be for each terminal status here (None: no provider intent)
AGREES: dict[str, set[str | None]] = {
    "succeeded": {"succeeded"},
    "canceled": {"canceled", None},
    "failed": {DECLINED, None},
    "requires_capture": {"requires_capture"},
}
# The settlement faults the simulator injects, and the exception kind each must produce.
EXPECTED_KIND = {
    "missing": "missing",
    "unexpected": "unexpected",
    "over": "over",
    "under": "under",
    "currency": "currency_mismatch",
    "fee": "fee_mismatch",
    "duplicate": "duplicate",
}


def owner(key: str, snap: PaymentSnapshot) -> str | None:
    """The local intent whose recorded attempt the key names (None: no such attempt)."""
    parts = key.split(":")
    if len(parts) != 4 or not parts[3].isdigit():
        return None
    intent_id, kind, op_id, attempt = parts
    return next(
        (
            intent_id
            for op in snap.operations
            if op.id == op_id and op.intent_id == intent_id and op.kind == kind
            and 1 <= int(attempt) <= op.attempt
        ),
        None,
    )  # fmt: skip


def _authorized_by_intent(snap: PaymentSnapshot) -> dict[str, list[ProviderIntent]]:
    found: dict[str, list[ProviderIntent]] = defaultdict(list)
    for p in snap.provider:
        local = owner(p.key, snap)
        if local is not None and p.status != DECLINED:
            found[local].append(p)
    return found


def _one_terminal(intent: IntentRow) -> bool:
    """Terminal, and never another status once its history first reached one."""
    if intent.status not in TERMINAL:
        return False
    first = next((n for n, s in enumerate(intent.history) if s in TERMINAL), None)
    return first is not None and all(s == intent.status for s in intent.history[first:])


def _disagreement(intent: IntentRow, provider: dict[str, ProviderIntent],
                  authorized: list[ProviderIntent]) -> str | None:  # fmt: skip
    """Why the intent's amounts or status differ from the provider's (None: they agree)."""
    theirs = provider.get(intent.provider_ref or "")
    if intent.provider_ref and theirs is None:
        return f"{intent.id}: provider has no {intent.provider_ref}"
    if theirs is None:
        if authorized:
            return f"{intent.id}: the provider authorized {authorized[0].id}, unknown here"
        return None
    if theirs.status not in AGREES.get(intent.status, {intent.status}):
        return f"{intent.id}: {intent.status} here, {theirs.status} there"
    pairs = (
        ("captured", intent.amount_captured, theirs.amount_received),
        ("refunded", intent.amount_refunded, theirs.refunded),
        ("capturable", intent.amount_capturable, theirs.amount_capturable),
    )
    wrong = [f"{what} {here}≠{there}" for what, here, there in pairs if here != there]
    return f"{intent.id}: {', '.join(wrong)}" if wrong else None


def _first(items: Iterable[str], n: int = 2) -> str:
    items = list(items)
    return "; ".join(items[:n]) + (f" (+{len(items) - n})" if len(items) > n else "")


def payment_rows(snap: PaymentSnapshot) -> list[Row]:
    """Authorizations, charges, terminal states, amounts against the truth, holds, books."""
    authorized = _authorized_by_intent(snap)
    local_auths = Counter(
        o.intent_id for o in snap.operations if o.kind == "authorize" and o.status == "succeeded"
    )
    doubled = sorted(
        i for i in snap.intents if local_auths[i] > 1 or len(authorized.get(i, [])) > 1
    )
    strays = [p.id for p in snap.provider if owner(p.key, snap) is None]
    not_terminal = [i for i in snap.intents.values() if not _one_terminal(i)]
    by_ref = {p.id: p for p in snap.provider}
    differ = [
        why
        for i in snap.intents.values()
        if (why := _disagreement(i, by_ref, authorized.get(i.id, []))) is not None
    ]
    holds = [
        f"{i.id}: held {snap.open_holds.get(i.id, 0)}, capturable {i.amount_capturable}"
        for i in snap.intents.values()
        if snap.open_holds.get(i.id, 0) != i.amount_capturable
    ]
    statuses = Counter(i.status for i in snap.intents.values())
    return [
        Row("intents with two successful authorizations", len(doubled), not doubled,
            _first(doubled)),
        Row("provider charges without a local attempt", len(strays), not strays,
            f"of {len(snap.provider)} at the provider"),
        Row("intents not in exactly one terminal state", len(not_terminal), not not_terminal,
            ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))),
        Row("intents whose amounts differ from the provider's", len(differ), not differ,
            _first(differ)),
        Row("open holds ≠ open authorizations", len(holds), not holds,
            _first(holds) or f"{sum(snap.open_holds.values())} held in all"),
        Row("ledger debits ≠ credits (currencies)", len(snap.imbalance), not snap.imbalance,
            ", ".join(sorted(snap.imbalance))),
        Row("unknown outcomes asked about again", snap.unknown_asked,
            note="operations whose answer was lost (janitor or retry asked with the same key)"),
        Row("provider webhook events recorded", snap.webhook_events.total(),
            note=", ".join(f"{k} {v}" for k, v in sorted(snap.webhook_events.items()))),
    ]  # fmt: skip


def flow_rows(flows: list[Flow], *, swept: int) -> list[Row]:
    """What the client saw: flows that reached their end, orphans the sweep canceled."""
    kinds = Counter(f.kind for f in flows)
    ended = Counter(f.kind for f in flows if f.finished)
    answers: Counter[str] = Counter()
    for f in flows:
        answers.update(f.answers)
    errors = ", ".join(f"{k}x{v}" for k, v in sorted(answers.items()) if k[0] != "2")
    return [
        Row("payment flows (intents driven by the client)", len(flows),
            note=", ".join(f"{k} {ended[k]}/{v}" for k, v in sorted(kinds.items()))),
        Row("payment requests answered other than 2xx", answers.total() - sum(
            v for k, v in answers.items() if k[0] == "2"), note=errors),
        Row("intents canceled by the sweep (client gave up)", swept),
    ]  # fmt: skip


def _counted(answers: Counter[str]) -> str:
    return ", ".join(f"{k}x{v}" for k, v in sorted(answers.items()))


def burst_rows(burst: Burst, snap: PaymentSnapshot) -> list[Row]:
    """BURST same-key creates: one intent, the one every answer named; BURST same-key
    confirms of it: one authorization, one provider intent."""
    made = [i.id for i in snap.intents.values() if i.flow == BURST_FLOW]
    one_intent = len(made) == 1 and burst.intent_id == made[0]
    ops = [o for o in snap.operations if o.intent_id == burst.intent_id and o.kind == "authorize"]
    theirs = _authorized_by_intent(snap).get(burst.intent_id or "", [])
    one_auth = burst.intent_id is not None and len(ops) == 1 and len(theirs) <= 1
    return [
        Row(f"{burst.created.total()} concurrent same-key creates → intents", len(made),
            one_intent, f"{_counted(burst.created)}; {len(burst.intent_ids)} id(s) answered"),
        Row(f"{burst.answers.total()} concurrent same-key confirms → authorizations", len(ops),
            one_auth, f"{_counted(burst.answers)}; {len(theirs)} at the provider"),
    ]  # fmt: skip


def recon_rows(
    injected: list[tuple[str, str]],
    baseline: list[tuple[str, str]],
    found: list[tuple[str, str]],
) -> list[Row]:
    """Each injected (fault, provider ref) found as its exception kind, and nothing else: not
    before the injection (`baseline`), not beside it (`found`, after)."""
    wanted = {(EXPECTED_KIND[fault], ref) for fault, ref in injected}
    missed = sorted(wanted - set(found))
    false = sorted(set(baseline) | (set(found) - wanted))
    return [
        Row("injected settlement mismatches not found (type, intent)", len(missed),
            bool(injected) and not missed,
            _first(f"{k} {r}" for k, r in missed) or
            f"{len(wanted)} injected: " + ", ".join(sorted({k for k, _ in wanted}))),
        Row("reconciliation false alarms", len(false), not false,
            _first(f"{k} {r}" for k, r in false) or
            f"{len(baseline)} before the injection"),
    ]  # fmt: skip
