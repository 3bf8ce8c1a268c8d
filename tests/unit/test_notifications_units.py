"""Notifications logic with no I/O: templates, scheduling, address classes, signatures."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, time, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from config import Settings
from errors import InvalidFieldError
from tasks.notifications.channels.email import OutgoingEmail, build_message, message_id_for
from tasks.notifications.channels.webhook import _target, signed_headers
from tasks.notifications.scheduling import after_quiet_hours, rate_limited_slot
from tasks.notifications.schemas import QuietHours
from tasks.notifications.secrets import (
    SealingKeyError,
    new_secret,
    seal,
    secret_bytes,
    unseal,
)
from tasks.notifications.ssrf import (
    BlockedAddressError,
    blocked_reason,
    check_address,
    literal_address,
    parse_networks,
)
from tasks.notifications.templates import render, variables

T0 = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)


def test_a_missing_variable_is_named_and_html_is_escaped() -> None:
    parts = {"subject": "Hi {{ user.name }}", "text": "{{ code }}", "html": "<b>{{ code }}</b>"}
    assert variables(parts) == ["code", "user"]
    with pytest.raises(InvalidFieldError) as caught:
        render(parts, {"user": {"name": "A"}}, field="data")
    assert caught.value.field == "data.code"
    out = render(parts, {"user": {"name": "<A>"}, "code": "<script>"}, field="data")
    assert (out.subject, out.text) == ("Hi <A>", "<script>")
    assert out.html == "<b>&lt;script&gt;</b>"


def test_the_sandbox_refuses_attribute_escapes() -> None:
    with pytest.raises(InvalidFieldError) as caught:
        render({"text": "{{ x.__class__.__mro__ }}"}, {"x": 1}, field="data")
    assert caught.value.field in {"text", "data"}


def test_a_compiled_template_is_reused_with_a_budget_of_its_own_per_render() -> None:
    loop = {"text": "{% for i in items %}{{ i }}{% endfor %}"}
    for n in (60_000, 60_000, 3):  # 120,000 steps together: past one render's 100,000
        assert render(loop, {"items": [7] * n}, field="data").text == "7" * n
    with pytest.raises(InvalidFieldError) as caught:
        render(loop, {"items": [7] * 100_001}, field="data")
    assert caught.value.field == "data" and "loops ran more than" in str(caught.value)


def test_quiet_hours_across_midnight_in_the_recipients_zone() -> None:
    quiet = QuietHours(start=time(22), end=time(7), timezone="Europe/Paris")
    # 23:30 UTC on 28 March is 00:30 in Paris; DST starts that night, so 07:00 is 05:00 UTC.
    assert after_quiet_hours(T0, quiet) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    noon = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)
    assert after_quiet_hours(noon, quiet) == noon
    assert after_quiet_hours(noon, None) == noon


def test_rate_limit_slots_keep_count_per_period() -> None:
    period = timedelta(seconds=60)
    slots: list[datetime] = []
    for _ in range(7):
        slots.append(rate_limited_slot(slots, T0, count=3, period=period))
    assert slots == [T0] * 3 + [T0 + period] * 3 + [T0 + 2 * period]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("::1", "loopback"),
        ("fc00::1", "unique-local"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "ipv4-embedded loopback"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_classes(address: str, reason: str | None) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


def test_allow_list_admits_and_literal_forms_decode() -> None:
    check_address(ipaddress.ip_address("127.0.0.1"), allowed=parse_networks(["127.0.0.0/8"]))
    check_address(ipaddress.ip_address("::ffff:127.0.0.1"), allowed=parse_networks(["127.0.0.0/8"]))
    for spelled in ("2130706433", "0x7f000001", "0177.0.0.1", "127.1", "[::1]"):
        assert literal_address(spelled) is not None
    assert literal_address("example.com") is None


def test_a_refusal_names_the_setting_that_admits_the_address() -> None:
    with pytest.raises(BlockedAddressError) as refused:
        check_address(ipaddress.ip_address("127.0.0.1"), allowed=[], field="to")
    assert refused.value.field == "to"
    assert "loopback" in str(refused.value)
    assert "SWITCHYARD_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS" in str(refused.value)


def test_signatures_verify_with_the_reference_and_rotation_signs_twice() -> None:
    old, new = new_secret(), new_secret()
    body = json.dumps({"type": "t", "timestamp": "now", "data": {"a": 1}}).encode()
    headers = signed_headers("msg_1", body, secrets=[new, old])
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["data"] == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body + b" ", headers)


def test_secrets_are_sealed_and_validated() -> None:
    settings = Settings()
    secret = new_secret()
    sealed = seal(secret, settings=settings)
    assert secret not in sealed
    assert unseal(sealed, settings=settings) == secret
    for bad in ("nope", "whsec_!!!", "whsec_" + "QQ=="):
        with pytest.raises(InvalidFieldError) as caught:
            secret_bytes(bad, field="callback_secret")
        assert caught.value.field == "callback_secret"


def test_prod_refuses_to_seal_with_the_built_in_key() -> None:
    with pytest.raises(SealingKeyError):
        seal(new_secret(), settings=Settings(env="prod"))
    keyed = Settings(env="prod", notifications={"secret_key": "a real key from the vault"})
    sealed = seal("whsec_x", settings=keyed)
    assert unseal(sealed, settings=keyed) == "whsec_x"
    with pytest.raises(SealingKeyError):
        unseal(sealed, settings=Settings())  # another key cannot open it


def test_the_email_is_multipart_alternative_with_a_job_derived_id() -> None:
    mid = message_id_for("job-1", domain="example.org")
    msg = build_message(
        OutgoingEmail(to="a@example.com", subject="S", text="T", html="<p>H</p>", message_id=mid),
        sender="me@example.org",
    )
    assert msg["Message-ID"] == "<job-1@example.org>"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_the_host_header_keeps_an_ipv6_literal_in_brackets_and_drops_a_default_port() -> None:
    assert _target("http://[::1]:8080/hook?x=1")[1] == "[::1]:8080"
    assert _target("https://hooks.example.com/in")[1] == "hooks.example.com"
    assert _target("https://bücher.example:8443/")[1] == "xn--bcher-kva.example:8443"
