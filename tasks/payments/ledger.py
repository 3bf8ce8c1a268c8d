"""The double-entry ledger: accounts, immutable transfers, holds, linked chains, hot accounts.

TigerBeetle's semantics on PostgreSQL. The SQL (tasks/payments/sql/ledger.sql) does the work
and the database enforces the invariants: one amount debited and credited per transfer, both
accounts in its currency (composite foreign keys), balance limits (CHECK constraints), a hold
resolved at most once (unique index), transfers immutable (trigger), and debits = credits per
currency at every commit (a deferred constraint trigger). This module maps it to Python.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from errors import InvalidFieldError
from tasks.payments.errors import (
    AccountMismatchError,
    ExceedsLimitError,
    ExceedsPendingError,
    HotAccountError,
    LedgerError,
    LinkedTransferError,
    PendingExpiredError,
    PendingNotFoundError,
    PendingResolvedError,
    TransferExistsError,
    TransferMismatchError,
)

MAX_AMOUNT = 2**63 - 1


class Kind(StrEnum):
    """What a transfer does."""

    POSTED = "posted"  # single phase
    PENDING = "pending"  # a hold
    POST = "post"  # posts a hold, in full or in part (the rest is released)
    VOID = "void"  # releases a hold


class Limit(StrEnum):
    """An account's balance limit."""

    NONE = "none"
    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class HoldStatus(StrEnum):
    """Where a pending transfer stands."""

    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Account:
    """An account in one currency; `hot` accounts take posted amounts without a row lock."""

    id: str
    currency: str
    limit: Limit = Limit.NONE
    hot: bool = False


@dataclass(frozen=True)
class Transfer:
    """A transfer request; a post or void may leave accounts, currency and amount to its hold."""

    id: str
    debit: str | None = None
    credit: str | None = None
    amount: int | None = None
    currency: str | None = None
    kind: Kind = Kind.POSTED
    pending_id: str | None = None
    code: str | None = None
    timeout: float | None = None  # seconds a hold lives before it expires


@dataclass(frozen=True)
class Balance:
    """An account's four balances (a hot account's unrolled entries included)."""

    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


_SQLSTATES: dict[str, type[LedgerError]] = {
    "PY001": TransferExistsError,
    "PY002": PendingNotFoundError,
    "PY003": PendingResolvedError,
    "PY004": ExceedsPendingError,
    "PY005": PendingExpiredError,
    "PY007": TransferMismatchError,
    "PY008": HotAccountError,
    "23503": AccountMismatchError,
    "23505": PendingResolvedError,  # two resolutions of one hold raced: the index caught it
}
_TRANSFER = text(
    "SELECT pay_transfer(:id, :kind, :debit, :credit, :amount, :currency, :pending_id, :code,"
    " :timeout)"
)


def _refuse_bad(transfer: Transfer) -> None:
    for name in ("id", "debit", "credit", "pending_id", "code"):
        value = getattr(transfer, name)
        if value is not None and (not value or "\x00" in value or len(value) > 200):
            raise InvalidFieldError(f"{name} must be 1-200 characters", field=name)
    amount = transfer.amount
    if amount is not None and (type(amount) is not int or not 0 <= amount <= MAX_AMOUNT):
        raise InvalidFieldError("amount must be an integer of minor units", field="amount")
    if transfer.kind in (Kind.POSTED, Kind.PENDING):
        if transfer.debit is None or transfer.credit is None or transfer.currency is None:
            raise InvalidFieldError("debit, credit and currency are required", field="id")
        if not amount:
            raise InvalidFieldError("amount must be positive", field="amount")
    elif transfer.pending_id is None:
        raise InvalidFieldError("a post or void names its pending_id", field="pending_id")


def _ledger_error(exc: DBAPIError) -> LedgerError | None:
    state = getattr(exc.orig, "sqlstate", None)
    diag = getattr(exc.orig, "diag", None)
    message = str((diag and diag.message_primary) or exc.orig)
    if state == "23514":  # a CHECK on pay_accounts: a balance limit
        return ExceedsLimitError(message)
    kind = _SQLSTATES.get(state or "")
    return kind(message) if kind else None


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        mapped = _ledger_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


def create_transfers(session: Session, transfers: Sequence[Transfer]) -> list[bool]:
    """Apply the transfers as one linked chain, all or nothing; True per transfer created.

    A repeat with the same fields is not applied again (False); with other fields it is
    refused. A chain's accounts are locked first, in id order, so chains cannot deadlock.
    """
    for transfer in transfers:
        _refuse_bad(transfer)
    if len(transfers) == 1:
        with _mapped():
            return [_apply(session, transfers[0])]
    accounts = sorted({a for t in transfers for a in (t.debit, t.credit) if a is not None})
    created: list[bool] = []
    with session.begin_nested():
        session.execute(
            text(
                "SELECT 1 FROM pay_accounts WHERE id = ANY(:ids) AND NOT hot ORDER BY id"
                " FOR NO KEY UPDATE"
            ),
            {"ids": accounts},
        )
        for index, transfer in enumerate(transfers):
            try:
                with _mapped():
                    created.append(_apply(session, transfer))
            except LedgerError as exc:
                raise LinkedTransferError(index, exc) from exc
    return created


def _apply(session: Session, transfer: Transfer) -> bool:
    outcome = session.execute(
        _TRANSFER,
        {
            "id": transfer.id,
            "kind": transfer.kind.value,
            "debit": transfer.debit,
            "credit": transfer.credit,
            "amount": transfer.amount,
            "currency": transfer.currency,
            "pending_id": transfer.pending_id,
            "code": transfer.code,
            "timeout": transfer.timeout,
        },
    ).scalar_one()
    return bool(outcome == "created")


def balance(session: Session, account_id: str) -> Balance:
    """The account's balances, with a hot account's entries not yet rolled up."""
    row = session.execute(
        text(
            "SELECT a.debits_pending, a.debits_posted + coalesce(h.d, 0), a.credits_pending,"
            " a.credits_posted + coalesce(h.c, 0) FROM pay_accounts a LEFT JOIN LATERAL"
            " (SELECT sum(debits) AS d, sum(credits) AS c FROM pay_hot_entries"
            "  WHERE account_id = a.id) h ON a.hot WHERE a.id = :id"
        ),
        {"id": account_id},
    ).one()
    return Balance(*(int(v) for v in row))


def hold_status(session: Session, pending_id: str) -> HoldStatus:
    """Whether the hold is still pending, or was posted, voided or expired."""
    row = session.execute(
        text("SELECT kind, code FROM pay_transfers WHERE pending_id = :id"), {"id": pending_id}
    ).first()
    if row is None:
        return HoldStatus.PENDING
    if row.kind == Kind.POST:
        return HoldStatus.POSTED
    return HoldStatus.EXPIRED if row.code == "expired" else HoldStatus.VOIDED


def expire_pending(session: Session, *, limit: int = 500) -> int:
    """Void holds whose timeout passed (ids `expire:<hold>`); how many were expired."""
    return int(session.execute(text("SELECT pay_expire_pending(:n)"), {"n": limit}).scalar_one())


def roll_up_hot(session: Session) -> int:
    """Fold every hot account's entries into its balances; how many entries were folded."""
    ids = session.scalars(text("SELECT id FROM pay_accounts WHERE hot ORDER BY id")).all()
    return sum(
        int(session.execute(text("SELECT pay_roll_up_hot(:id)"), {"id": i}).scalar_one())
        for i in ids
    )


def net_by_currency(session: Session) -> dict[str, tuple[int, int]]:
    """Net debits minus credits (posted, pending) of every currency the ledger holds."""
    rows = session.execute(text("SELECT currency, posted, pending FROM pay_ledger_imbalance()"))
    return {r.currency: (r.posted, r.pending) for r in rows}


def imbalance(session: Session) -> dict[str, tuple[int, int]]:
    """The currencies of `net_by_currency` that are not zero: {} when sound."""
    return {cur: net for cur, net in net_by_currency(session).items() if any(net)}
