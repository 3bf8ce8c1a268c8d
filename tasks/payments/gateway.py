"""What the payments service needs of a provider, and the built-in test-token provider.

Every call carries the idempotency key recorded before it (`intent:operation:attempt`); a call
whose outcome is not known raises `OutcomeUnknownError`, and `lookup` later asks the provider
what became of the key.
"""

from __future__ import annotations

import hashlib
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


class OutcomeUnknownError(SwitchyardError):
    """The call may or may not have taken effect (timeout, 5xx, dropped connection)."""

    code = "provider_outcome_unknown"


class Gateway(Protocol):
    """A payment provider."""

    def authorize(
        self, *, key: str, amount: int, currency: str, payment_method: str, capture: bool
    ) -> Outcome:
        """Authorize (and, when `capture`, capture) `amount`."""
        ...

    def capture(self, *, key: str, provider_ref: str, amount: int, final: bool) -> Outcome:
        """Capture `amount` of an authorization."""
        ...

    def refund(self, *, key: str, provider_ref: str, amount: int) -> Outcome:
        """Refund `amount` of a capture."""
        ...

    def cancel(self, *, key: str, provider_ref: str) -> Outcome:
        """Void an authorization."""
        ...

    def lookup(self, *, key: str) -> Outcome | None:
        """What became of the call made with `key` (None: the provider never saw it)."""
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

    It keeps no state: the same key always gets the same answer, so `lookup` is exact.
    """

    def __init__(self) -> None:
        self._seen: dict[str, Outcome] = {}

    def authorize(
        self, *, key: str, amount: int, currency: str, payment_method: str, capture: bool
    ) -> Outcome:
        """Approve, decline or ask for action by the token."""
        if payment_method in DECLINING:
            outcome = Outcome(Verdict.DECLINED, reason="card_declined")
        elif payment_method in ACTION:
            outcome = Outcome(Verdict.ACTION_REQUIRED, provider_ref=_ref(key))
        else:
            outcome = Outcome(Verdict.APPROVED, provider_ref=_ref(key))
        self._seen[key] = outcome
        return outcome

    def capture(self, *, key: str, provider_ref: str, amount: int, final: bool) -> Outcome:
        """Always approved."""
        return self._approve(key, provider_ref)

    def refund(self, *, key: str, provider_ref: str, amount: int) -> Outcome:
        """Always approved."""
        return self._approve(key, _ref(key))

    def cancel(self, *, key: str, provider_ref: str) -> Outcome:
        """Always approved."""
        return self._approve(key, provider_ref)

    def lookup(self, *, key: str) -> Outcome | None:
        """The answer given to `key` in this process, if any."""
        return self._seen.get(key)

    def _approve(self, key: str, ref: str) -> Outcome:
        outcome = Outcome(Verdict.APPROVED, provider_ref=ref)
        self._seen[key] = outcome
        return outcome


def _ref(key: str) -> str:
    return "pi_tok_" + hashlib.sha256(key.encode()).hexdigest()[:24]
