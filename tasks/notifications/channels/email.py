"""Email over SMTP: one multipart/alternative message whose Message-ID is derived from the job."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate

from tasks.notifications.channels import (
    DeliveryError,
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


# The replies that let a message go on, per step of the SMTP conversation.
ACCEPTED_REPLIES: dict[str, frozenset[int]] = {
    "MAIL FROM": frozenset({250}),
    "RCPT TO": frozenset({250, 251}),
    "DATA": frozenset({250}),
}


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


def refusal(step: str, code: int, text: bytes | str) -> DeliveryError:
    """What the relay's refusal of `step` means: a 4xx is worth a retry, anything else final."""
    reply = _reply(code, text)
    error = TransientDeliveryError if 400 <= code < 500 else RejectedDeliveryError
    return error(f"{step} refused: {reply}", status_code=code, reply=reply)


def check_reply(step: str, code: int, text: bytes | str) -> str:
    """The reply as the delivery records it, if `step` may go on; else its `refusal`, raised."""
    if code not in ACCEPTED_REPLIES[step]:
        raise refusal(step, code, text)
    return _reply(code, text)


def smtp_unavailable(exc: Exception) -> TransientDeliveryError:
    """What an SMTP relay that could not be reached (or dropped us) means: worth a retry."""
    return TransientDeliveryError(f"SMTP unavailable: {exc}")


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
            check_reply("MAIL FROM", *client.mail(smtp.from_address))
            check_reply("RCPT TO", *client.rcpt(email.to))
            code, text = client.data(msg.as_bytes())
            return DeliveryReport(status_code=code, reply=check_reply("DATA", code, text))
    except smtplib.SMTPResponseException as exc:
        raise refusal("SMTP", exc.smtp_code, exc.smtp_error) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise smtp_unavailable(exc) from exc


@dataclass(frozen=True)
class SmtpSender:
    """The email gateway: one SMTP conversation per message, with the settings' relay."""

    smtp: SmtpSettings

    def send(self, email: OutgoingEmail) -> DeliveryReport:
        """Send once (see `send_email`)."""
        return send_email(email, smtp=self.smtp)
