"""API keys: created once, stored as a hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import namedtuple_row
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import ApiKey
from store.sql import KEYS_BY_ID

KEY_PREFIX = "sy"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the producer's name, its key and its scopes."""

    producer: str
    key_id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """True if the key carries `scope` or `admin`."""
        return scope in self.scopes or "admin" in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, *, name: str, scopes: list[str], known: frozenset[str]
) -> tuple[ApiKey, str]:
    """Store a new key for producer `name`; returns the row and the only copy of the token.

    `known` is every scope the loaded domains declare: any other is refused.
    """
    unknown = set(scopes) - known
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, name=name, secret_hash=_hash(secret), scopes=sorted(set(scopes)))
    session.add(row)
    session.flush()
    return row, f"{KEY_PREFIX}_{key_id}_{secret}"


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    return parts[1], parts[2]


def _verify(row: Any, secret: str) -> Principal | None:
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    return Principal(producer=row.name, key_id=row.id, scopes=frozenset(row.scopes))


@dataclass(frozen=True)
class _KeyLookup:
    """Tokens split into key id and secret: the ids to fetch, then each token's principal."""

    split: dict[str, tuple[str, str] | None]

    @classmethod
    def of(cls, tokens: Iterable[str]) -> _KeyLookup:
        """Split each distinct token (None: malformed)."""
        return cls({token: _split(token) for token in set(tokens)})

    @property
    def ids(self) -> list[str]:
        """The key ids to fetch."""
        return list({parts[0] for parts in self.split.values() if parts is not None})

    def principals(self, rows: Iterable[Any]) -> dict[str, Principal | None]:
        """Each token's principal, given the fetched rows (anything with `ApiKey`'s columns)."""
        by_id = {row.id: row for row in rows}
        return {
            token: None if parts is None else _verify(by_id.get(parts[0]), parts[1])
            for token, parts in self.split.items()
        }


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal behind a token, or None if it is malformed, unknown or revoked."""
    return authenticate_many(session, [token])[token]


def authenticate_many(session: Session, tokens: Iterable[str]) -> dict[str, Principal | None]:
    """Each token's principal (None if malformed, unknown or revoked), in one query."""
    lookup = _KeyLookup.of(tokens)
    rows: Iterable[ApiKey] = (
        session.scalars(select(ApiKey).where(ApiKey.id.in_(lookup.ids))) if lookup.ids else []
    )
    return lookup.principals(rows)


async def authenticate_many_async(
    conn: AsyncConnection[Any], tokens: Iterable[str]
) -> dict[str, Principal | None]:
    """`authenticate_many` on a raw psycopg connection (the intake writer's), in one query."""
    lookup = _KeyLookup.of(tokens)
    if not lookup.ids:
        return lookup.principals([])
    async with conn.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(KEYS_BY_ID, {"ids": lookup.ids})
        return lookup.principals(await cursor.fetchall())


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, newest first (hashes only)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke a key; False if no active key has that id."""
    moved = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiKey.id)
    ).one_or_none()
    return moved is not None
