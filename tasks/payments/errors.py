"""The payments domain's errors: the classes that carry a code of their own."""

from __future__ import annotations

from errors import ConflictError, InvalidFieldError, NotFoundError


class CardDataRefusedError(InvalidFieldError):
    """The request carries what looks like a card number: only provider tokens are accepted."""

    code = "card_data_refused"


class UnknownCurrencyError(InvalidFieldError):
    """Not an ISO 4217 code the ledger knows."""

    code = "unknown_currency"


class IntentNotFoundError(NotFoundError):
    """No such payment intent (or not the caller's)."""

    code = "payment_intent_not_found"


class IllegalTransitionError(ConflictError):
    """The intent's status does not allow this operation."""

    code = "illegal_transition"


class AmountExceededError(ConflictError):
    """The amount is above what may still be captured, refunded or disputed."""

    code = "amount_exceeded"

    def __init__(self, message: str, *, field: str = "amount") -> None:
        super().__init__(message)
        self.field = field


class LedgerError(ConflictError):
    """The ledger refused a transfer."""

    code = "ledger_refused"


class TransferExistsError(LedgerError):
    """A transfer with this id exists with other fields."""

    code = "transfer_exists_with_different_fields"


class PendingNotFoundError(LedgerError):
    """The pending transfer named does not exist."""

    code = "pending_transfer_not_found"


class PendingResolvedError(LedgerError):
    """The pending transfer was already posted, voided or expired."""

    code = "pending_transfer_resolved"


class PendingExpiredError(LedgerError):
    """The pending transfer's timeout has passed."""

    code = "pending_transfer_expired"


class ExceedsPendingError(LedgerError):
    """The post is above the held amount (or a void is not of the whole hold)."""

    code = "exceeds_pending_amount"


class TransferMismatchError(LedgerError):
    """The post or void names other accounts or currency than its hold."""

    code = "transfer_mismatch"


class HotAccountError(LedgerError):
    """A hot account takes only single-phase transfers."""

    code = "hot_account_pending"


class ExceedsLimitError(LedgerError):
    """The transfer would take an account past its balance limit."""

    code = "exceeds_balance_limit"


class AccountMismatchError(LedgerError):
    """An account is missing, or not in the transfer's currency."""

    code = "account_mismatch"


class LinkedTransferError(LedgerError):
    """One transfer of a linked chain failed, so none of them was applied."""

    code = "linked_transfer_failed"

    def __init__(self, index: int, cause: LedgerError) -> None:
        super().__init__(f"transfer {index} of the chain failed: {cause}")
        self.index = index
        self.cause = cause


class InvalidSignatureError(InvalidFieldError):
    """A provider webhook whose signature header is missing, malformed, stale or wrong."""

    status, code = 400, "invalid_signature"
