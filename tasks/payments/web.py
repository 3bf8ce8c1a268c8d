"""HTTP plumbing of the payments routes: card numbers refused at the door."""

from __future__ import annotations

from fastapi import Request

from tasks.payments.cards import refuse_card_numbers
from tasks.web.routing import StrictRoute


class PaymentRoute(StrictRoute):
    """Every payments route: the raw body and query are scanned for card numbers before any
    parsing, so a number is never stored or logged (a caller without a good key gets 401)."""

    def screen(self, request: Request, raw: bytes) -> None:
        """Refuse a card number anywhere in the query or the body."""
        refuse_card_numbers(request.url.query)
        refuse_card_numbers(raw)
