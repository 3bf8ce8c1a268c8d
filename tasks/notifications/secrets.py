"""Webhook signing secrets: Standard Webhooks `whsec_` secrets, sealed at rest with Fernet."""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from functools import cache, lru_cache

from cryptography.fernet import Fernet, InvalidToken

from config import Settings
from errors import InvalidFieldError, SwitchyardError
from tasks.notifications.settings import NotificationSettings

PREFIX = "whsec_"
# Only for dev and test; in prod, sealing or unsealing without notifications.secret_key fails.
DEV_KEY = "switchyard-dev-only-notification-key"


class SealingKeyError(SwitchyardError):
    """No key to seal or unseal with: none is set in prod (where the built-in key is never
    used), or the one set is not the key a stored secret was sealed with."""

    code = "sealing_key_unusable"


def _fernet(settings: Settings) -> Fernet:
    configured = settings.section(NotificationSettings).secret_key
    if configured is None and settings.env == "prod":
        raise SealingKeyError("set SWITCHYARD_NOTIFICATIONS__SECRET_KEY in prod")
    return _fernet_for(configured.get_secret_value() if configured is not None else DEV_KEY)


@cache
def _fernet_for(material: str) -> Fernet:
    # Built once per key: every webhook delivery unseals its endpoint's secrets.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


def seal(plain: str, *, settings: Settings) -> str:
    """Encrypt a secret for storage."""
    return _fernet(settings).encrypt(plain.encode()).decode()


def unseal(sealed: str, *, settings: Settings) -> str:
    """Decrypt a stored secret (SealingKeyError if the key changed under it)."""
    return _unseal(sealed, _fernet(settings))


@lru_cache(maxsize=4_096)
def _unseal(sealed: str, fernet: Fernet) -> str:
    # Every webhook delivery signs with its endpoint's secrets: decrypt each sealed value once
    # per process (a rotated secret is a new sealed value; a new key, a new Fernet).
    try:
        return fernet.decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise SealingKeyError("stored secret cannot be decrypted with the current key") from exc


def new_secret() -> str:
    """A fresh `whsec_` secret of 32 random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str, *, field: str = "secret") -> bytes:
    """The HMAC key inside a `whsec_` secret; InvalidFieldError on `field` if malformed."""
    if not secret.startswith(PREFIX):
        raise InvalidFieldError("a webhook secret starts with 'whsec_'", field=field)
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidFieldError("a webhook secret is base64 after 'whsec_'", field=field) from exc
    if not 24 <= len(key) <= 64:
        raise InvalidFieldError("a webhook secret holds 24 to 64 bytes", field=field)
    return key
