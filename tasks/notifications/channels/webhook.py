"""Webhooks per Standard Webhooks: signed, never redirected, bounded in time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import httpcore
import httpx

from tasks.notifications.channels import (
    DeliveryError,
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


# Every error httpcore raises for one request (it has no common base class).
TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


@lru_cache(maxsize=4_096)
def _target(url: str) -> tuple[httpcore.URL, str]:
    """`url` as httpx parses and normalises it (IDNA, IPv4 forms), for the transport, and its
    `Host` header (httpcore's own would leave an IPv6 literal unbracketed); cached, since an
    endpoint's deliveries all go to one URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:  # e.g. octal IPv4, which httpx will not parse
        raise RefusedDestinationError(f"invalid URL: {exc}") from exc
    target = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return target, parsed.netloc.decode("ascii")


def answer_report(
    status: int, body: bytes, *, headers: Sequence[tuple[bytes, bytes]] = ()
) -> DeliveryReport:
    """A 2xx answer's report; any other raises: 410 Gone as final, the rest (3xx too) retried."""
    reply = body[:EXCERPT_BYTES].decode(errors="replace")
    if 200 <= status < 300:
        return DeliveryReport(status_code=status, reply=reply)
    if 300 <= status < 400:
        where = _header(headers, b"location") or "?"
        raise TransientDeliveryError(
            f"redirect to {where} not followed", status_code=status, reply=reply
        )
    if status == 410:
        raise RejectedDeliveryError("endpoint is gone (410)", status_code=status, reply=reply)
    raise TransientDeliveryError(f"endpoint answered {status}", status_code=status, reply=reply)


def transport_failure(exc: Exception) -> DeliveryError:
    """A webhook that got no answer: final if the SSRF guard refused it, else retried."""
    if isinstance(exc, BlockedAddressError):
        return RefusedDestinationError(str(exc))
    return TransientDeliveryError(f"{type(exc).__name__}: {exc}")


def send_webhook(
    url: str,
    body: bytes,
    *,
    msg_id: str,
    secrets: Sequence[str],
    pool: httpcore.ConnectionPool,
    connect_timeout: float,
    total_timeout: float,
) -> DeliveryReport:
    """POST once; the answer is judged by `answer_report` (2xx delivered, 3xx never followed).

    Straight on httpx's transport (httpcore): a webhook needs no cookie jar, auth flow or
    redirect handling, so none is kept from one endpoint's answer to the next request.
    """
    target, host = _target(url)
    headers: dict[bytes | str, bytes | str] = {"host": host}
    headers.update(signed_headers(msg_id, body, secrets=secrets))
    timeouts = {
        "connect": connect_timeout,
        "read": total_timeout,
        "write": total_timeout,
        "pool": total_timeout,
    }
    deadline = time.monotonic() + total_timeout
    try:
        with pool.stream(
            "POST",
            target,
            headers=headers,
            content=body,
            extensions={"timeout": timeouts},
        ) as resp:
            excerpt = b""
            for chunk in resp.iter_stream():
                excerpt = (excerpt + chunk)[:EXCERPT_BYTES]
                if time.monotonic() > deadline:
                    raise TransientDeliveryError(
                        f"webhook exceeded {total_timeout}s", status_code=resp.status
                    )
    except (BlockedAddressError, *TRANSPORT_ERRORS) as exc:
        raise transport_failure(exc) from exc
    return answer_report(resp.status, excerpt, headers=resp.headers)


@dataclass(frozen=True)
class PooledWebhookPoster:
    """The webhook gateway: posts through one SSRF-guarded pool, within the settings' timeouts."""

    pool: httpcore.ConnectionPool
    connect_timeout: float
    total_timeout: float

    def post(self, url: str, body: bytes, *, msg_id: str, secrets: Sequence[str]) -> DeliveryReport:
        """Post once (see `send_webhook`)."""
        return send_webhook(
            url,
            body,
            msg_id=msg_id,
            secrets=secrets,
            pool=self.pool,
            connect_timeout=self.connect_timeout,
            total_timeout=self.total_timeout,
        )


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    found = next((v for k, v in headers if k.lower() == name), None)
    return None if found is None else found.decode("latin-1")
