"""The SSRF guard on real sockets: a live receiver on loopback that must never be reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import Settings
from devstack.receiver import Receiver, start_receiver
from tasks.notifications.channels import RefusedDestinationError, TransientDeliveryError
from tasks.notifications.channels.webhook import send_webhook
from tasks.notifications.secrets import new_secret
from tasks.notifications.settings import NotificationSettings
from tasks.notifications.ssrf import BlockedAddressError, check_url, guarded_pool, parse_networks

SECRET = new_secret()


@pytest.fixture(scope="module")
def receiver(logs_dir: Path) -> Iterator[Receiver]:
    rec = start_receiver(logs_dir)
    yield rec
    rec.process.stop()


def post(url: str, *, allowed: list[str], resolver=None) -> object:  # type: ignore[no-untyped-def]
    extra = {"resolver": resolver} if resolver else {}
    with guarded_pool(allowed=parse_networks(allowed), **extra) as pool:
        return send_webhook(
            url,
            b"{}",
            msg_id="msg_test",
            secrets=[SECRET],
            pool=pool,
            connect_timeout=2,
            total_timeout=5,
        )


TARGETS = [
    "http://127.0.0.1:{port}/t1",
    "http://localhost:{port}/t2",  # a hostname that resolves to loopback
    "http://0.0.0.0:{port}/t3",
    "http://2130706433:{port}/t4",  # decimal 127.0.0.1
    "http://0x7f000001:{port}/t5",  # hex
    "http://0177.0.0.1:{port}/t6",  # octal
    "http://127.1:{port}/t7",  # short form
    "http://[::1]:{port}/t8",
    "http://[::ffff:127.0.0.1]:{port}/t9",  # IPv4-mapped
    "http://[::ffff:7f00:1]:{port}/t10",  # IPv4-mapped, hex spelling
    "http://[64:ff9b::7f00:1]:{port}/t11",  # NAT64-embedded loopback
    "http://[::]:{port}/t12",
    "http://10.0.0.1/t13",
    "http://172.16.5.4/t14",
    "http://172.31.255.254/t15",
    "http://192.168.1.1/t16",
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://100.64.0.1/t18",  # carrier-grade NAT
    "http://[fc00::1]/t19",  # unique local
    "http://[fd12:3456::1]/t20",
    "http://[fe80::1]/t21",  # link-local
    "http://224.0.0.1/t22",  # multicast
    "http://240.0.0.1/t23",  # reserved
    "http://[2002:7f00:1::]/t24",  # 6to4 wrapping loopback
]


@pytest.mark.parametrize("template", TARGETS)
def test_private_targets_are_refused_under_the_production_default(
    template: str, receiver: Receiver
) -> None:
    url = template.format(port=receiver.base.rsplit(":", 1)[1])
    default = Settings().section(NotificationSettings).webhook_allowed_networks
    with pytest.raises(RefusedDestinationError):
        post(url, allowed=default)
    assert receiver.requests("/t") == []


def test_the_production_default_allows_no_network() -> None:
    assert Settings().section(NotificationSettings).webhook_allowed_networks == []


def test_literal_private_addresses_are_refused_at_intake() -> None:
    for url in ("http://2130706433/", "http://[::ffff:10.0.0.1]/", "http://169.254.169.254/"):
        with pytest.raises(BlockedAddressError):
            check_url(url, allowed=[])
    check_url("https://hooks.example.com/x", allowed=[])  # a hostname waits for connect time


def test_a_redirect_to_a_private_address_is_never_followed(receiver: Receiver) -> None:
    for target in ("http://169.254.169.254/latest/meta-data/", f"{receiver.base}/secret"):
        url = f"{receiver.base}/redirect?to={target}"
        with pytest.raises(TransientDeliveryError) as caught:
            post(url, allowed=["127.0.0.1/32"])
        assert caught.value.status_code == 302
    assert receiver.requests("/secret") == []
    assert len(receiver.requests("/redirect")) == 2


def test_the_host_is_resolved_once_and_the_vetted_address_is_the_one_connected(
    receiver: Receiver,
) -> None:
    port = int(receiver.base.rsplit(":", 1)[1])
    calls: list[str] = []

    def resolver(host: str, _: int) -> list[str]:
        calls.append(host)
        # A rebinding DNS would answer differently next time: there is no next time.
        return ["127.0.0.1"] if len(calls) == 1 else ["10.0.0.1"]

    report = post(
        f"http://rebind.test:{port}/ok/rebind", allowed=["127.0.0.1/32"], resolver=resolver
    )
    assert report.status_code == 200  # type: ignore[attr-defined]
    assert calls == ["rebind.test"]
    (seen,) = receiver.requests("/ok/rebind")
    assert seen["headers"]["host"] == f"rebind.test:{port}"


def test_any_blocked_answer_refuses_the_host(receiver: Receiver) -> None:
    with pytest.raises(RefusedDestinationError):
        post(
            "http://mixed.test/x",
            allowed=[],
            resolver=lambda host, port: ["93.184.216.34", "127.0.0.1"],
        )
