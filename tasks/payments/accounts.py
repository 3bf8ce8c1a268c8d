"""Ledger accounts: opened idempotently, any number in one statement; an account that exists
with other fields (currency, limit, hot) is refused."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from tasks.payments.errors import AccountMismatchError
from tasks.payments.ledger import Account, Limit

_OPEN_ACCOUNTS = text(
    # One round trip for any number of accounts: insert the missing ones, and return with each
    # account whether it was created and, if not, the fields it already had (the CTE's insert
    # is invisible to the outer SELECT, which sees only accounts that existed before).
    "WITH wanted AS (SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:currencies AS text[]),"
    " CAST(:dnec AS boolean[]), CAST(:cned AS boolean[]), CAST(:hot AS boolean[]))"
    " AS w (id, currency, dnec, cned, hot)),"
    " created AS (INSERT INTO pay_accounts (id, currency, debits_must_not_exceed_credits,"
    " credits_must_not_exceed_debits, hot) SELECT id, currency, dnec, cned, hot FROM wanted"
    " ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id)"
    " SELECT w.id, c.id IS NOT NULL, a.currency, a.debits_must_not_exceed_credits,"
    " a.credits_must_not_exceed_debits, a.hot FROM wanted w LEFT JOIN created c ON c.id = w.id"
    " LEFT JOIN pay_accounts a ON a.id = w.id"
)


def open_account(session: Session, account: Account) -> bool:
    """Create the account unless it exists with the same fields; True when created."""
    (created,) = open_accounts(session, [account])
    return created


def open_accounts(session: Session, accounts: Sequence[Account]) -> list[bool]:
    """`open_account` for each account, in one statement; True for each one created. An
    account that exists with other fields is refused (AccountMismatchError)."""
    rows = session.execute(
        _OPEN_ACCOUNTS,
        {
            "ids": [a.id for a in accounts],
            "currencies": [a.currency for a in accounts],
            "dnec": [a.limit is Limit.DEBITS_MUST_NOT_EXCEED_CREDITS for a in accounts],
            "cned": [a.limit is Limit.CREDITS_MUST_NOT_EXCEED_DEBITS for a in accounts],
            "hot": [a.hot for a in accounts],
        },
    ).all()
    found = {row[0]: row for row in rows}
    created = []
    for account in accounts:
        _, new, currency, dnec, cned, hot = found[account.id]
        if not new and _account(account.id, currency, dnec, cned, hot) != account:
            raise AccountMismatchError(f"account {account.id!r} exists with other fields")
        created.append(bool(new))
    return created


def _account(account_id: str, currency: str, dnec: bool, cned: bool, hot: bool) -> Account:
    limit = (
        Limit.DEBITS_MUST_NOT_EXCEED_CREDITS
        if dnec
        else Limit.CREDITS_MUST_NOT_EXCEED_DEBITS
        if cned
        else Limit.NONE
    )
    return Account(id=account_id, currency=currency.strip(), limit=limit, hot=hot)
