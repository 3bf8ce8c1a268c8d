"""What each channel makes of an answer, and the fakes held to the real gateways, with no I/O.

The real webhook poster runs here on a scripted network (httpcore's `MockBackend`, or a stream
that times out), or on the SSRF-guarded pool with a fake resolver: no socket is ever opened.
"""

from __future__ import annotations

from typing import Any

import httpcore
import pytest

from tasks.notifications.channels import (
    DeliveryError,
    DeliveryReport,
    RefusedDestinationError,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from tasks.notifications.channels.email import check_reply, refusal, smtp_unavailable
from tasks.notifications.channels.sms import sms_report
from tasks.notifications.channels.webhook import (
    EXCERPT_BYTES,
    PooledWebhookPoster,
    answer_report,
    transport_failure,
)
from tasks.notifications.secrets import new_secret
from tasks.notifications.ssrf import BlockedAddressError, guarded_pool
from tests.support.fake_gateways import FakeWebhookPoster

pytestmark = pytest.mark.usefixtures("no_io")

URL = "http://hooks.example.com/in"  # plain HTTP: the scripted network needs no TLS context
LOCATION = ((b"Location", b"https://elsewhere.example/"),)


def outcome(send: Any) -> tuple[type[DeliveryError] | None, int | None, str | None]:
    """What a send came to: the error's class (None when delivered), its status and reply."""
    try:
        report: DeliveryReport = send()
    except DeliveryError as exc:
        return type(exc), exc.status_code, exc.reply
    return None, report.status_code, report.reply


def test_only_a_2xx_webhook_answer_is_delivered() -> None:
    for status in (200, 201, 202, 204, 299):
        assert answer_report(status, b"thanks") == DeliveryReport(status, "thanks")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (301, TransientDeliveryError),  # redirects are never followed: retried like a 5xx
        (302, TransientDeliveryError),
        (308, TransientDeliveryError),
        (400, TransientDeliveryError),
        (404, TransientDeliveryError),
        (410, RejectedDeliveryError),  # Gone: the one answer that ends it
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
    ],
)
def test_a_webhook_answer_other_than_2xx_is_a_failure(
    status: int, error: type[DeliveryError]
) -> None:
    with pytest.raises(error) as caught:
        answer_report(status, b"x" * (EXCERPT_BYTES * 2), headers=LOCATION)
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.reply == "x" * EXCERPT_BYTES  # the log keeps an excerpt only
    assert caught.value.outcome == "failed"


def test_a_redirect_names_where_it_pointed_and_is_not_followed() -> None:
    with pytest.raises(TransientDeliveryError, match=r"elsewhere\.example/ not followed"):
        answer_report(302, b"", headers=LOCATION)


def test_no_answer_is_worth_a_retry_unless_the_ssrf_guard_refused_the_address() -> None:
    for exc in (
        httpcore.ReadTimeout("t"),
        httpcore.ConnectError("r"),
        httpcore.RemoteProtocolError("p"),
    ):
        failure = transport_failure(exc)
        assert (type(failure), failure.retryable, failure.status_code) == (
            TransientDeliveryError,
            True,
            None,
        )
        assert type(exc).__name__ in str(failure)
    refused = transport_failure(BlockedAddressError("10.0.0.7 is private"))
    assert (type(refused), refused.retryable, refused.outcome) == (
        RefusedDestinationError,
        False,
        "refused",
    )


@pytest.mark.parametrize(
    ("step", "code", "error"),
    [
        ("MAIL FROM", 421, TransientDeliveryError),
        ("RCPT TO", 450, TransientDeliveryError),
        ("DATA", 451, TransientDeliveryError),
        ("MAIL FROM", 553, RejectedDeliveryError),
        ("RCPT TO", 550, RejectedDeliveryError),
        ("DATA", 554, RejectedDeliveryError),
        ("DATA", 354, RejectedDeliveryError),  # not a 4xx, and not what DATA must end with
    ],
)
def test_smtp_4xx_is_worth_a_retry_and_any_other_refusal_is_final(
    step: str, code: int, error: type[DeliveryError]
) -> None:
    with pytest.raises(error) as caught:
        check_reply(step, code, b"nope")
    assert type(caught.value) is error
    assert (caught.value.status_code, caught.value.reply) == (code, f"{code} nope")
    assert str(caught.value).startswith(f"{step} refused")


def test_smtp_accepts_each_step_by_its_own_codes_and_the_rest_is_retried() -> None:
    assert check_reply("DATA", 250, b"2.0.0 queued") == "250 2.0.0 queued"
    assert check_reply("RCPT TO", 251, "forwarded") == "251 forwarded"
    with pytest.raises(RejectedDeliveryError):
        check_reply("MAIL FROM", 251, "not for a sender")
    assert type(refusal("SMTP", 535, b"auth failed")) is RejectedDeliveryError
    assert type(refusal("SMTP", 421, b"closing")) is TransientDeliveryError
    assert smtp_unavailable(ConnectionRefusedError("refused")).retryable


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (202, None),
        (408, TransientDeliveryError),
        (425, TransientDeliveryError),
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (400, RejectedDeliveryError),
        (401, RejectedDeliveryError),
        (404, RejectedDeliveryError),
    ],
)
def test_an_sms_provider_answer(status: int, error: type[DeliveryError] | None) -> None:
    assert outcome(lambda: sms_report(status, "r")) == (error, status, "r")


class _SilentStream(httpcore.NetworkStream):
    """A connection whose far side never answers."""

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        raise httpcore.ReadTimeout("timed out")

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


class _SilentBackend(httpcore.NetworkBackend):
    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        return _SilentStream()


def _answering(status: int, headers: tuple[tuple[bytes, bytes], ...]) -> httpcore.ConnectionPool:
    lines = [
        f"HTTP/1.1 {status} Whatever\r\n".encode(),
        *(name + b": " + value + b"\r\n" for name, value in headers),
        b"Content-Length: 4\r\n\r\n",
        b"body",
    ]
    return httpcore.ConnectionPool(network_backend=httpcore.MockBackend(lines))


def _real(pool: httpcore.ConnectionPool) -> PooledWebhookPoster:
    return PooledWebhookPoster(pool, connect_timeout=1.0, total_timeout=1.0)


def _post(poster: PooledWebhookPoster | FakeWebhookPoster, url: str = URL) -> Any:
    return lambda: poster.post(url, b"{}", msg_id="msg_1", secrets=[new_secret()])


@pytest.mark.parametrize("status", [200, 202, 301, 302, 404, 410, 500, 503])
def test_the_fake_poster_answers_as_the_real_one_does_to_the_same_status(status: int) -> None:
    real = outcome(_post(_real(_answering(status, LOCATION))))
    fake = outcome(_post(FakeWebhookPoster(status=status, headers=LOCATION, body=b"body")))
    assert real == fake
    assert real[1] == status


def test_the_fake_poster_times_out_as_the_real_one_does() -> None:
    real = outcome(_post(_real(httpcore.ConnectionPool(network_backend=_SilentBackend()))))
    fake = outcome(_post(FakeWebhookPoster(fails=httpcore.ReadTimeout("timed out"))))
    assert real == fake == (TransientDeliveryError, None, None)


def test_the_fake_poster_is_refused_as_the_guarded_pool_refuses_a_private_address() -> None:
    pool = guarded_pool(allowed=[], resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    real = outcome(_post(_real(pool), "https://rebinds.example/in"))
    fake = outcome(_post(FakeWebhookPoster(fails=BlockedAddressError("10.0.0.7 is private"))))
    assert real == fake == (RefusedDestinationError, None, None)
