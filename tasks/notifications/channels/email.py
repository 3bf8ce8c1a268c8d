"""Email over SMTP: one multipart/alternative message whose Message-ID is derived from the job."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

from tasks.notifications.channels import (
    DeliveryReport,
    RejectedDeliveryError,
    TransientDeliveryError,
)
from tasks.notifications.settings import SmtpSettings


@dataclass(frozen=True)
class OutgoingEmail:
    """One email to send."""

    to: str
    subject: str
    text: str
    html: str | None
    message_id: str


def message_id_for(job_id: object, *, domain: str) -> str:
    """The Message-ID of a job's email: the same on every retry of that job."""
    return f"<{job_id}@{domain}>"


def build_message(email: OutgoingEmail, *, sender: str) -> EmailMessage:
    """The MIME message: text/plain, plus text/html as an alternative when there is HTML."""
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = email.message_id
    msg.set_content(email.text)
    if email.html is not None:
        msg.add_alternative(email.html, subtype="html")
    return msg


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


def _raise_for(code: int, text: bytes | str, what: str) -> None:
    reply = _reply(code, text)
    error = TransientDeliveryError if 400 <= code < 500 else RejectedDeliveryError
    raise error(f"{what} refused: {reply}", status_code=code, reply=reply)


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context(cafile=smtp.ca_file)
    if smtp.security == "tls":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    if smtp.security == "starttls":
        client.starttls(context=context)
    return client


def send_email(email: OutgoingEmail, *, smtp: SmtpSettings) -> DeliveryReport:
    """Hand the message to the SMTP relay; the final DATA reply is the delivery's record."""
    msg = build_message(email, sender=smtp.from_address)
    try:
        with _connect(smtp) as client:
            client.ehlo_or_helo_if_needed()
            if smtp.username and smtp.password:
                client.login(smtp.username, smtp.password.get_secret_value())
            code, text = client.mail(smtp.from_address)
            if code != 250:
                _raise_for(code, text, "MAIL FROM")
            code, text = client.rcpt(email.to)
            if code not in (250, 251):
                _raise_for(code, text, "RCPT TO")
            code, text = client.data(msg.as_bytes())
            if code != 250:
                _raise_for(code, text, "DATA")
            return DeliveryReport(status_code=code, reply=_reply(code, text))
    except smtplib.SMTPResponseException as exc:
        _raise_for(exc.smtp_code, exc.smtp_error, "SMTP")
    except (OSError, smtplib.SMTPException) as exc:
        raise TransientDeliveryError(f"SMTP unavailable: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover
