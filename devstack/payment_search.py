"""The simulator's search: `GET /v1/payment_intents/search?query=metadata['K']:'V'`, Stripe's
search result format; only the one clause Switchyard sends (one metadata key's exact value)
is understood, anything else is a 400 as Stripe answers a query it cannot parse."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from devstack.payment_simulator import Provider

CLAUSE = re.compile(r"""^metadata\['([^'\\]+)'\]:'([^'\\]*)'$""")


def search_routes(app: FastAPI, sim: Provider) -> None:
    """Serve the payment intents' search."""

    @app.get("/v1/payment_intents/search")
    async def _search(request: Request) -> JSONResponse:
        found = CLAUSE.match(request.query_params.get("query", "").strip())
        if found is None:
            error = {"type": "invalid_request_error", "message": "The query is not supported."}
            return JSONResponse({"error": error}, status_code=400)
        name, value = found.groups()
        data: list[dict[str, Any]] = [
            i for i in sim.intents.values() if i.get("metadata", {}).get(name) == value
        ]
        return JSONResponse(
            {"object": "search_result", "url": "/v1/payment_intents/search", "has_more": False,
             "next_page": None, "data": data}
        )  # fmt: skip
