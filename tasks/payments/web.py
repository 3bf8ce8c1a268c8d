"""HTTP plumbing of the payments routes: card numbers refused at the door."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from tasks.payments.cards import refuse_card_numbers
from tasks.web.routing import StrictRoute


class PaymentRoute(StrictRoute):
    """Every payments route: the raw body and query are scanned for card numbers before any
    parsing, so a number is never stored or logged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The handler, wrapped."""
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            refuse_card_numbers(request.url.query)
            refuse_card_numbers(await request.body())
            return await inner(request)

        return handler
