"""HTTP plumbing of the payments routes: card numbers refused at the door, and each mutating
request answered once per `Idempotency-Key` (replays get the stored answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from store.api_keys import Principal
from tasks.payments import idempotency
from tasks.payments.cards import refuse_card_numbers
from tasks.web.routing import StrictRoute

REPLAYED = "Idempotent-Replayed"
T = TypeVar("T")

KeyHeader = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        description="Up to 255 characters, per producer, kept 24 h: a repeat of the same "
        "request gets the first answer (`Idempotent-Replayed: true`), another request a 422.",
    ),
]


class PaymentRoute(StrictRoute):
    """Every payments route: the raw body, the query and the `Idempotency-Key` (the one header
    that is stored) are scanned for card numbers before any parsing, so a number is never
    stored or logged (a caller without a good key gets 401)."""

    def screen(self, request: Request, raw: bytes) -> None:
        """Refuse a card number anywhere in the query, the body or the idempotency key."""
        refuse_card_numbers(request.url.query)
        refuse_card_numbers(request.headers.get(idempotency.HEADER, ""), field=idempotency.HEADER)
        refuse_card_numbers(raw)


def answer_once(
    session: Session,
    request: Request,
    act: Callable[[], T],
    *,
    principal: Principal,
    key: str | None,
    body: BaseModel | None,
    status_code: int,
) -> T | Response:
    """Run `act` and commit, or, for a key already answered, replay its answer; the answer is
    stored with the key in `act`'s transaction, so a request has one effect however often (or
    however concurrently) it is sent."""
    if key is None:
        done = act()
        session.commit()
        return done
    idempotency.check_key(key)
    asked = idempotency.fingerprint(
        request.method, request.url.path, None if body is None else body.model_dump(mode="json")
    )
    producer = principal.producer
    stored = idempotency.claim(session, producer=producer, key=key, request_hash=asked)
    if stored is not None:
        session.rollback()  # the claim locked the key's row: free it for the next replay now
        return JSONResponse(stored.body, status_code=stored.status, headers={REPLAYED: "true"})
    done = act()
    idempotency.remember(
        session, producer=producer, key=key, status=status_code, body=jsonable_encoder(done)
    )
    session.commit()
    return done
