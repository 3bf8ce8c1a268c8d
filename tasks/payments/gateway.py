"""What the payments service needs of a provider, and the built-in test-token provider.

Every call carries the idempotency key recorded before it (`intent:operation:attempt`); a call
whose outcome is not known raises `OutcomeUnknownError`. The provider is then asked what became
of it by repeating the call with the same key: Stripe answers a key it has seen with the
response it gave (applying nothing again), and a key it never saw with a first answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from errors import SwitchyardError


class Verdict(StrEnum):
    """What the provider answered."""

    APPROVED = "approved"
    DECLINED = "declined"
    ACTION_REQUIRED = "action_required"


@dataclass(frozen=True)
class Outcome:
    """A provider's answer to one call."""

    verdict: Verdict
    provider_ref: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SettlementLine:
    """One line of the provider's settlement report (a balance transaction), in the provider's
    units: a charge is positive, a refund and a payout negative."""

    id: str
    kind: str  # "charge", "refund", "dispute", "dispute_reversal", "payout", or another kind
    provider_ref: str | None  # the payment intent it settles; a payout's own id
    amount: int
    fee: int
    currency: str  # ISO 4217, upper case


class OutcomeUnknownError(SwitchyardError):
    """The call may or may not have taken effect (timeout, 5xx, dropped connection)."""

    code = "provider_outcome_unknown"


class Gateway(Protocol):
    """A payment provider."""

    def authorize(
        self,
        *,
        key: str,
        amount: int,
        currency: str,
        exponent: int,
        payment_method: str,
        capture: bool,
    ) -> Outcome:
        """Authorize (and, when `capture`, capture) `amount` (ISO minor units, `exponent`)."""
        ...

    def capture(
        self,
        *,
        key: str,
        provider_ref: str,
        amount: int,
        currency: str,
        exponent: int,
        final: bool,
    ) -> Outcome:
        """Capture `amount` of an authorization."""
        ...

    def refund(
        self, *, key: str, provider_ref: str, amount: int, currency: str, exponent: int
    ) -> Outcome:
        """Refund `amount` of a capture."""
        ...

    def cancel(self, *, key: str, provider_ref: str) -> Outcome:
        """Void an authorization."""
        ...

    def find(self, *, key: str) -> Outcome | None:
        """What became of the authorization made with `key`, found by its `switchyard_key`
        metadata (not a replay: past the key's lifetime a replay could charge again); None if
        the provider has none."""
        ...

    def settlement(self) -> Iterable[SettlementLine] | None:
        """The provider's settlement report, or None if it keeps none."""
        ...


# Stripe's test payment methods, by what they do.
DECLINING = frozenset(
    {
        "pm_card_chargeDeclined",
        "pm_card_visa_chargeDeclined",
        "pm_card_chargeDeclinedInsufficientFunds",
    }
)
ACTION = frozenset({"pm_card_authenticationRequired", "pm_card_threeDSecureRequired"})


class TokenGateway:
    """A provider in-process that answers by Stripe's test tokens (for dev without a network).

    Like Stripe, it answers a key it has seen with its first answer; `effects` counts the
    calls that did something.
    """

    def __init__(self) -> None:
        self._seen: dict[str, Outcome] = {}
        self.effects = 0

    def authorize(self, *, key: str, payment_method: str, **_: object) -> Outcome:
        """Approve, decline or ask for action by the token."""
        if payment_method in DECLINING:
            return self._once(key, Outcome(Verdict.DECLINED, reason="card_declined"))
        if payment_method in ACTION:
            return self._once(key, Outcome(Verdict.ACTION_REQUIRED, provider_ref=_ref(key)))
        return self._once(key, Outcome(Verdict.APPROVED, provider_ref=_ref(key)))

    def capture(self, *, key: str, provider_ref: str, **_: object) -> Outcome:
        """Always approved."""
        return self._once(key, Outcome(Verdict.APPROVED, provider_ref=provider_ref))

    def refund(self, *, key: str, **_: object) -> Outcome:
        """Always approved."""
        return self._once(key, Outcome(Verdict.APPROVED, provider_ref=_ref(key)))

    def cancel(self, *, key: str, provider_ref: str) -> Outcome:
        """Always approved."""
        return self._once(key, Outcome(Verdict.APPROVED, provider_ref=provider_ref))

    def find(self, *, key: str) -> Outcome | None:
        """The answer to the authorization made with `key`, if one was made."""
        return self._seen.get(key)

    def settlement(self) -> None:
        """An in-process provider settles nothing: there is no report to reconcile."""
        return None

    def _once(self, key: str, outcome: Outcome) -> Outcome:
        if key not in self._seen:
            self._seen[key] = outcome
            self.effects += 1
        return self._seen[key]


def _ref(key: str) -> str:
    return "pi_tok_" + hashlib.sha256(key.encode()).hexdigest()[:24]
