"""Property: any sequence of transfers, holds, posts, voids and chains keeps the books sound."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from config import Settings
from store.db import transaction
from tasks.payments import accounts, ledger
from tasks.payments.errors import LedgerError
from tasks.payments.ledger import Account, Kind, Limit, Transfer
from tests.support.ledger import clean_tables

ACCOUNTS = ("a", "b", "c", "fees")
LIMITED = "a"  # debits must not exceed credits
op = st.one_of(
    st.tuples(
        st.just("posted"), st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), st.integers(1, 50)
    ),
    st.tuples(
        st.just("pending"),
        st.sampled_from(ACCOUNTS[:3]),
        st.sampled_from(ACCOUNTS[:3]),
        st.integers(1, 50),
    ),
    st.tuples(st.just("post"), st.integers(0, 20), st.integers(0, 60), st.none()),
    st.tuples(st.just("void"), st.integers(0, 20), st.none(), st.none()),
    st.tuples(
        st.just("chain"),
        st.sampled_from(ACCOUNTS[:3]),
        st.sampled_from(ACCOUNTS[:3]),
        st.integers(1, 50),
    ),
)


@hsettings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, max_size=25))
def test_any_sequence_keeps_debits_equal_to_credits_and_limits(
    settings: Settings, ops: list[tuple[str, Any, Any, int | None]]
) -> None:
    clean_tables(settings, domain="payments")
    with transaction(settings) as s:
        for name in ACCOUNTS:
            limit = Limit.DEBITS_MUST_NOT_EXCEED_CREDITS if name == LIMITED else Limit.NONE
            accounts.open_account(s, Account(name, "USD", limit, hot=name == "fees"))
    holds: list[str] = []
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # dp, dpo, cp, cpo
    pending: dict[str, tuple[str, str, int]] = {}
    for n, (kind, x, y, amount) in enumerate(ops):
        transfers: list[Transfer]
        if kind in ("posted", "pending", "chain"):
            if x == y:
                continue
            k = Kind.PENDING if kind == "pending" else Kind.POSTED
            transfers = [
                Transfer(
                    f"t{n}", debit=str(x), credit=str(y), amount=amount, currency="USD", kind=k
                )
            ]
            if kind == "chain":  # the second leg sends the same amount on, from the credited
                transfers.append(
                    Transfer(f"t{n}b", debit=str(y), credit=str(x), amount=1, currency="USD")
                )
        else:
            if not holds:
                continue
            hold = holds[int(x) % len(holds)]
            part = None if y is None else int(y)
            transfers = [Transfer(f"t{n}", kind=Kind(kind), pending_id=hold, amount=part)]
        try:
            with transaction(settings) as s:
                ledger.create_transfers(s, transfers)
        except LedgerError:
            pass
        else:
            for t in transfers:
                _apply_model(t, expected, pending, holds)
        with transaction(settings) as s:
            assert ledger.imbalance(s) == {}
            for name in ACCOUNTS:
                b = ledger.balance(s, name)
                got = [b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted]
                assert got == expected[name], name
            a = ledger.balance(s, LIMITED)
            assert a.debits_pending + a.debits_posted <= a.credits_posted
    clean_tables(settings, domain="payments")


def _apply_model(
    t: Transfer,
    expected: dict[str, list[int]],
    pending: dict[str, tuple[str, str, int]],
    holds: list[str],
) -> None:
    if t.kind is Kind.POSTED:
        expected[t.debit or ""][1] += t.amount or 0
        expected[t.credit or ""][3] += t.amount or 0
    elif t.kind is Kind.PENDING:
        expected[t.debit or ""][0] += t.amount or 0
        expected[t.credit or ""][2] += t.amount or 0
        pending[t.id] = (t.debit or "", t.credit or "", t.amount or 0)
        holds.append(t.id)
    else:
        debit, credit, held = pending.pop(t.pending_id or "")
        holds.remove(t.pending_id or "")
        expected[debit][0] -= held
        expected[credit][2] -= held
        if t.kind is Kind.POST:
            posted = held if t.amount is None else t.amount
            expected[debit][1] += posted
            expected[credit][3] += posted
