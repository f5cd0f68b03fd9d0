"""API keys for merchants and third-party apps: created once, stored hashed, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from carpay.errors import NotAuthorized, NotFound, Unauthenticated, ValidationFailed
from carpay.ledger.models import ApiKey, utcnow
from carpay.ledger.pagination import Page, paginate

__all__ = ["SCOPES", "ApiKeys", "NewApiKey", "Principal"]

#: Every scope a key may hold. ``admin`` implies all the others.
SCOPES = frozenset(
    {
        "admin",
        "ledger:read",
        "payments:read",
        "payments:write",
        "transfers:read",
        "transfers:write",
        "vehicles:write",
        "webhooks:read",
        "webhooks:write",
    }
)

_TOKEN_PREFIX = "cpk"
#: ``last_used_at`` is written at most this often per key: not one write per request.
_TOUCH_EVERY = timedelta(minutes=1)


def _hash(token: str) -> str:
    # The token carries 256 random bits: a plain hash resists guessing as well as any KDF,
    # and keeps verification to one cheap call per request.
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, the owner it acts for and what it may do."""

    key_id: int
    owner: str
    scopes: frozenset[str]
    #: When the key was last recorded as used (None: never), as of its look-up.
    last_used_at: datetime | None = field(default=None, compare=False)

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def require(self, scope: str) -> None:
        """Raise :class:`NotAuthorized` unless this principal holds ``scope``."""
        if not self.has(scope):
            raise NotAuthorized(f"this API key lacks the scope {scope!r}")


@dataclass(frozen=True)
class NewApiKey:
    """A key just created: ``secret`` is the whole token, shown this once and never again."""

    key: ApiKey
    secret: str = field(repr=False)


class ApiKeys:
    """Creates, lists, revokes and verifies API keys.

    ``clock`` gives the current time and ``token`` random URL-safe text of n bytes; tests
    may pass fakes.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = utcnow,
        token: Callable[[int], str] = secrets.token_urlsafe,
    ) -> None:
        self._clock = clock
        self._token = token

    def create(
        self, session: Session, *, name: str, owner: str, scopes: Iterable[str]
    ) -> NewApiKey:
        """A new key for ``owner`` with ``scopes``; its secret is returned here only."""
        scopes = sorted(set(scopes))
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise ValidationFailed(
                f"unknown scopes: {', '.join(unknown)}",
                errors=[{"loc": ["scopes"], "msg": f"unknown scope {s!r}"} for s in unknown],
            )
        if not scopes:
            raise ValidationFailed(
                "a key needs at least one scope", errors=[{"loc": ["scopes"], "msg": "empty"}]
            )
        prefix = secrets.token_hex(8)
        secret = f"{_TOKEN_PREFIX}_{prefix}_{self._token(32)}"
        key = ApiKey(
            prefix=prefix,
            secret_hash=_hash(secret),
            name=name,
            owner=owner,
            scopes=scopes,
            created_at=self._clock(),
        )
        session.add(key)
        session.flush()
        return NewApiKey(key, secret)

    def get(self, session: Session, key_id: int, *, owner: str | None = None) -> ApiKey:
        """One key; :class:`NotFound` if it does not exist or is not ``owner``'s (if given)."""
        key = session.get(ApiKey, key_id)
        if key is None or (owner is not None and key.owner != owner):
            raise NotFound(f"no API key {key_id}")
        return key

    def list(
        self,
        session: Session,
        *,
        owner: str | None = None,
        limit: int = 50,
        after: int | None = None,
    ) -> Page[ApiKey]:
        """Keys, newest first, of ``owner`` if given."""
        stmt = sa.select(ApiKey)
        if owner is not None:
            stmt = stmt.where(ApiKey.owner == owner)
        return paginate(session, stmt, ApiKey.id, limit=limit, after=after)

    def revoke(self, session: Session, key_id: int, *, owner: str | None = None) -> ApiKey:
        """Revoke a key for good; revoking twice keeps the first time."""
        key = self.get(session, key_id, owner=owner)
        if key.revoked_at is None:
            key.revoked_at = self._clock()
        return key

    def has_active(self, session: Session, scope: str) -> bool:
        """Whether any unrevoked key holds ``scope`` exactly."""
        keys = session.scalars(sa.select(ApiKey).where(ApiKey.revoked_at.is_(None)))
        return any(scope in key.scopes for key in keys)

    def verify(self, session: Session, token: str) -> Principal:
        """The principal ``token`` stands for; :class:`Unauthenticated` if it stands for none.

        The refusal never says whether the key exists or was revoked, nor repeats the token.
        """
        principal = self.look_up(session, token)
        self.touch(session, principal.key_id)
        return principal

    def look_up(self, session: Session, token: str) -> Principal:
        """What :meth:`verify` does, reading only: the key's use is not recorded."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != _TOKEN_PREFIX:
            raise Unauthenticated("the API key is malformed")
        key = session.scalars(sa.select(ApiKey).where(ApiKey.prefix == parts[1])).one_or_none()
        if key is None or not hmac.compare_digest(key.secret_hash, _hash(token)):
            raise Unauthenticated("the API key is not valid")
        if key.revoked_at is not None:
            raise Unauthenticated("the API key is not valid")
        return Principal(key.id, key.owner, frozenset(key.scopes), key.last_used_at)

    def touch(self, session: Session, key_id: int) -> None:
        """Record that key ``key_id`` was used now (at most once a minute)."""
        key = session.get(ApiKey, key_id)
        if key is not None and self._stale(key.last_used_at):
            key.last_used_at = self._clock()

    def due_touch(self, principal: Principal) -> bool:
        """Whether :meth:`touch` would record anything for ``principal`` now."""
        return self._stale(principal.last_used_at)

    def _stale(self, last_used_at: datetime | None) -> bool:
        return last_used_at is None or self._clock() - last_used_at >= _TOUCH_EVERY
