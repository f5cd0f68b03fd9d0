"""Tests of carpay/api/routes/payments.py: gasless invoice payments and holds over HTTP."""

from __future__ import annotations

import pytest

from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.services.checkout import Hold, Invoice
from carpay.services.platform import deploy_platform
from carpay.services.relayer import Relayer
from carpay.testing.scenarios import sign_invoice
from carpay.testing.signing import Domain, sign_receive_authorization
from tests.api.conftest import RELAYER, bearer, chain_clock, make_key
from tests.api.test_problems import assert_problem

PEOPLE = dev_accounts(count=6)
OWNER, TREASURY, MERCHANT, PAYER, RELAYER_KEY, STRANGER = PEOPLE


@pytest.fixture
def chain(embedded, tmp_path):
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    registry = chain.contract("merchant_registry", platform.registry)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    register = registry.functions.registerMerchant(MERCHANT.address, 5, MERCHANT.address, 200)
    chain.transact(OWNER, register)
    chain.transact(OWNER, token.functions.mint(PAYER.address, 1_000_000))
    chain.platform = platform  # for the tests below
    return chain


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def writer(database):
    return bearer(make_key(database, "payments:write", "payments:read"))


def _token(chain):
    return chain.contract("currency_token", chain.platform.tokens["EUR"])


def _authorization(chain, amount, nonce, valid_before):
    signed = sign_receive_authorization(
        PAYER,
        Domain.of(_token(chain)),
        to=chain.platform.checkout,
        value=amount,
        valid_after=0,
        valid_before=valid_before,
        nonce=nonce,
    )
    return {
        "valid_after": 0,
        "valid_before": valid_before,
        "v": signed.v,
        "r": "0x" + signed.r.hex(),
        "s": "0x" + signed.s.hex(),
    }


def _payment(chain, clock, amount=120_000, invoice_id=9):
    expiry = int(clock.now.timestamp()) + 3600
    invoice = Invoice(
        MERCHANT.address, amount, _token(chain).address, "0x" + f"{invoice_id:064x}", expiry
    )
    signature = sign_invoice(chain, chain.platform.checkout, MERCHANT, invoice.as_tuple())
    return {
        "invoice": {
            "merchant": invoice.merchant,
            "amount_minor": amount,
            "token": invoice.token,
            "invoice_id": invoice.invoice_id,
            "expiry": expiry,
        },
        "merchant_signature": "0x" + signature.hex(),
        "payer": PAYER.address,
        "authorization": _authorization(chain, amount, invoice.struct_hash(), expiry),
    }


def _relay(database, chain, clock):
    relayer = Relayer(database, chain, RELAYER_KEY, clock=clock)
    for _ in range(20):
        if not relayer.run_once():
            break


@pytest.fixture
def app(database, chain, settings, clock, ticker):
    from carpay.api import create_app

    assert RELAYER_KEY.address != RELAYER
    return create_app(
        database,
        chain,
        settings,
        clock=clock,
        monotonic=ticker,
        relayer_address=RELAYER_KEY.address,
    )


def test_an_invoice_is_paid_once_through_the_api(client, chain, clock, writer, database):
    body = _payment(chain, clock)
    headers = {**writer, "Idempotency-Key": "pay-1"}

    created = client.post("/v1/payments", json=body, headers=headers)
    again = client.post("/v1/payments", json=body, headers=headers)

    assert created.status_code == 201, created.text
    assert again.status_code == 201 and again.json() == created.json()
    payment = created.json()
    assert (payment["kind"], payment["state"], payment["payer"]) == (
        "payment",
        "pending",
        PAYER.address,
    )
    other_key = client.post(
        "/v1/payments", json=body, headers={**writer, "Idempotency-Key": "pay-2"}
    )
    assert_problem(other_key, 409, "conflict")

    _relay(database, chain, clock)

    done = client.get(f"/v1/payments/{payment['id']}", headers=writer).json()
    assert done["state"] == "confirmed" and done["tx_hash"]
    assert _token(chain).functions.balanceOf(MERCHANT.address).call() == 117_600  # 2% fee
    listed = client.get("/v1/payments", headers=writer).json()
    assert [p["id"] for p in listed["data"]] == [payment["id"]]


def test_a_hold_is_requested_through_the_api(client, chain, clock, writer, database):
    deadline = int(clock.now.timestamp()) + 900
    hold = Hold(
        PAYER.address, MERCHANT.address, _token(chain).address, 50_000, deadline, "0x" + "02" * 32
    )
    body = {
        "hold": {
            "payer": hold.payer,
            "merchant": hold.merchant,
            "token": hold.token,
            "amount_minor": hold.amount_minor,
            "deadline": deadline,
            "salt": hold.salt,
        },
        "authorization": _authorization(chain, 50_000, hold.struct_hash(), deadline),
    }
    created = client.post("/v1/holds", json=body, headers={**writer, "Idempotency-Key": "hold-1"})
    assert created.status_code == 201, created.text
    assert created.json()["hold_id"] == "0x" + hold.struct_hash().hex()

    _relay(database, chain, clock)

    request_id = created.json()["id"]
    assert (
        client.get(f"/v1/holds/requests/{request_id}", headers=writer).json()["state"]
        == "confirmed"
    )
    assert _token(chain).functions.balanceOf(chain.platform.checkout).call() == 50_000


def test_a_bad_signature_is_a_problem_and_records_nothing(client, chain, clock, writer):
    body = _payment(chain, clock)
    body["merchant_signature"] = "0x" + "11" * 65
    response = client.post("/v1/payments", json=body, headers={**writer, "Idempotency-Key": "bad"})
    assert_problem(response, 422, "validation-failed")
    assert client.get("/v1/payments", headers=writer).json()["data"] == []
    # The key is given up: a corrected request with it goes through.
    fixed = client.post(
        "/v1/payments", json=_payment(chain, clock), headers={**writer, "Idempotency-Key": "bad"}
    )
    assert fixed.status_code == 201


def test_a_payment_beyond_the_payers_balance_is_refused_at_once(client, chain, clock, writer):
    """Refused when asked (402), not accepted and failed later; the key is given up."""
    balance = _token(chain).functions.balanceOf(PAYER.address).call()
    body = _payment(chain, clock, amount=balance + 1)
    response = client.post("/v1/payments", json=body, headers={**writer, "Idempotency-Key": "$"})
    assert_problem(response, 402, "insufficient-funds")
    assert "short of the invoice's amount" in response.json()["detail"]
    assert client.get("/v1/payments", headers=writer).json()["data"] == []


def test_the_same_key_with_another_body_is_refused(client, chain, clock, writer):
    headers = {**writer, "Idempotency-Key": "k"}
    assert (
        client.post("/v1/payments", json=_payment(chain, clock), headers=headers).status_code == 201
    )
    other = client.post("/v1/payments", json=_payment(chain, clock, invoice_id=10), headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")


def test_payments_need_a_key_the_scope_and_a_node(client, chain, clock, writer, database, settings):
    body = _payment(chain, clock)
    assert_problem(
        client.post("/v1/payments", json=body, headers=writer), 400, "idempotency-key-required"
    )
    reader = bearer(make_key(database, "payments:read", name="reader"))
    forbidden = client.post("/v1/payments", json=body, headers={**reader, "Idempotency-Key": "x"})
    assert_problem(forbidden, 403, "not-authorized")

    from fastapi.testclient import TestClient

    from carpay.api import create_app

    offline = create_app(database, None, settings, relayer_address=RELAYER_KEY.address)
    with TestClient(offline, raise_server_exceptions=False) as c:
        response = c.post("/v1/payments", json=body, headers={**writer, "Idempotency-Key": "y"})
    assert_problem(response, 503, "service-unavailable")
