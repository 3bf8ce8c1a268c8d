"""The payments domain's settings section: `SWITCHYARD_PAYMENTS__…`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from config import Section


class PaymentSettings(Section):
    """The provider, fees, authorization expiry, webhooks, alerts and the ledger's upkeep."""

    section_name: ClassVar[str] = "payments"

    # The provider: "token" answers in-process by Stripe's test tokens (pm_card_visa, …);
    # "stripe" speaks Stripe's API at `api_base` (the simulator, or https://api.stripe.com).
    gateway: Literal["token", "stripe"] = "token"
    api_base: str = "http://127.0.0.1:12111"
    api_key: SecretStr = SecretStr("sk_test_simulator")
    api_timeout: float = Field(default=10.0, gt=0)
    # Where the provider counts a currency in other units than ISO 4217 (Stripe: ISK, UGX).
    provider_exponents: dict[str, int] = Field(default_factory=lambda: {"ISK": 2, "UGX": 2})
    # The platform's fee per capture: basis points of the gross plus a fixed part.
    fee_bps: int = Field(default=290, ge=0, le=10_000)
    fee_fixed: int = Field(default=0, ge=0)
    # An authorization not captured within this many seconds expires (its hold is voided).
    authorization_ttl: float = Field(default=7 * 86_400.0, gt=0)
    # The janitor asks the provider about an unknown outcome after these many seconds of
    # silence, one step further each time it asked (the last step repeats).
    janitor_schedule: list[float] = Field(
        default=[30, 120, 600, 3_600, 21_600], min_length=1, max_length=20
    )
    # How long the provider keeps an idempotency key (Stripe: at least 24 h; a margin kept).
    # An unknown attempt older than this is never replayed — the replay could be a new call:
    # an authorization is searched for by its `switchyard_key` metadata instead.
    key_lifetime: float = Field(default=82_800.0, gt=0)
    # Stripe's webhook signing secrets (`whsec_…`): an event signed with any of them is taken
    # (two while a secret is rotated), if its timestamp is within `webhook_tolerance` seconds.
    webhook_secrets: list[SecretStr] = Field(default_factory=list, max_length=2)
    webhook_tolerance: int = Field(default=300, gt=0)
    # Where a dispute's alert is emailed (none when unset); receipts go to the intent's
    # `receipt_email`.
    alert_email: str | None = Field(default=None, max_length=320)
    # How often beat expires holds and folds the hot accounts' entries into their balances.
    ledger_interval: float = Field(default=30.0, gt=0)
    # How often beat reconciles the provider's settlement report, and how long after an
    # intent last moved its money is expected in that report.
    recon_interval: float = Field(default=3_600.0, gt=0)
    recon_settle_after: float = Field(default=300.0, ge=0)
