"""Tests of carpay/api/routes/transfers.py, outbox.py and idempotency.py."""

from __future__ import annotations

import threading

import httpx
import sqlalchemy as sa

from carpay.ledger.models import IdempotencyKey, OutboxIntent
from tests.api.conftest import RELAYER, bearer, make_key
from tests.api.test_problems import assert_problem

TO = "0x" + "ab" * 20
TOKEN = "0x" + "cd" * 20


def post(client, headers, body, key="key-1"):
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/v1/transfers", headers={**headers, **extra}, json=body)


def intents(database) -> list[OutboxIntent]:
    with database.begin() as s:
        return list(s.scalars(sa.select(OutboxIntent).order_by(OutboxIntent.id)))


def test_a_transfer_is_written_to_the_outbox(client, database, admin):
    response = post(client, admin, {"to": TO, "amount_minor": 1_500_000, "token": TOKEN})

    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "pending" and body["kind"] == "transfer"
    assert (body["to"].lower(), body["amount_minor"], body["token"].lower()) == (
        TO,
        1_500_000,
        TOKEN,
    )
    assert body["tx_hash"] is None and "idempotent-replayed" not in response.headers
    [intent] = intents(database)
    assert (intent.id, intent.owner, intent.reference) == (body["id"], "m1", "key-1")
    assert (intent.sender, intent.chain_id) == ("0x1111111111111111111111111111111111111111", 1337)
    assert intent.sender.lower() == RELAYER


def test_the_idempotency_key_is_required(client, database, admin):
    body = assert_problem(
        post(client, admin, {"to": TO, "amount_minor": 1}, key=None),
        400,
        "idempotency-key-required",
    )
    assert "Idempotency-Key" in body["detail"]
    assert_problem(
        post(client, admin, {"to": TO, "amount_minor": 1}, key=""), 422, "validation-failed"
    )
    assert_problem(
        post(client, admin, {"to": TO, "amount_minor": 1}, key="k" * 256), 422, "validation-failed"
    )
    assert intents(database) == []


def test_the_same_key_and_body_get_the_stored_answer(client, database, admin):
    first = post(client, admin, {"to": TO, "amount_minor": 5})
    # The same body, written differently: the same request.
    again = client.post(
        "/v1/transfers",
        headers={**admin, "Idempotency-Key": "key-1", "Content-Type": "application/json"},
        content=f'{{ "amount_minor": 5, "to": "{TO}" }}'.encode(),
    )

    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(intents(database)) == 1


def test_the_same_key_with_another_body_is_refused(client, database, admin):
    post(client, admin, {"to": TO, "amount_minor": 5})
    assert_problem(
        post(client, admin, {"to": TO, "amount_minor": 6}), 422, "idempotency-key-reused"
    )
    assert len(intents(database)) == 1


def test_keys_belong_to_their_owner(client, database, admin):
    other = bearer(make_key(database, "transfers:write", owner="m2"))
    a = post(client, admin, {"to": TO, "amount_minor": 5})
    b = post(client, other, {"to": TO, "amount_minor": 6})  # same key, another merchant

    assert b.status_code == 201 and b.json()["id"] != a.json()["id"]
    assert len(intents(database)) == 2


def test_a_refused_request_frees_its_key(client, database, admin):
    bad = post(client, admin, {"to": "0x" + "ab" * 19 + "aB", "amount_minor": 5})  # bad checksum
    body = assert_problem(bad, 422, "validation-failed")
    assert body["errors"] == [{"loc": ["to"], "msg": "bad checksum"}]
    with database.begin() as s:
        assert s.scalars(sa.select(IdempotencyKey)).all() == []

    assert post(client, admin, {"to": TO, "amount_minor": 5}).status_code == 201


def test_concurrent_requests_with_one_key_execute_once(database, admin, live_url):
    barrier = threading.Barrier(8)
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=live_url, timeout=30) as http:
            barrier.wait()
            answers.append(post(http, admin, {"to": TO, "amount_minor": 42}, key="race"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [r.status_code for r in answers] == [201] * 8
    assert len({r.text for r in answers}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in answers) == 1
    assert len(intents(database)) == 1


def test_transfers_are_read_and_paged_by_their_owner(client, database, admin):
    ids = [
        post(client, admin, {"to": TO, "amount_minor": n}, key=f"k{n}").json()["id"]
        for n in range(1, 6)
    ]
    reader = bearer(make_key(database, "transfers:read"))
    stranger = bearer(make_key(database, "transfers:read", owner="m2"))

    first = client.get("/v1/transfers?limit=2", headers=reader).json()
    assert [t["id"] for t in first["data"]] == ids[:2:-1][:2] == [ids[4], ids[3]]
    assert first["has_more"] and first["next_after"] == ids[3]
    second = client.get(f"/v1/transfers?limit=2&after={first['next_after']}", headers=reader)
    third = client.get(
        f"/v1/transfers?limit=2&after={second.json()['next_after']}", headers=reader
    ).json()
    assert [t["id"] for t in second.json()["data"]] == [ids[2], ids[1]]
    assert [t["id"] for t in third["data"]] == [ids[0]]
    assert third == {**third, "has_more": False, "next_after": None}

    one = client.get(f"/v1/transfers/{ids[0]}", headers=reader)
    assert one.status_code == 200 and one.json()["amount_minor"] == 1
    assert client.get("/v1/transfers", headers=stranger).json()["data"] == []
    assert_problem(client.get(f"/v1/transfers/{ids[0]}", headers=stranger), 404, "not-found")
    assert_problem(client.get("/v1/transfers/999999", headers=reader), 404, "not-found")


def test_writing_needs_the_write_scope(client, database):
    reader = bearer(make_key(database, "transfers:read"))
    assert_problem(post(client, reader, {"to": TO, "amount_minor": 1}), 403, "not-authorized")
    assert intents(database) == []


def test_outbox_status_of_an_intent(client, database, admin):
    created = post(client, admin, {"to": TO, "amount_minor": 5}).json()
    with database.begin() as s:
        s.get(OutboxIntent, created["id"]).state = "sent"

    status = client.get(f"/v1/outbox/{created['id']}", headers=admin)

    assert status.status_code == 200
    assert status.json() == {**created, "state": "sent"}
    stranger = bearer(make_key(database, "transfers:read", owner="m2"))
    assert_problem(client.get(f"/v1/outbox/{created['id']}", headers=stranger), 404, "not-found")
    no_scope = bearer(make_key(database, "webhooks:read"))
    assert_problem(
        client.get(f"/v1/outbox/{created['id']}", headers=no_scope), 403, "not-authorized"
    )
