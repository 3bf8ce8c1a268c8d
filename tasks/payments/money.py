"""An intent's money in the ledger: holds, captures with fees, refunds, disputes.

Per currency: `provider:<CUR>` (what the provider owes us), `fees:<CUR>` (the platform's fee
account, hot), `merchant:<producer>:<CUR>` (dispute fees the merchant owes), `payouts:<CUR>`
(what the provider paid out to the bank; booked by `payouts`), and one account
per intent, `intent:<id>`, whose debits must not exceed its credits: refunds and disputes can
never take out more than was captured, net of the fee returned with them.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tasks.payments import accounts, ledger
from tasks.payments.ledger import Account, Kind, Limit, Transfer
from tasks.payments.models import Intent


def fee_for(gross: int, *, bps: int, fixed: int) -> int:
    """The platform's fee on a capture: bps of the gross rounded half up, plus fixed, ≤ gross."""
    return min(gross, (gross * bps + 5_000) // 10_000 + fixed)


def fee_back(intent: Intent, *, given_back: int) -> int:
    """The fee returned when `given_back` more leaves: pro rata of the cumulative total, so the
    parts always sum to the whole fee when everything is given back."""
    total = intent.amount_refunded + intent.amount_disputed + intent.amount_lost + given_back
    owed = intent.fee * total // intent.amount_captured if intent.amount_captured else 0
    return owed - intent.fee_returned


def intent_account(intent: Intent) -> str:
    """The intent's own ledger account."""
    return f"intent:{intent.id}"


def open_accounts(session: Session, intent: Intent) -> None:
    """Open the accounts the intent's money moves through (idempotently)."""
    cur = intent.currency
    accounts.open_accounts(
        session,
        [
            Account(f"provider:{cur}", cur),
            Account(f"fees:{cur}", cur, hot=True),
            Account(f"merchant:{intent.producer}:{cur}", cur),
            Account(intent_account(intent), cur, Limit.DEBITS_MUST_NOT_EXCEED_CREDITS),
        ],
    )


def hold(session: Session, intent: Intent, *, amount: int, ttl: float, ref: str) -> str:
    """Hold `amount` for the intent (an authorization); the hold's transfer id."""
    open_accounts(session, intent)
    hold_id = f"{intent.id}:hold:{ref}"
    ledger.create_transfers(
        session,
        [
            Transfer(
                hold_id,
                debit=f"provider:{intent.currency}",
                credit=intent_account(intent),
                amount=amount,
                currency=intent.currency,
                kind=Kind.PENDING,
                code="authorization",
                timeout=ttl,
            )
        ],
    )
    return hold_id


def capture(
    session: Session, intent: Intent, *, amount: int, fee: int, final: bool, ref: str, ttl: float
) -> str | None:
    """Post `amount` of the hold and take the fee, in one linked chain; the rest is held again
    under a new hold (returned) unless the capture is final, when it is released."""
    assert intent.hold_id is not None
    rest = intent.amount_capturable - amount
    chain = [
        Transfer(
            f"{intent.id}:capture:{ref}", kind=Kind.POST, pending_id=intent.hold_id, amount=amount
        )
    ]
    new_hold = None
    if rest and not final:
        new_hold = f"{intent.id}:hold:{ref}"
        chain.append(
            Transfer(
                new_hold,
                debit=f"provider:{intent.currency}",
                credit=intent_account(intent),
                amount=rest,
                currency=intent.currency,
                kind=Kind.PENDING,
                code="authorization",
                timeout=ttl,
            )
        )
    if fee:
        chain.append(
            Transfer(
                f"{intent.id}:fee:{ref}",
                debit=intent_account(intent),
                credit=f"fees:{intent.currency}",
                amount=fee,
                currency=intent.currency,
                code="fee",
            )
        )
    ledger.create_transfers(session, chain)
    return new_hold


def release(session: Session, intent: Intent, *, ref: str) -> None:
    """Void the intent's open hold (cancel, or an authorization that expired)."""
    if intent.hold_id is None:
        return
    if ledger.hold_status(session, intent.hold_id) is ledger.HoldStatus.PENDING:
        ledger.create_transfers(
            session,
            [Transfer(f"{intent.id}:void:{ref}", kind=Kind.VOID, pending_id=intent.hold_id)],
        )


def give_back(
    session: Session, intent: Intent, *, amount: int, returned_fee: int, ref: str
) -> None:
    """Send `amount` back to the provider (a refund, or a dispute's withdrawal) with its fee."""
    chain = []
    if returned_fee:
        chain.append(
            Transfer(
                f"{intent.id}:fee_back:{ref}",
                debit=f"fees:{intent.currency}",
                credit=intent_account(intent),
                amount=returned_fee,
                currency=intent.currency,
                code="fee_returned",
            )
        )
    chain.append(
        Transfer(
            f"{intent.id}:out:{ref}",
            debit=intent_account(intent),
            credit=f"provider:{intent.currency}",
            amount=amount,
            currency=intent.currency,
            code="refund",
        )
    )
    ledger.create_transfers(session, chain)


def dispute_fee(session: Session, intent: Intent, *, amount: int, ref: str) -> None:
    """The provider's dispute fee, charged to the merchant."""
    if amount:
        ledger.create_transfers(
            session,
            [
                Transfer(
                    f"{intent.id}:dispute_fee:{ref}",
                    debit=f"merchant:{intent.producer}:{intent.currency}",
                    credit=f"provider:{intent.currency}",
                    amount=amount,
                    currency=intent.currency,
                    code="dispute_fee",
                )
            ],
        )


def reinstate(session: Session, intent: Intent, *, amount: int, fee: int, ref: str) -> None:
    """A dispute won: the withdrawn amount comes back, and the fee returned with it is retaken."""
    chain = [
        Transfer(
            f"{intent.id}:in:{ref}",
            debit=f"provider:{intent.currency}",
            credit=intent_account(intent),
            amount=amount,
            currency=intent.currency,
            code="dispute_won",
        )
    ]
    if fee:
        chain.append(
            Transfer(
                f"{intent.id}:fee_retaken:{ref}",
                debit=intent_account(intent),
                credit=f"fees:{intent.currency}",
                amount=fee,
                currency=intent.currency,
                code="fee",
            )
        )
    ledger.create_transfers(session, chain)
