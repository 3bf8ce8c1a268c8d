"""The payments ledger against the real PostgreSQL: transfers, holds, chains, limits, hot rows."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from config import Settings
from store.db import transaction
from tasks.payments import accounts, ledger
from tasks.payments.errors import (
    AccountMismatchError,
    ExceedsLimitError,
    ExceedsPendingError,
    HotAccountError,
    LinkedTransferError,
    PendingExpiredError,
    PendingResolvedError,
    TransferExistsError,
)
from tasks.payments.ledger import Account, Balance, HoldStatus, Kind, Limit, Transfer
from tests.support.ledger import clean_tables


@pytest.fixture
def books(settings: Settings) -> Iterator[Settings]:
    """Three USD accounts (one that must not go negative), a JPY one and a hot fee account."""
    with transaction(settings) as s:
        for account in (
            Account("bank", "USD"),
            Account("alice", "USD", Limit.DEBITS_MUST_NOT_EXCEED_CREDITS),
            Account("bob", "USD"),
            Account("yen", "JPY"),
            Account("fees", "USD", hot=True),
        ):
            accounts.open_account(s, account)
    yield settings
    clean_tables(settings, domain="payments")


def move(settings: Settings, *transfers: Transfer) -> list[bool]:
    with transaction(settings) as s:
        return ledger.create_transfers(s, transfers)


def bal(settings: Settings, account: str) -> Balance:
    with transaction(settings) as s:
        return ledger.balance(s, account)


def test_a_transfer_moves_both_sides_and_a_repeat_returns_the_original(books: Settings) -> None:
    t = Transfer("t1", debit="bank", credit="alice", amount=500, currency="USD")
    assert move(books, t) == [True]
    assert move(books, t) == [False]
    assert bal(books, "alice") == Balance(0, 0, 0, 500)
    assert bal(books, "bank") == Balance(0, 500, 0, 0)
    with pytest.raises(TransferExistsError):
        move(books, Transfer("t1", debit="bank", credit="alice", amount=501, currency="USD"))


def test_a_balance_limit_is_enforced_by_the_database(books: Settings) -> None:
    move(books, Transfer("in", debit="bank", credit="alice", amount=100, currency="USD"))
    with pytest.raises(ExceedsLimitError):
        move(books, Transfer("out", debit="alice", credit="bob", amount=101, currency="USD"))
    move(books, Transfer("out", debit="alice", credit="bob", amount=100, currency="USD"))
    assert bal(books, "alice") == Balance(0, 100, 0, 100)


def test_accounts_of_another_currency_are_refused(books: Settings) -> None:
    with pytest.raises(AccountMismatchError):
        move(books, Transfer("x", debit="yen", credit="bob", amount=1, currency="USD"))


def test_a_hold_is_posted_in_part_once_and_the_rest_released(books: Settings) -> None:
    move(
        books,
        Transfer("h", debit="bank", credit="bob", amount=1000, currency="USD", kind=Kind.PENDING),
    )
    assert bal(books, "bob") == Balance(0, 0, 1000, 0)
    post = Transfer("p", kind=Kind.POST, pending_id="h", amount=600)
    assert move(books, post) == [True]
    assert move(books, post) == [False]  # the same post again is the original
    assert bal(books, "bob") == Balance(0, 0, 0, 600)
    assert bal(books, "bank") == Balance(0, 600, 0, 0)
    with pytest.raises(PendingResolvedError):
        move(books, Transfer("v", kind=Kind.VOID, pending_id="h"))
    with transaction(books) as s:
        assert ledger.hold_status(s, "h") is HoldStatus.POSTED


def test_a_post_above_the_hold_is_refused_and_a_void_releases_it(books: Settings) -> None:
    move(
        books,
        Transfer("h", debit="bank", credit="bob", amount=10, currency="USD", kind=Kind.PENDING),
    )
    with pytest.raises(ExceedsPendingError):
        move(books, Transfer("p", kind=Kind.POST, pending_id="h", amount=11))
    move(books, Transfer("v", kind=Kind.VOID, pending_id="h"))
    assert bal(books, "bob") == Balance(0, 0, 0, 0)
    with transaction(books) as s:
        assert ledger.hold_status(s, "h") is HoldStatus.VOIDED


def test_a_hold_past_its_timeout_expires_and_cannot_be_posted(books: Settings) -> None:
    move(
        books,
        Transfer(
            "h", debit="bank", credit="bob", amount=10, currency="USD", kind=Kind.PENDING, timeout=0
        ),
    )
    with pytest.raises(PendingExpiredError):
        move(books, Transfer("p", kind=Kind.POST, pending_id="h"))
    with transaction(books) as s:
        assert ledger.expire_pending(s) == 1
    with transaction(books) as s:
        assert ledger.expire_pending(s) == 0
        assert ledger.hold_status(s, "h") is HoldStatus.EXPIRED
    assert bal(books, "bank") == Balance(0, 0, 0, 0)


def test_a_linked_chain_commits_all_or_nothing(books: Settings) -> None:
    good = Transfer("a", debit="bank", credit="alice", amount=50, currency="USD")
    bad = Transfer("b", debit="alice", credit="bob", amount=80, currency="USD")
    with pytest.raises(LinkedTransferError) as failed:
        move(books, good, bad)
    assert failed.value.index == 1 and isinstance(failed.value.cause, ExceedsLimitError)
    assert bal(books, "alice") == Balance(0, 0, 0, 0)
    ok = Transfer("b", debit="alice", credit="bob", amount=50, currency="USD")
    assert move(books, good, ok) == [True, True]


def test_the_database_refuses_an_unbalanced_commit(books: Settings) -> None:
    with pytest.raises(DBAPIError, match="unbalanced"), transaction(books) as s:
        s.execute(text("UPDATE pay_accounts SET credits_posted = 5 WHERE id = 'bob'"))
    assert bal(books, "bob") == Balance(0, 0, 0, 0)


def test_transfers_are_immutable(books: Settings) -> None:
    move(books, Transfer("t", debit="bank", credit="bob", amount=5, currency="USD"))
    with pytest.raises(DBAPIError, match="immutable"), transaction(books) as s:
        s.execute(text("UPDATE pay_transfers SET amount = 6"))
    with pytest.raises(DBAPIError, match="immutable"), transaction(books) as s:
        s.execute(text("DELETE FROM pay_transfers"))


def test_hot_entries_leave_only_into_their_balance(books: Settings) -> None:
    move(books, Transfer("f", debit="bob", credit="fees", amount=7, currency="USD"))
    with pytest.raises(DBAPIError, match="unbalanced in USD"), transaction(books) as s:
        s.execute(text("DELETE FROM pay_hot_entries"))
    with pytest.raises(DBAPIError, match="entries rows are immutable"), transaction(books) as s:
        s.execute(text("UPDATE pay_hot_entries SET credits = 8"))
    assert bal(books, "fees") == Balance(0, 0, 0, 7)
    with transaction(books) as s:
        assert ledger.roll_up_hot(s) == 1  # the one way out: deleted into the balance
    assert bal(books, "fees") == Balance(0, 0, 0, 7)


def test_a_hot_account_appends_entries_and_rolls_them_up(books: Settings) -> None:
    for i in range(3):
        move(books, Transfer(f"f{i}", debit="bob", credit="fees", amount=7, currency="USD"))
    assert bal(books, "fees") == Balance(0, 0, 0, 21)
    with transaction(books) as s:
        assert ledger.roll_up_hot(s) == 3
        count = s.execute(text("SELECT count(*) FROM pay_hot_entries")).scalar_one()
        row = s.execute(text("SELECT credits_posted FROM pay_accounts WHERE id='fees'")).one()
    assert (count, row[0]) == (0, 21)
    assert bal(books, "fees") == Balance(0, 0, 0, 21)
    with pytest.raises(HotAccountError):
        move(
            books,
            Transfer("hh", debit="bob", credit="fees", amount=1, currency="USD", kind=Kind.PENDING),
        )
    with transaction(books) as s:
        assert ledger.imbalance(s) == {}


def test_crossing_transfers_do_not_deadlock(books: Settings) -> None:
    move(books, Transfer("seed", debit="bank", credit="alice", amount=10_000, currency="USD"))
    errors: list[BaseException] = []

    def run(prefix: str, debit: str, credit: str) -> None:
        try:
            for i in range(40):
                move(
                    books,
                    Transfer(f"{prefix}{i}", debit=debit, credit=credit, amount=1, currency="USD"),
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=("ab", "alice", "bob")),
        threading.Thread(target=run, args=("ba", "bob", "alice")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert bal(books, "alice").credits_posted - bal(books, "alice").debits_posted == 10_000
