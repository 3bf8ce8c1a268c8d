"""SMTP security from settings: STARTTLS or implicit TLS with credentials; untrusted certs fail."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from devstack.processes import free_port
from tasks.notifications.channels import TransientDeliveryError
from tasks.notifications.channels.email import OutgoingEmail, send_email
from tasks.notifications.settings import SmtpSettings
from tests.support.notifications import SmtpSink

EMAIL = OutgoingEmail(
    to="tls@example.com", subject="S", text="T", html=None, message_id="<tls-1@switchyard.local>"
)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made for this run."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"svc", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def server(
    cert: tuple[Path, Path], request: pytest.FixtureRequest
) -> Iterator[tuple[int, SmtpSink]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    sink = SmtpSink()
    implicit = request.param == "tls"
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; implicit TLS is TLS throughout.
    options: dict[str, Any] = (
        {"ssl_context": context, "auth_require_tls": False}
        if implicit
        else {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
    )
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_authenticate,
        auth_required=True,
        auth_exclude_mechanism=["LOGIN"],
        server_hostname="127.0.0.1",
        **options,
    )
    controller.start()
    yield controller.port, sink
    controller.stop()


def settings_for(
    port: int, security: str, ca: Path | None, password: str = "s3cret"
) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        security=security,
        username="svc",
        password=SecretStr(password),
        ca_file=str(ca) if ca else None,
        timeout=5,
    )


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("server", ["starttls", "tls"], indirect=True)
def test_a_secured_authenticated_relay_receives_the_message(
    server: tuple[int, SmtpSink], cert: tuple[Path, Path], request: pytest.FixtureRequest
) -> None:
    port, sink = server
    security = request.node.callspec.params["server"]
    report = send_email(EMAIL, smtp=settings_for(port, security, cert[0]))
    assert report.status_code == 250
    (message,) = sink.messages("tls@example.com")
    assert message["Message-ID"] == "<tls-1@switchyard.local>"


@pytest.mark.parametrize("server", ["starttls"], indirect=True)
def test_an_untrusted_certificate_is_not_sent_to(
    server: tuple[int, SmtpSink], cert: tuple[Path, Path]
) -> None:
    port, sink = server
    with pytest.raises(TransientDeliveryError) as caught:
        send_email(EMAIL, smtp=settings_for(port, "starttls", None))  # system CAs only
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert sink.received == []
