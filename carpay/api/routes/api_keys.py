"""/v1/api-keys: an owner's admin key creates, lists and revokes the owner's keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import After, Id, Limit, platform
from carpay.api.schemas import ApiKeyCreate, ApiKeyOut, List, NewApiKeyOut, page_of
from carpay.api.security import requires

router = APIRouter(tags=["api keys"], responses=problem_responses(401, 403, 422, 429))

Admin = Annotated[Principal, Depends(requires("admin"))]


@router.post("/api-keys", status_code=201, response_model=NewApiKeyOut, summary="Create an API key")
def create_api_key(body: ApiKeyCreate, request: Request, principal: Admin) -> dict:
    """A key for the caller's owner; the answer holds the whole key, shown this once."""
    p = platform(request)
    with p.db.begin() as session:
        new = p.api_keys.create(session, name=body.name, owner=principal.owner, scopes=body.scopes)
        return {**ApiKeyOut.of(new.key), "secret": new.secret}


@router.get("/api-keys", response_model=List[ApiKeyOut], summary="List API keys")
def list_api_keys(
    request: Request, principal: Admin, limit: Limit = 50, after: After = None
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        page = p.api_keys.list(session, owner=principal.owner, limit=limit, after=after)
        return page_of(page, ApiKeyOut.of)


@router.get(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    responses=problem_responses(404),
    summary="Get an API key",
)
def get_api_key(key_id: Id, request: Request, principal: Admin) -> dict:
    p = platform(request)
    with p.db.read() as session:
        return ApiKeyOut.of(p.api_keys.get(session, key_id, owner=principal.owner))


@router.delete(
    "/api-keys/{key_id}",
    response_model=ApiKeyOut,
    responses=problem_responses(404),
    summary="Revoke an API key",
)
def revoke_api_key(key_id: Id, request: Request, principal: Admin) -> dict:
    """Revoked for good; revoking again changes nothing."""
    p = platform(request)
    with p.db.begin() as session:
        return ApiKeyOut.of(p.api_keys.revoke(session, key_id, owner=principal.owner))
