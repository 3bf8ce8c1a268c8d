"""`switchyard dev`'s SMTP sink: every email the stack sends lands in `DATA_DIR/mail/`, one
`.eml` file per message, numbered in arrival order; `switchyard dev-mail` reads them back."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from errors import NotFoundError

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

NAME = re.compile(r"^(\d{6})\.eml$")


class MailNotFoundError(NotFoundError):
    """No stored message has this number."""

    code = "dev_mail_not_found"


@dataclass(frozen=True)
class StoredMail:
    """One message the sink received."""

    id: int
    received: datetime
    path: Path

    def parsed(self) -> EmailMessage:
        """The message, parsed with the modern email policy."""
        message = message_from_bytes(self.path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)  # what policy.default builds
        return message

    def summary(self) -> dict[str, str | int]:
        """Number, arrival time, From, To and Subject."""
        message = self.parsed()
        return {
            "id": self.id,
            "received": self.received.isoformat(timespec="seconds"),
            "from": str(message.get("From", "")),
            "to": str(message.get("To", "")),
            "subject": str(message.get("Subject", "")),
        }


def stored(directory: Path) -> list[StoredMail]:
    """Every stored message, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        if match := NAME.match(path.name):
            received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found.append(StoredMail(int(match.group(1)), received, path))
    return sorted(found, key=lambda mail: mail.id)


def one(directory: Path, mail_id: int) -> StoredMail:
    """The message numbered `mail_id`, or MailNotFoundError."""
    for mail in stored(directory):
        if mail.id == mail_id:
            return mail
    raise MailNotFoundError(f"no message {mail_id} in {directory} (`switchyard dev-mail list`)")


class MailDirectory:
    """The aiosmtpd handler: accepts every message and writes it to the next number's file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message as received (aiosmtpd calls handlers one at a time per loop)."""
        mails = stored(self.directory)
        number = mails[-1].id + 1 if mails else 1
        temporary = self.directory / f".{number:06d}.tmp"
        temporary.write_bytes(bytes(envelope.original_content))
        os.replace(temporary, self.directory / f"{number:06d}.eml")  # readers never see half
        return "250 2.0.0 stored by the switchyard dev mail sink"


def start_sink(directory: Path, *, port: int) -> Controller:
    """Serve SMTP on 127.0.0.1:`port` in a thread; `.stop()` the returned controller."""
    # Imported here: aiosmtpd is a dev dependency, and `switchyard dev-mail` (in the image's
    # CLI) only reads the files.
    from aiosmtpd.controller import Controller

    controller = Controller(MailDirectory(directory), hostname="127.0.0.1", port=port)
    controller.start()
    return controller
