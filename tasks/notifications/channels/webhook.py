"""Webhooks per Standard Webhooks: signed, never redirected, bounded in time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

import httpx

from tasks.notifications.channels import (
    DeliveryReport,
    RefusedDestinationError,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from tasks.notifications.secrets import secret_bytes
from tasks.notifications.ssrf import BlockedAddressError

USER_AGENT = "Switchyard-Webhooks/0.1"
EXCERPT_BYTES = 512


def webhook_id_for(job_id: object) -> str:
    """The webhook-id of a job's delivery: the same on every retry of that job."""
    return f"msg_{job_id}"


def sign(msg_id: str, timestamp: int, body: bytes, *, secrets: Sequence[str]) -> str:
    """The `webhook-signature` value: one `v1,` signature per active secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digests = (hmac.new(secret_bytes(s), signed, hashlib.sha256).digest() for s in secrets)
    return " ".join("v1," + base64.b64encode(d).decode() for d in digests)


def signed_headers(
    msg_id: str, body: bytes, *, secrets: Sequence[str], timestamp: int | None = None
) -> dict[str, str]:
    """Every header a delivery carries."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(msg_id, ts, body, secrets=secrets),
    }


def send_webhook(
    url: str,
    body: bytes,
    *,
    msg_id: str,
    secrets: Sequence[str],
    client: httpx.Client,
    total_timeout: float,
) -> DeliveryReport:
    """POST once; 2xx is delivered, anything else (3xx included: never followed) is a failure."""
    headers = signed_headers(msg_id, body, secrets=secrets)
    deadline = time.monotonic() + total_timeout
    try:
        with client.stream("POST", url, content=body, headers=headers) as resp:
            excerpt = b""
            for chunk in resp.iter_bytes():
                excerpt = (excerpt + chunk)[:EXCERPT_BYTES]
                if time.monotonic() > deadline:
                    raise TransientDeliveryError(
                        f"webhook exceeded {total_timeout}s", status_code=resp.status_code
                    )
    except BlockedAddressError as exc:
        raise RefusedDestinationError(str(exc)) from exc
    except httpx.InvalidURL as exc:  # e.g. octal IPv4, which httpx will not parse
        raise RefusedDestinationError(f"invalid URL: {exc}") from exc
    except httpx.HTTPError as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc
    reply = excerpt.decode(errors="replace")
    code = resp.status_code
    if 200 <= code < 300:
        return DeliveryReport(status_code=code, reply=reply)
    if 300 <= code < 400:
        where = resp.headers.get("location", "?")
        raise TransientDeliveryError(
            f"redirect to {where} not followed", status_code=code, reply=reply
        )
    if code == 410:
        raise RejectedDeliveryError("endpoint is gone (410)", status_code=code, reply=reply)
    raise TransientDeliveryError(f"endpoint answered {code}", status_code=code, reply=reply)
