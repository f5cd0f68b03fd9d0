"""Tests of carpay/api/routes/webhooks.py: subscriptions, events, replays, signed deliveries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from carpay.services.webhooks import WebhookDispatcher, Webhooks, verify_signature
from carpay.testing.webhooks import WebhookReceiver
from tests.api.conftest import bearer, make_key
from tests.api.test_problems import assert_problem

SUBS = "/v1/webhooks/subscriptions"


@pytest.fixture
def writer(database):
    return bearer(make_key(database, "webhooks:read", "webhooks:write"))


def subscribe(client, headers, **body):
    body = {"url": "https://merchant.example/hooks", "events": ["transfer.succeeded"], **body}
    response = client.post(SUBS, headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def publish(database, clock, event_id="evt_1", type="transfer.succeeded", owner="m1"):
    with database.begin() as s:
        Webhooks(clock=clock).publish(
            s, event_id=event_id, type=type, owner=owner, data={"id": 1, "amount_minor": 5}
        )


def test_subscription_crud(client, writer):
    created = subscribe(client, writer, description="shop", events=["transfer.failed", "*"])
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["*", "transfer.failed"] and created["active"] is True
    url = f"{SUBS}/{created['id']}"

    fetched = client.get(url, headers=writer).json()
    assert "secret" not in fetched and fetched == {
        k: v for k, v in created.items() if k != "secret"
    }
    listed = client.get(SUBS, headers=writer).json()
    assert listed == {"data": [fetched], "has_more": False, "next_after": None}
    assert created["secret"] not in json.dumps(listed)

    patched = client.patch(url, headers=writer, json={"active": False, "events": ["*"]})
    assert patched.status_code == 200
    assert (patched.json()["active"], patched.json()["events"]) == (False, ["*"])
    assert patched.json()["description"] == "shop"

    assert client.delete(url, headers=writer).status_code == 204
    assert_problem(client.get(url, headers=writer), 404, "not-found")
    assert_problem(client.delete(url, headers=writer), 404, "not-found")
    assert_problem(client.patch(url, headers=writer, json={}), 404, "not-found")


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"url": "ftp://merchant.example/x"}, ["body", "url"]),
        ({"url": "https://user:pw@merchant.example/x"}, ["body", "url"]),
        ({"url": "https://merchant.example/\u00e9"}, ["body", "url"]),
        ({"events": ["no.such.event"]}, ["body", "events", 0]),
        ({"description": "nul\x00"}, ["body", "description"]),
        ({"events": []}, ["body", "events"]),
        ({"url": ""}, ["body", "url"]),
        ({"surprise": 1}, ["body", "surprise"]),
    ],
)
def test_invalid_subscriptions_are_refused(client, writer, body, loc):
    body = {"url": "https://merchant.example/hooks", "events": ["*"], **body}
    problem = assert_problem(client.post(SUBS, headers=writer, json=body), 422, "validation-failed")
    assert loc in [e["loc"] for e in problem["errors"]]


def test_subscriptions_belong_to_their_owner_and_need_scopes(client, database, writer):
    created = subscribe(client, writer)
    stranger = bearer(make_key(database, "webhooks:read", "webhooks:write", owner="m2"))
    reader = bearer(make_key(database, "webhooks:read"))

    assert client.get(SUBS, headers=stranger).json()["data"] == []
    assert_problem(client.get(f"{SUBS}/{created['id']}", headers=stranger), 404, "not-found")
    assert client.get(SUBS, headers=reader).status_code == 200
    assert_problem(
        client.post(SUBS, headers=reader, json={"url": "https://x.example", "events": ["*"]}),
        403,
        "not-authorized",
    )
    transfers_only = bearer(make_key(database, "transfers:read"))
    assert_problem(client.get(SUBS, headers=transfers_only), 403, "not-authorized")


def test_subscriptions_are_paged(client, writer):
    ids = [subscribe(client, writer)["id"] for _ in range(3)]
    first = client.get(f"{SUBS}?limit=2", headers=writer).json()
    assert [s["id"] for s in first["data"]] == [ids[2], ids[1]] and first["has_more"]
    rest = client.get(f"{SUBS}?limit=2&after={first['next_after']}", headers=writer).json()
    assert [s["id"] for s in rest["data"]] == [ids[0]] and not rest["has_more"]


def test_events_are_listed_filtered_fetched_and_replayed(client, database, writer, clock):
    sub = subscribe(client, writer)
    publish(database, clock, "evt_1", "transfer.succeeded")
    publish(database, clock, "evt_2", "transfer.failed")
    publish(database, clock, "evt_3", "transfer.succeeded", owner="m2")

    listed = client.get("/v1/events", headers=writer).json()
    assert [e["id"] for e in listed["data"]] == ["evt_2", "evt_1"]
    only = client.get("/v1/events?type=transfer.failed", headers=writer).json()
    assert [e["id"] for e in only["data"]] == ["evt_2"]
    page = client.get("/v1/events?limit=1", headers=writer).json()
    assert page["has_more"] and page["next_after"] == listed["data"][0]["seq"]
    after = client.get(f"/v1/events?limit=1&after={page['next_after']}", headers=writer).json()
    assert [e["id"] for e in after["data"]] == ["evt_1"]

    event = client.get("/v1/events/evt_1", headers=writer).json()
    assert event["type"] == "transfer.succeeded" and event["data"]["amount_minor"] == 5
    [delivery] = event["deliveries"]
    assert (delivery["subscription_id"], delivery["state"]) == (sub["id"], "pending")
    assert client.get("/v1/events/evt_2", headers=writer).json()["deliveries"] == []
    assert_problem(client.get("/v1/events/evt_3", headers=writer), 404, "not-found")
    assert_problem(client.get("/v1/events/evt_none", headers=writer), 404, "not-found")
    assert_problem(client.get("/v1/events/evt%00", headers=writer), 422, "validation-failed")

    replayed = client.post("/v1/events/evt_1/replay", headers=writer)
    assert replayed.status_code == 202 and replayed.json()["deliveries"][0]["state"] == "pending"
    assert_problem(client.post("/v1/events/evt_3/replay", headers=writer), 404, "not-found")
    reader = bearer(make_key(database, "webhooks:read"))
    assert_problem(client.post("/v1/events/evt_1/replay", headers=reader), 403, "not-authorized")


def test_deliveries_reach_a_real_receiver_signed_and_replay_sends_again(
    client, database, writer, clock
):
    with WebhookReceiver([500, 200]) as receiver:
        sub = subscribe(client, writer, url=receiver.url, events=["transfer.succeeded"])
        publish(database, clock, "evt_1")
        dispatcher = WebhookDispatcher(database, clock=clock, timeout=5)
        try:
            assert dispatcher.run_once() == 1  # answered 500: retried later
            failed = client.get("/v1/events/evt_1", headers=writer).json()["deliveries"][0]
            assert (failed["state"], failed["attempts"], failed["last_status"]) == (
                "pending",
                1,
                500,
            )
            clock.now += timedelta(minutes=1)  # past the first backoff
            assert dispatcher.run_once() == 1
            done = client.get("/v1/events/evt_1", headers=writer).json()["deliveries"][0]
            assert (done["state"], done["attempts"], done["last_status"]) == ("succeeded", 2, 200)

            client.post("/v1/events/evt_1/replay", headers=writer)
            assert dispatcher.run_once() == 1
        finally:
            dispatcher.close()

    assert len(receiver.received) == 3
    for received in receiver.received:
        headers = {k.lower(): v for k, v in received.headers.items()}
        verify_signature(
            sub["secret"], headers["carpay-signature"], received.body, now=clock.now.timestamp()
        )
        assert headers["carpay-event-id"] == "evt_1"
        assert json.loads(received.body)["data"] == {"id": 1, "amount_minor": 5}
