"""/v1/webhooks/subscriptions and /v1/events: where events go, what happened, replays."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import MAX_ID, After, Id, Limit, platform
from carpay.api.schemas import (
    TEXT,
    EventOut,
    List,
    NewSubscriptionOut,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionUpdate,
    page_of,
)
from carpay.api.security import requires

router = APIRouter(responses=problem_responses(401, 403, 422, 429))

Reader = Annotated[Principal, Depends(requires("webhooks:read"))]
Writer = Annotated[Principal, Depends(requires("webhooks:write"))]
EventId = Annotated[str, Path(min_length=1, max_length=100, pattern=TEXT)]
TAGS = ["webhooks"]


@router.post(
    "/webhooks/subscriptions",
    status_code=201,
    response_model=NewSubscriptionOut,
    tags=TAGS,
    summary="Subscribe an endpoint to events",
)
def create_subscription(body: SubscriptionCreate, request: Request, principal: Writer) -> dict:
    """The answer holds the signing ``secret``, shown this once."""
    p = platform(request)
    with p.db.begin() as session:
        new = p.webhooks.subscribe(
            session,
            owner=principal.owner,
            url=body.url,
            events=body.events,
            description=body.description,
        )
        return {**SubscriptionOut.of(new.subscription), "secret": new.secret}


@router.get(
    "/webhooks/subscriptions",
    response_model=List[SubscriptionOut],
    tags=TAGS,
    summary="List subscriptions",
)
def list_subscriptions(
    request: Request, principal: Reader, limit: Limit = 50, after: After = None
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        page = p.webhooks.subscriptions(session, owner=principal.owner, limit=limit, after=after)
        return page_of(page, SubscriptionOut.of)


@router.get(
    "/webhooks/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=problem_responses(404),
    tags=TAGS,
    summary="Get a subscription",
)
def get_subscription(subscription_id: Id, request: Request, principal: Reader) -> dict:
    p = platform(request)
    with p.db.read() as session:
        return SubscriptionOut.of(
            p.webhooks.subscription(session, subscription_id, owner=principal.owner)
        )


@router.patch(
    "/webhooks/subscriptions/{subscription_id}",
    response_model=SubscriptionOut,
    responses=problem_responses(404),
    tags=TAGS,
    summary="Change a subscription",
)
def update_subscription(
    subscription_id: Id, body: SubscriptionUpdate, request: Request, principal: Writer
) -> dict:
    p = platform(request)
    with p.db.begin() as session:
        sub = p.webhooks.update(
            session,
            subscription_id,
            owner=principal.owner,
            url=body.url,
            events=body.events,
            description=body.description,
            active=body.active,
        )
        return SubscriptionOut.of(sub)


@router.delete(
    "/webhooks/subscriptions/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(404),
    tags=TAGS,
    summary="Delete a subscription",
)
def delete_subscription(subscription_id: Id, request: Request, principal: Writer) -> Response:
    p = platform(request)
    with p.db.begin() as session:
        p.webhooks.unsubscribe(session, subscription_id, owner=principal.owner)
    return Response(status_code=204)


@router.get("/events", response_model=List[EventOut], tags=["events"], summary="List events")
def list_events(
    request: Request,
    principal: Reader,
    type: Annotated[
        str | None, Query(max_length=100, pattern=TEXT, description="only this type")
    ] = None,
    limit: Limit = 50,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="the `next_after` of the previous page")
    ] = None,
) -> dict:
    p = platform(request)
    with p.db.read() as session:
        page = p.webhooks.events(
            session, owner=principal.owner, type=type, limit=limit, after=after
        )
        return page_of(page, EventOut.of)


@router.get(
    "/events/{event_id}",
    response_model=EventOut,
    responses=problem_responses(404),
    tags=["events"],
    summary="Get an event and its deliveries",
)
def get_event(event_id: EventId, request: Request, principal: Reader) -> dict:
    p = platform(request)
    with p.db.read() as session:
        return EventOut.of(p.webhooks.event(session, event_id, owner=principal.owner))


@router.post(
    "/events/{event_id}/replay",
    status_code=202,
    response_model=EventOut,
    responses=problem_responses(404),
    tags=["events"],
    summary="Deliver an event again",
)
def replay_event(event_id: EventId, request: Request, principal: Writer) -> dict:
    """Every subscription that matches the event today gets it again, now."""
    p = platform(request)
    with p.db.begin() as session:
        p.webhooks.replay(session, event_id, owner=principal.owner)
        return EventOut.of(p.webhooks.event(session, event_id, owner=principal.owner))
