"""Tests of carpay/api/routes/api_keys.py: admin keys create, list and revoke their owner's."""

from __future__ import annotations

import logging

import pytest

from tests.api.conftest import bearer, make_key
from tests.api.test_problems import assert_problem


def test_create_list_get_revoke(client, admin):
    created = client.post(
        "/v1/api-keys", headers=admin, json={"name": "shop", "scopes": ["transfers:read"]}
    )
    assert created.status_code == 201
    key = created.json()
    assert key["secret"].startswith(f"cpk_{key['prefix']}_")
    assert (key["owner"], key["scopes"], key["revoked_at"]) == ("m1", ["transfers:read"], None)

    # The new key works, for what its scopes allow.
    assert client.get("/v1/transfers", headers=bearer(key["secret"])).status_code == 200
    assert_problem(client.get("/v1/api-keys", headers=bearer(key["secret"])), 403, "not-authorized")

    listed = client.get("/v1/api-keys", headers=admin)
    assert key["secret"] not in listed.text
    assert [k["id"] for k in listed.json()["data"]][0] == key["id"]
    fetched = client.get(f"/v1/api-keys/{key['id']}", headers=admin).json()
    assert "secret" not in fetched and fetched["last_used_at"] is not None

    revoked = client.delete(f"/v1/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = client.delete(f"/v1/api-keys/{key['id']}", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert_problem(
        client.get("/v1/transfers", headers=bearer(key["secret"])), 401, "unauthenticated"
    )


@pytest.mark.parametrize(
    "body, loc",
    [
        ({"name": "x", "scopes": ["root"]}, ["body", "scopes", 0]),
        ({"name": "nul\x00", "scopes": ["admin"]}, ["body", "name"]),  # PostgreSQL can't store
        ({"name": "x", "scopes": []}, ["body", "scopes"]),
        ({"name": "", "scopes": ["admin"]}, ["body", "name"]),
        ({"scopes": ["admin"]}, ["body", "name"]),
    ],
)
def test_invalid_keys_are_refused(client, admin, body, loc):
    problem = assert_problem(
        client.post("/v1/api-keys", headers=admin, json=body), 422, "validation-failed"
    )
    assert loc in [e["loc"] for e in problem["errors"]]


def test_keys_of_other_owners_are_out_of_reach(client, database, admin):
    theirs = bearer(make_key(database, "admin", owner="m2"))
    [their_key] = client.get("/v1/api-keys", headers=theirs).json()["data"]

    assert [k["owner"] for k in client.get("/v1/api-keys", headers=admin).json()["data"]] == ["m1"]
    assert_problem(client.get(f"/v1/api-keys/{their_key['id']}", headers=admin), 404, "not-found")
    assert_problem(
        client.delete(f"/v1/api-keys/{their_key['id']}", headers=admin), 404, "not-found"
    )
    assert client.get("/v1/api-keys", headers=theirs).status_code == 200  # still valid


def test_only_admin_keys_manage_keys(client, database):
    writer = bearer(make_key(database, "transfers:write", "webhooks:write"))
    for method, path in [
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/api-keys/1"),
        ("DELETE", "/v1/api-keys/1"),
    ]:
        assert_problem(client.request(method, path, headers=writer), 403, "not-authorized")
    response = client.post("/v1/api-keys", headers=writer, json={"name": "x", "scopes": ["admin"]})
    assert_problem(response, 403, "not-authorized")


def test_secrets_never_reach_the_logs(client, admin, caplog):
    with caplog.at_level(logging.DEBUG):
        key = client.post(
            "/v1/api-keys", headers=admin, json={"name": "x", "scopes": ["webhooks:write"]}
        ).json()["secret"]
        sub = client.post(
            "/v1/webhooks/subscriptions",
            headers=bearer(key),
            json={"url": "https://x.example/h", "events": ["*"]},
        ).json()
        client.get("/v1/transfers", headers=bearer(key))  # 403, logged or not
        client.get("/v1/transfers", headers=bearer(key + "x"))  # 401

    for secret in (key, sub["secret"], admin["Authorization"].split()[1]):
        assert secret not in caplog.text
