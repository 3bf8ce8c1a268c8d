"""The chaos battery's payments invariants, judged on made-up runs: each definition can fail."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chaos.invariants import Row, failed
from chaos.payments_invariants import burst_rows, owner, payment_rows, recon_rows
from chaos.payments_ledger import IntentRow, OperationRow, PaymentSnapshot, ProviderIntent
from chaos.payments_load import Burst

CAPTURED = ("requires_payment_method", "processing", "requires_capture", "succeeded")


def intent(iid: str, status: str = "succeeded", **kw: Any) -> IntentRow:
    fields: dict[str, Any] = {
        "amount_capturable": 0,
        "amount_captured": 7_000,
        "amount_refunded": 1_000,
        "provider_ref": f"pi_at_{iid}",
        "history": CAPTURED if status == "succeeded" else ("requires_payment_method", status),
        **kw,
    }
    return IntentRow(iid, status, **fields)


def auth(iid: str, n: int = 1, status: str = "succeeded", attempt: int = 1) -> OperationRow:
    return OperationRow(f"op{n}_{iid}", iid, "authorize", status, attempt)


def theirs(iid: str, n: int = 1, status: str = "succeeded", **kw: Any) -> ProviderIntent:
    fields: dict[str, Any] = {
        "amount_capturable": 0,
        "amount_received": 7_000,
        "refunded": 1_000,
        "key": f"{iid}:authorize:op{n}_{iid}:1",
        **kw,
    }
    return ProviderIntent(f"pi_at_{iid}" if n == 1 else f"pi_{n}_{iid}", status, **fields)


def snap(
    intents: list[IntentRow], ops: list[OperationRow], provider: list[ProviderIntent], **kw: Any
) -> PaymentSnapshot:
    fields: dict[str, Any] = {"open_holds": {}, "imbalance": {}, **kw}
    return PaymentSnapshot({i.id: i for i in intents}, ops, provider=provider, **fields)


def judged(rows: list[Row]) -> dict[str, object]:
    return {r.name: r.value for r in failed(rows)}


def test_a_clean_run_holds_every_invariant() -> None:
    clean = snap(
        [
            intent("a"),
            intent("b", "canceled", provider_ref=None),
            intent("c", "failed", provider_ref=None),
        ],
        [auth("a"), auth("c", status="failed")],
        [theirs("a"), theirs("c", status="requires_payment_method", amount_received=0)],
    )
    assert failed(payment_rows(clean)) == []


def test_a_key_belongs_only_to_an_attempt_that_was_recorded() -> None:
    s = snap([intent("a")], [auth("a", attempt=2)], [])
    assert owner("a:authorize:op1_a:2", s) == "a"
    assert owner("a:authorize:op1_a:3", s) is None  # an attempt never recorded
    assert owner("b:authorize:op1_a:1", s) is None  # another intent's operation
    assert owner("a:capture:op1_a:1", s) is None
    assert owner("not a key", s) is None


def test_a_second_authorization_here_or_there_and_a_stray_charge_fail() -> None:
    twice_here = snap([intent("a")], [auth("a"), auth("a", 2)], [theirs("a")])
    twice_there = snap(
        [intent("a")], [auth("a"), auth("a", 2, status="failed")], [theirs("a"), theirs("a", 2)]
    )
    stray = snap([intent("a")], [auth("a")], [theirs("a"), theirs("x", key="x:authorize:y:1")])
    doubled = "intents with two successful authorizations"
    assert judged(payment_rows(twice_here)) == {doubled: 1}
    # the second one is also a charge nobody here knows of
    assert judged(payment_rows(twice_there))[doubled] == 1
    assert judged(payment_rows(stray)) == {"provider charges without a local attempt": 1}


def test_an_intent_not_terminal_or_that_left_its_terminal_state_fails() -> None:
    left = snap(
        [intent("a", "requires_capture", amount_capturable=3_000)],
        [auth("a")],
        [theirs("a", status="requires_capture", amount_capturable=3_000)],
        open_holds={"a": 3_000},
    )
    moved = snap(
        [intent("a", "succeeded", history=("processing", "canceled", "succeeded"))],
        [auth("a")],
        [theirs("a")],
    )
    name = "intents not in exactly one terminal state"
    assert judged(payment_rows(left)) == {name: 1}
    assert judged(payment_rows(moved)) == {name: 1}


def test_amounts_or_status_that_differ_from_the_providers_fail() -> None:
    name = "intents whose amounts differ from the provider's"
    for provider in (
        theirs("a", amount_received=8_000),
        theirs("a", refunded=0),
        theirs("a", status="canceled"),
    ):
        assert judged(payment_rows(snap([intent("a")], [auth("a")], [provider]))) == {name: 1}
    # canceled here without a provider ref, while the provider authorized it: unknown here
    unknown = snap(
        [intent("a", "canceled", provider_ref=None)],
        [auth("a")],
        [theirs("a", status="requires_capture", amount_received=0, refunded=0)],
    )
    assert judged(payment_rows(unknown)) == {name: 1}


def test_a_hold_left_open_after_its_authorization_ended_fails() -> None:
    rows = payment_rows(snap([intent("a")], [auth("a")], [theirs("a")], open_holds={"a": 2_000}))
    assert judged(rows) == {"open holds ≠ open authorizations": 1}


def test_an_unbalanced_ledger_fails() -> None:
    rows = payment_rows(snap([intent("a")], [auth("a")], [theirs("a")], imbalance={"USD": (5, 0)}))
    assert judged(rows) == {"ledger debits ≠ credits (currencies)": 1}


def burst_of(*ids: str) -> Burst:
    """A burst whose 50 creates were answered with `ids`, and whose 50 confirms all got 202."""
    return Burst("k", set(ids), Counter({"201": 50}), Counter({"202": 50}))


def test_the_burst_holds_with_one_intent_and_one_authorization() -> None:
    rows = burst_rows(burst_of("a"), snap([intent("a", flow="burst")], [auth("a")], [theirs("a")]))
    assert failed(rows) == []
    assert [r.note for r in rows] == [
        "201x50; 1 id(s) answered",
        "202x50; 1 at the provider",
    ]


def test_the_burst_fails_with_two_intents_or_two_authorizations() -> None:
    one = [intent("a", flow="burst")]
    two_made = snap([*one, intent("b", flow="burst")], [auth("a")], [theirs("a")])
    assert judged(burst_rows(burst_of("a"), two_made)) == {
        "50 concurrent same-key creates → intents": 2
    }
    # the creates named two intents, though only one is in the tables
    named_two = judged(burst_rows(burst_of("a", "b"), snap(one, [auth("a")], [theirs("a")])))
    assert named_two["50 concurrent same-key creates → intents"] == 1
    two_auths = snap(one, [auth("a"), auth("a", 2)], [theirs("a")])
    assert judged(burst_rows(burst_of("a"), two_auths)) == {
        "50 concurrent same-key confirms → authorizations": 2
    }
    # another flow's intent does not count as the burst's
    others = snap([*one, intent("b", flow="7")], [auth("a")], [theirs("a")])
    assert failed(burst_rows(burst_of("a"), others)) == []
    assert len(failed(burst_rows(Burst(), snap([], [], [])))) == 2  # no intent: nothing proved


def test_each_injected_mismatch_must_be_found_as_its_kind_and_nothing_else() -> None:
    injected = [("fee", "pi_1"), ("currency", "pi_2"), ("unexpected", "pi_unexpected_2")]
    right = [
        ("fee_mismatch", "pi_1"),
        ("currency_mismatch", "pi_2"),
        ("unexpected", "pi_unexpected_2"),
    ]
    assert failed(recon_rows(injected, [], right)) == []
    wrong_kind = [("over", "pi_1"), *right[1:]]
    assert judged(recon_rows(injected, [], wrong_kind)) == {
        "injected settlement mismatches not found (type, intent)": 1,
        "reconciliation false alarms": 1,
    }
    before = recon_rows(injected, [("missing", "pi_9")], right)
    assert judged(before) == {"reconciliation false alarms": 1}
    assert failed(recon_rows([], [], [])) != []  # nothing injected: nothing was proved
