"""Idempotent requests over HTTP: the Idempotency-Key header and the answer stored for it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from carpay.accounts.api_keys import Principal
from carpay.errors import IdempotencyKeyRequired
from carpay.services.idempotency import StoredResponse

__all__ = ["REPLAYED_HEADER", "idempotent"]

#: Set on an answer that is the stored one of an earlier request with the same key.
REPLAYED_HEADER = "Idempotent-Replayed"


def fingerprint(body: BaseModel) -> str:
    """What makes two requests the same: their parsed body, in canonical JSON."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(
    request: Request,
    principal: Principal,
    key: str | None,
    body: BaseModel,
    run: Callable[[Session], Any],
    *,
    model: type[BaseModel],
    status: int = 201,
    check: Callable[[], Any] | None = None,
) -> Response:
    """Run ``run(session)`` once per ``key`` of the caller; repeats get the first answer.

    The result is rendered as ``model``, exactly as the route's other answers are. With
    ``check``, ``run(session, check())``: ``check`` does what needs no database (signatures,
    reads of the chain) after the key is claimed and before the transaction begins, so the
    transaction, which holds SQLite's write lock, does not wait for the node.

    The answer is stored in the transaction of ``run``'s effects, so both commit or neither.
    A request that fails gives its key up: the caller may retry it.
    """
    if not key:
        raise IdempotencyKeyRequired()
    platform = request.app.state.platform
    claimed = platform.idempotency.claim(
        principal.owner,
        key,
        method=request.method,
        path=request.url.path,
        fingerprint=fingerprint(body),
    )
    if isinstance(claimed, StoredResponse):
        return Response(
            claimed.body,
            claimed.status,
            media_type="application/json",
            headers={REPLAYED_HEADER: "true"},
        )
    try:
        args = () if check is None else (check(),)
        with platform.db.begin() as session:
            text = model.model_validate(run(session, *args)).model_dump_json()
            platform.idempotency.complete(session, claimed, status, text)
    except BaseException:
        platform.idempotency.release(claimed)
        raise
    return Response(text, status, media_type="application/json")
