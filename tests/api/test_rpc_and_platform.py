"""Tests of carpay/api/routes/rpc.py and of the whole platform end to end, on both nodes."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient

from carpay.api import create_app, start_workers
from carpay.chain import Chain
from carpay.services.webhooks import verify_signature
from carpay.settings import DEV_MNEMONIC
from carpay.testing.webhooks import WebhookReceiver
from tests.api.conftest import bearer, make_key
from tests.api.test_problems import assert_problem


def dev_account(index: int):
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


@pytest.fixture
def chain(node_url, tmp_path):
    return Chain(node_url, state_dir=tmp_path / "state")


def rpc(client, method, *params, id=1):
    response = client.post(
        "/rpc", json={"jsonrpc": "2.0", "id": id, "method": method, "params": list(params)}
    )
    assert response.status_code == 200
    return response.json()


def test_reads_are_forwarded(client, chain):
    assert rpc(client, "eth_chainId") == {"jsonrpc": "2.0", "id": 1, "result": hex(1337)}
    number = int(rpc(client, "eth_blockNumber", id="b")["result"], 16)
    assert number == chain.block_number() or number == chain.block_number() - 1
    account = dev_account(0).address
    balance = rpc(client, "eth_getBalance", account, "latest")["result"]
    assert int(balance, 16) == chain.w3.eth.get_balance(account)


def test_refused_methods_get_a_json_rpc_error(client):
    for method in (
        "eth_sendTransaction",
        "eth_accounts",
        "personal_unlockAccount",
        "debug_traceTransaction",
        "evm_mine",
        "anvil_setBalance",
    ):
        answer = rpc(client, method, id=7)
        assert answer["id"] == 7 and answer["error"]["code"] == -32601, answer
        assert method in answer["error"]["message"]


def test_batches_mix_forwarded_and_refused_calls_in_order(client):
    calls = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction", "params": [{}]},
        {"jsonrpc": "2.0", "id": "x", "method": "net_version", "params": []},
        "not a request",
    ]
    answers = client.post("/rpc", json=calls).json()

    assert [a["id"] for a in answers] == [1, 1, "x", None]
    assert answers[0]["result"] == hex(1337) and answers[2]["result"] == "1337"
    assert answers[1]["error"]["code"] == -32601 and answers[3]["error"]["code"] == -32600


@pytest.mark.parametrize(
    "content, code",
    [
        (b"{nope", -32700),
        (b"[]", -32600),
        (b"[" + b'{"method":"eth_chainId"},' * 100 + b"1]", -32600),
    ],
)
def test_malformed_requests_get_json_rpc_errors(client, content, code):
    response = client.post("/rpc", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["error"]["code"] == code


def test_signed_transactions_are_broadcast(client, chain):
    sender, payee = dev_account(5), to_checksum_address(os.urandom(20))
    max_fee, tip = chain.fees()
    tx = {
        "type": 2,
        "chainId": 1337,
        "nonce": chain.pending_nonce(sender.address),
        "gas": 21_000,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
        "to": payee,
        "value": 3,
    }
    raw = "0x" + bytes(sender.sign_transaction(tx).raw_transaction).hex()

    tx_hash = rpc(client, "eth_sendRawTransaction", raw)["result"]

    assert chain.wait(tx_hash, timeout=30)["status"] == 1
    assert chain.w3.eth.get_balance(payee) == 3
    again = rpc(client, "eth_sendRawTransaction", raw)  # the node's own refusal, passed on
    assert "error" in again


def test_without_a_node_rpc_is_unavailable(database, settings):
    app = create_app(database, None, settings, relayer_address="0x" + "11" * 20)
    with TestClient(app) as client:
        response = client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
    assert_problem(response, 503, "service-unavailable")


def test_an_unreachable_node_is_reported_without_its_address(database, settings):
    gone = Chain("http://user:s3cret@127.0.0.1:9/", state_dir="/tmp")
    app = create_app(database, gone, settings, relayer_address="0x" + "11" * 20)
    with TestClient(app) as client:
        answer = client.post(
            "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
        ).json()
    assert answer["error"]["code"] == -32603 and "s3cret" not in str(answer)


def test_rpc_callers_are_rate_limited_by_address(database, settings, chain, ticker):
    settings.rate_burst, settings.rate_limit = 2, 1.0
    app = create_app(database, chain, settings, monotonic=ticker, relayer_address="0x" + "11" * 20)
    with TestClient(app) as client:
        assert [
            client.post(
                "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}
            ).status_code
            for _ in range(3)
        ] == [200, 200, 429]


# -- the platform end to end ------------------------------------------------------------------


def test_a_transfer_goes_from_the_api_to_the_chain_and_back_as_a_signed_webhook(
    database, chain, settings
):
    signer = dev_account(9)
    app = create_app(database, chain, settings, relayer_address=signer.address)
    merchant = bearer(make_key(database, "transfers:read", "transfers:write", "webhooks:write"))
    payee = to_checksum_address(os.urandom(20))
    stop = threading.Event()
    with WebhookReceiver() as receiver, TestClient(app) as client:
        sub = client.post(
            "/v1/webhooks/subscriptions",
            headers=merchant,
            json={"url": receiver.url, "events": ["transfer.succeeded"]},
        ).json()
        headers = {**merchant, "Idempotency-Key": "order-1"}
        created = client.post(
            "/v1/transfers", headers=headers, json={"to": payee, "amount_minor": 777}
        )
        assert created.status_code == 201
        transfer_id = created.json()["id"]

        threads = start_workers(database, chain, signer, stop, interval=0.05)
        try:
            deadline = time.monotonic() + 60
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        assert not any(t.is_alive() for t in threads)

        transfer = client.get(f"/v1/transfers/{transfer_id}", headers=merchant).json()
        repeated = client.post(
            "/v1/transfers", headers=headers, json={"to": payee, "amount_minor": 777}
        )

    assert transfer["state"] == "confirmed" and transfer["block_number"] is not None
    assert chain.receipt(transfer["tx_hash"])["status"] == 1
    assert chain.w3.eth.get_balance(payee) == 777
    assert repeated.json() == created.json()  # the stored answer, not a second transfer
    [delivery] = receiver.received
    verify_signature(sub["secret"], delivery.headers["Carpay-Signature"], delivery.body)
    assert delivery.headers["Carpay-Event-Type"] == "transfer.succeeded"
    event = json.loads(delivery.body)
    assert event["id"] == f"evt_transfer_{transfer_id}_succeeded"
    assert event["data"]["tx_hash"] == transfer["tx_hash"]
