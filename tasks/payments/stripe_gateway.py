"""The Stripe gateway adapter, on the official `stripe` package.

Pointed at the simulator in dev and tests and at Stripe itself by configuration alone
(`api_base`, `api_key`). The package's own retries are off: a retry must reuse the key
recorded before the first call, which only the operation knows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import stripe

from tasks.payments.currencies import to_provider
from tasks.payments.gateway import Outcome, OutcomeUnknownError, SettlementLine, Verdict

# What the provider's answer means for the intent.
_STATUS = {
    "requires_capture": Verdict.APPROVED,
    "succeeded": Verdict.APPROVED,
    "processing": Verdict.APPROVED,
    "canceled": Verdict.APPROVED,
    "requires_action": Verdict.ACTION_REQUIRED,
    "requires_payment_method": Verdict.DECLINED,
}


class StripeGateway:
    """A `Gateway` speaking Stripe's API."""

    def __init__(
        self, *, api_key: str, api_base: str, timeout: float, exponents: Mapping[str, int]
    ) -> None:
        self.exponents = exponents
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base},
            max_network_retries=0,
            http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
        )

    def _units(self, amount: int, currency: str, exponent: int) -> int:
        return to_provider(amount, currency, iso_exponent=exponent, overrides=self.exponents)

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
        """Create and confirm a PaymentIntent."""
        params: Any = {  # a PaymentIntentCreateParams
            "amount": self._units(amount, currency, exponent),
            "currency": currency.lower(),
            "payment_method": payment_method,
            "confirm": True,
            "capture_method": "automatic" if capture else "manual",
            "metadata": {"switchyard_key": key},
        }
        return _outcome(
            lambda: self.client.v1.payment_intents.create(
                params=params, options={"idempotency_key": key}
            )
        )

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
        """Capture part or all of the PaymentIntent."""
        params: Any = {
            "amount_to_capture": self._units(amount, currency, exponent),
            "final_capture": final,
        }
        return _outcome(
            lambda: self.client.v1.payment_intents.capture(
                provider_ref, params=params, options={"idempotency_key": key}
            )
        )

    def refund(
        self, *, key: str, provider_ref: str, amount: int, currency: str, exponent: int
    ) -> Outcome:
        """Refund part of what the PaymentIntent captured."""
        params: Any = {
            "payment_intent": provider_ref,
            "amount": self._units(amount, currency, exponent),
        }
        return _outcome(
            lambda: self.client.v1.refunds.create(params=params, options={"idempotency_key": key})
        )

    def cancel(self, *, key: str, provider_ref: str) -> Outcome:
        """Cancel the PaymentIntent (voids its authorization)."""
        return _outcome(
            lambda: self.client.v1.payment_intents.cancel(
                provider_ref, options={"idempotency_key": key}
            )
        )

    def find(self, *, key: str) -> Outcome | None:
        """The PaymentIntent whose `switchyard_key` metadata is `key`, by Stripe's search."""
        params: Any = {"query": f"metadata['switchyard_key']:'{key}'", "limit": 1}
        try:
            result = self.client.v1.payment_intents.search(params=params)
        except stripe.StripeError as exc:  # no answer, or a search refused: still unknown
            raise OutcomeUnknownError(f"search for {key}: {exc.user_message or exc}") from exc
        return _verdict(result.data[0]) if result.data else None

    def settlement(self) -> Iterator[SettlementLine]:
        """Every balance transaction, with its source expanded to find its payment intent; an
        adjustment is named by its reporting category (`dispute`, `dispute_reversal`, …), and
        a payout's ref is the payout's id."""
        params: Any = {"limit": 100, "expand": ["data.source"]}
        for txn in self.client.v1.balance_transactions.list(params=params).auto_paging_iter():
            source = txn.source
            category = getattr(txn, "reporting_category", None)
            payout = txn.type == "payout"
            yield SettlementLine(
                id=txn.id,
                kind=category if txn.type == "adjustment" and category else txn.type,
                provider_ref=getattr(source, "id" if payout else "payment_intent", None),
                amount=txn.amount,
                fee=txn.fee,
                currency=txn.currency.upper(),
            )


def _outcome(call: Callable[[], Any]) -> Outcome:
    try:
        obj = call()
    except stripe.CardError as exc:
        return Outcome(Verdict.DECLINED, reason=exc.code or "card_declined")
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as exc:
        raise OutcomeUnknownError(f"{type(exc).__name__}: {exc.user_message or exc}") from exc
    except stripe.InvalidRequestError as exc:  # the provider refused it: nothing happened
        return Outcome(Verdict.DECLINED, reason=exc.code or "invalid_request")
    return _verdict(obj)


def _verdict(obj: Any) -> Outcome:
    if obj.object == "refund":
        ok = obj.status in ("succeeded", "pending")
        return Outcome(Verdict.APPROVED if ok else Verdict.DECLINED, provider_ref=obj.id)
    return Outcome(_STATUS.get(obj.status, Verdict.DECLINED), provider_ref=obj.id)
