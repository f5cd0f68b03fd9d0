"""Who is calling and how often: API keys as bearer tokens, scopes, a token bucket per key."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carpay.accounts.api_keys import Principal
from carpay.errors import RateLimited, Unauthenticated

__all__ = ["RateLimiter", "authenticated", "client_address", "requires"]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cpk_...`")


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per caller: ``rate`` requests a second, bursts of up to ``burst``.

    ``now`` gives seconds on any monotonic scale. The buckets live in this process: several
    API processes each allow the full rate.
    """

    #: Buckets kept before full ones (callers quiet long enough to be back at ``burst``)
    #: are forgotten.
    MAX_BUCKETS = 10_000

    def __init__(self, rate: float, burst: int, now: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._now = now
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        """Spend one token of ``caller``'s; :class:`RateLimited` if there is none."""
        with self._lock:
            now = self._now()
            bucket = self._buckets.get(caller)
            if bucket is None:
                if len(self._buckets) >= self.MAX_BUCKETS:
                    self._forget_full(now)
                bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return
            wait = (1 - bucket.tokens) / self.rate if self.rate > 0 else 3600
        raise RateLimited(retry_after=max(1, math.ceil(wait)))

    def _forget_full(self, now: float) -> None:
        for caller, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self.rate >= self.burst:
                del self._buckets[caller]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller's principal from its bearer API key, after its rate limit is checked."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API key: Authorization: Bearer <key>")
    platform = request.app.state.platform
    # A read for every request; the write of its use at most once a minute a key.
    with platform.db.read() as session:
        principal = platform.api_keys.look_up(session, credentials.credentials)
    if platform.api_keys.due_touch(principal):
        with platform.db.begin() as session:
            platform.api_keys.touch(session, principal.key_id)
    platform.limiter.take(f"key:{principal.key_id}")
    return principal


def requires(scope: str) -> Callable[..., Principal]:
    """A dependency: the authenticated principal, which must hold ``scope``."""

    def dependency(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        principal.require(scope)
        return principal

    dependency.__name__ = f"requires_{scope.replace(':', '_')}"
    return dependency
