"""The provider's payouts, booked from its settlement report.

Each payout line of the staged report (type `payout`, a negative amount, its ref the payout
`po_…`) becomes one transfer `payout:<ref>`, code `payout`, from the provider's account
`provider:<CUR>` (what the provider owes us) to the bank account `payouts:<CUR>` (what it
paid to us): the books show what the provider paid out. The transfer's id makes it
idempotent: a report imported again books nothing new.

A payout is the provider's word: one larger than what `provider:<CUR>` says it owes is still
booked (that account has no limit, and goes below zero), since the money is in the bank; the
difference shows in the provider's balance, and in the report's other lines' exceptions.

What cannot be booked is a typed exception instead (`settlement.Mismatch`): a payout seen
with two amounts in the report, or with an amount other than the one booked before
(`duplicate`); in two currencies, in one other than the one booked before, or in a currency
with no `provider:<CUR>` account, i.e. one we never took money in (`currency_mismatch`); and
a payout line that pays nothing out (`unexpected`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from tasks.payments import accounts, ledger
from tasks.payments.ledger import Account, Transfer
from tasks.payments.settlement import Kind, Mismatch

# Per payout (a line with no ref is named by its own id): its currencies and amounts paid
# out (positive), whether the provider's account exists, and the transfer booked before.
PAYOUTS = text("""
SELECT p.*, EXISTS (SELECT 1 FROM pay_accounts a WHERE a.id = 'provider:' || p.currency)
    AS account,
  t.amount AS booked, t.currency::text AS booked_currency
FROM (
  SELECT coalesce(nullif(provider_ref, ''), id) AS ref, min(currency) AS currency,
    max(currency) AS top_currency, min(-amount) AS amount, max(-amount) AS top_amount
  FROM pay_settlement_lines WHERE kind = 'payout' GROUP BY 1
) p LEFT JOIN pay_transfers t ON t.id = 'payout:' || p.ref
ORDER BY p.ref
""")


def transfer_id(ref: str) -> str:
    """The ledger transfer of the payout `ref`."""
    return f"payout:{ref}"


def book(session: Session) -> tuple[int, list[Mismatch]]:
    """Book the staged report's payouts not booked yet; how many were booked, and the
    payouts that could not be, as typed differences."""
    booked = 0
    found: list[Mismatch] = []
    for p in session.execute(PAYOUTS):
        problem = _problem(p)
        if problem is not None:
            found.append(problem)
        elif p.booked is None:
            _transfer(session, p.ref, currency=p.currency, amount=int(p.amount))
            booked += 1
    return booked, found


def _problem(payout: Row[Any]) -> Mismatch | None:
    """Why the payout (a row of PAYOUTS) cannot be booked, or was booked otherwise, if so."""
    ref, currency, amount, booked = payout.ref, payout.currency, payout.amount, payout.booked
    top_currency, top_amount, account = payout.top_currency, payout.top_amount, payout.account
    booked_currency = payout.booked_currency
    if currency != top_currency:
        return Mismatch(Kind.CURRENCY, ref, detail=f"payout in [{currency}, {top_currency}]")
    if booked_currency is not None and booked_currency.strip() != currency:
        return Mismatch(
            Kind.CURRENCY, ref, detail=f"payout booked in {booked_currency.strip()}, {currency} now"
        )
    if amount != top_amount:
        return Mismatch(Kind.DUPLICATE, ref, None, amount, top_amount, "payout, two amounts")
    if booked is not None and booked != amount:
        return Mismatch(Kind.DUPLICATE, ref, None, booked, amount, "payout booked, now another")
    if amount <= 0:
        return Mismatch(Kind.UNEXPECTED, ref, None, None, -amount, "payout of nothing out")
    if not account:
        return Mismatch(Kind.CURRENCY, ref, detail=f"payout in {currency}: no provider account")
    return None


def _transfer(session: Session, ref: str, *, currency: str, amount: int) -> None:
    accounts.open_account(session, Account(f"payouts:{currency}", currency))
    ledger.create_transfers(
        session,
        [
            Transfer(
                transfer_id(ref),
                debit=f"payouts:{currency}",
                credit=f"provider:{currency}",
                amount=amount,
                currency=currency,
                code="payout",
            )
        ],
    )
