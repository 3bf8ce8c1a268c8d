"""The payments domain's settings section: `SWITCHYARD_PAYMENTS__…`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from config import Section


class PaymentSettings(Section):
    """Fees, authorization expiry and the ledger's background work."""

    section_name: ClassVar[str] = "payments"

    # The provider: "token" answers in-process by Stripe's test tokens (pm_card_visa, …).
    gateway: Literal["token"] = "token"
    # The platform's fee per capture: basis points of the gross plus a fixed part.
    fee_bps: int = Field(default=290, ge=0, le=10_000)
    fee_fixed: int = Field(default=0, ge=0)
    # An authorization not captured within this many seconds expires (its hold is voided).
    authorization_ttl: float = Field(default=7 * 86_400.0, gt=0)
    # How often beat expires holds and folds the hot accounts' entries into their balances.
    ledger_interval: float = Field(default=5.0, gt=0)
