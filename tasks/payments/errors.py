"""The payments domain's errors: each carries its HTTP status, stable code and field."""

from __future__ import annotations

from errors import SwitchyardError


class PaymentError(SwitchyardError):
    """Base of the payments domain's errors."""

    status = 500
    code = "payment_error"
    field: str | None = None


class InvalidPaymentFieldError(PaymentError):
    """A request field cannot be accepted."""

    status, code = 422, "invalid_field"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class CardDataRefusedError(InvalidPaymentFieldError):
    """The request carries what looks like a card number: only provider tokens are accepted."""

    code = "card_data_refused"


class UnknownCurrencyError(InvalidPaymentFieldError):
    """Not an ISO 4217 code the ledger knows."""

    code = "unknown_currency"


class IntentNotFoundError(PaymentError):
    """No such payment intent (or not the caller's)."""

    status, code = 404, "payment_intent_not_found"


class IllegalTransitionError(PaymentError):
    """The intent's status does not allow this operation."""

    status, code = 409, "illegal_transition"


class AmountExceededError(PaymentError):
    """The amount is above what may still be captured, refunded or disputed."""

    status, code = 409, "amount_exceeded"

    def __init__(self, message: str, *, field: str = "amount") -> None:
        super().__init__(message)
        self.field = field


class LedgerError(PaymentError):
    """The ledger refused a transfer."""

    status, code = 409, "ledger_refused"


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
