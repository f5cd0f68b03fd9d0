"""Tests of carpay/api/problems.py and security.py: every error is an RFC 9457 problem."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import bearer, make_key

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"https://carpay.dev/problems/{code}"
    assert (body["status"], body["code"]) == (status, code)
    assert body["title"] and body["detail"]
    return body


def test_unknown_path_is_a_404_problem(client, admin):
    body = assert_problem(client.get("/v1/nothing-here", headers=admin), 404, "not-found")
    assert body["instance"] == "/v1/nothing-here"


def test_wrong_method_is_a_405_problem_with_allow(client, admin):
    response = client.put("/v1/transfers", headers=admin)
    assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_invalid_body_is_a_422_problem_listing_each_error(client, admin):
    response = client.post(
        "/v1/transfers",
        headers={**admin, "Idempotency-Key": "k1"},
        json={"to": "nope", "amount_minor": 0, "extra": "whsec_do_not_echo"},
    )
    body = assert_problem(response, 422, "validation-failed")
    locs = sorted(tuple(e["loc"]) for e in body["errors"])
    assert locs == [("body", "amount_minor"), ("body", "extra"), ("body", "to")]
    assert "whsec_do_not_echo" not in response.text  # input is never echoed


def test_malformed_json_is_a_422_problem(client, admin):
    response = client.post(
        "/v1/transfers",
        headers={**admin, "Idempotency-Key": "k1", "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert_problem(response, 422, "validation-failed")


def test_invalid_query_and_path_parameters_are_422_problems(client, admin):
    assert_problem(client.get("/v1/transfers?limit=0", headers=admin), 422, "validation-failed")
    assert_problem(client.get("/v1/transfers?limit=101", headers=admin), 422, "validation-failed")
    assert_problem(client.get("/v1/transfers/abc", headers=admin), 422, "validation-failed")
    huge = 2**63
    assert_problem(client.get(f"/v1/transfers/{huge}", headers=admin), 422, "validation-failed")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer cpk_0011223344556677_wrong"},
    ],
)
def test_missing_or_bad_keys_are_401_problems(client, headers):
    response = client.get("/v1/transfers", headers=headers)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_revoked_key_is_refused_like_an_unknown_one(client, database, admin):
    secret = make_key(database, "transfers:read")
    assert client.get("/v1/transfers", headers=bearer(secret)).status_code == 200
    [key] = [
        k
        for k in client.get("/v1/api-keys", headers=admin).json()["data"]
        if k["scopes"] == ["transfers:read"]
    ]
    assert client.delete(f"/v1/api-keys/{key['id']}", headers=admin).status_code == 200

    body = assert_problem(
        client.get("/v1/transfers", headers=bearer(secret)), 401, "unauthenticated"
    )
    assert "revoked" not in body["detail"] and secret not in str(body)


def test_a_key_without_the_scope_is_a_403_problem(client, database):
    reader = bearer(make_key(database, "webhooks:read"))
    body = assert_problem(client.get("/v1/transfers", headers=reader), 403, "not-authorized")
    assert "transfers:read" in body["detail"]


def test_rate_limit_answers_429_with_retry_after(database, settings, app, ticker):
    settings.rate_burst = 3
    settings.rate_limit = 0.5
    from carpay.api import create_app

    limited = create_app(
        database, None, settings, monotonic=ticker, relayer_address="0x" + "11" * 20
    )
    headers = bearer(make_key(database, "transfers:read"))
    other = bearer(make_key(database, "transfers:read"))
    with TestClient(limited) as client:
        assert [client.get("/v1/transfers", headers=headers).status_code for _ in range(3)] == [
            200,
            200,
            200,
        ]
        response = client.get("/v1/transfers", headers=headers)
        body = assert_problem(response, 429, "rate-limited")
        assert response.headers["retry-after"] == "2" and body["retry_after"] == 2
        # Each key has its own bucket.
        assert client.get("/v1/transfers", headers=other).status_code == 200
        ticker.now += 2
        assert client.get("/v1/transfers", headers=headers).status_code == 200
        assert client.get("/v1/transfers", headers=headers).status_code == 429


def test_an_unexpected_failure_is_a_500_problem_without_details(app, client, admin, caplog):
    secret = "hunter" + "2"

    def broken():
        raise RuntimeError(f"password={secret} in a message")

    app.add_api_route("/v1/broken", broken)
    with caplog.at_level(logging.ERROR):
        response = client.get("/v1/broken", headers=admin)

    body = assert_problem(response, 500, "internal-error")
    assert "hunter2" not in response.text and "hunter2" not in caplog.text
    assert "RuntimeError" in caplog.text and body["instance"] == "/v1/broken"


def test_openapi_is_3_1_and_documents_problems(client):
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    post = schema["paths"]["/v1/transfers"]["post"]
    assert "application/problem+json" in post["responses"]["422"]["content"]
    assert {"name": "Idempotency-Key", "in": "header"}.items() <= post["parameters"][0].items()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
