"""HTTP plumbing of the payments routes: card numbers refused at the door, errors as problems."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from errors import ProblemError
from tasks.payments.cards import refuse_card_numbers
from tasks.payments.errors import PaymentError


class PaymentRoute(APIRoute):
    """Every payments route: the raw body and query are scanned for card numbers before any
    parsing (so a number is never stored or logged), and payment errors become problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The handler, wrapped."""
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                refuse_card_numbers(request.url.query)
                refuse_card_numbers(await request.body())
                return await inner(request)
            except PaymentError as exc:
                extra = {"field": exc.field} if exc.field else {}
                raise ProblemError(exc.status, exc.code, str(exc), **extra) from exc

        return handler
