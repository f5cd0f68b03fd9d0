"""The Chain client against both peer nodes: deploy, call, send, wait, revert reasons, logs."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from web3 import Web3

from carpay.chain import Chain, NonceManager, decode_revert
from carpay.errors import (
    ChainError,
    DeploymentNotFound,
    TransactionReverted,
    TransactionTimeout,
)

SUPPLY = 10**9 * 10**6


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            bytes.fromhex("4e487b71") + (0x11).to_bytes(32, "big"),
            "panic 0x11: arithmetic overflow or underflow",
        ),
        (bytes.fromhex("4e487b71") + (0x99).to_bytes(32, "big"), "panic 0x99: unknown panic code"),
        (bytes.fromhex("08c379a0") + b"\x00" * 7, None),  # truncated Error(string)
        (bytes.fromhex("deadbeef"), None),  # a custom error
        (b"", None),
    ],
)
def test_decode_revert(data, reason):
    assert decode_revert(data) == reason


def test_network_basics(chain):
    assert chain.chain_id == 1337
    base = chain.w3.eth.get_block("latest")["baseFeePerGas"]
    max_fee, tip = chain.fees()
    assert max_fee == 2 * base + tip
    assert chain.genesis_hash.startswith("0x") and len(chain.genesis_hash) == 66


def test_deploy_records_the_deployment(chain, accounts, plain_erc20, tmp_path):
    with pytest.raises(DeploymentNotFound):
        chain.deployment("plain_erc20")

    address = chain.deploy(plain_erc20, sender=accounts[0])

    recorded = chain.deployment("plain_erc20")
    assert recorded.address == address
    receipt = chain.receipt(recorded.tx_hash)
    assert receipt["contractAddress"] == address and receipt["blockNumber"] == recorded.block
    on_disk = json.loads((tmp_path / "state" / "deployments" / "1337.json").read_text())
    assert on_disk["plain_erc20"]["address"] == address
    # Another client (another process, a restart) on the same state finds it too.
    again = Chain(chain.url, state_dir=tmp_path / "state")
    assert again.deployment("plain_erc20") == recorded
    assert again.call(again.contract(plain_erc20).functions.decimals()) == 6
    with pytest.raises(DeploymentNotFound):
        again.deployment("something_else")


def test_deployments_of_another_chain_with_the_same_id_are_not_found(chain, tmp_path):
    path = tmp_path / "state" / "deployments" / "1337.json"
    path.parent.mkdir(parents=True)
    entry = {"address": "0x" + "11" * 20, "tx_hash": "0x" + "22" * 32, "block": 3}
    path.write_text(json.dumps({"old": {**entry, "genesis": "0x" + "33" * 32}}))

    with pytest.raises(DeploymentNotFound):
        chain.deployment("old")
    assert chain.deployments() == {}


def test_erc20_transfer_and_its_log(chain, accounts, plain_erc20):
    owner, bob = accounts[0], accounts[1]
    token = chain.contract(plain_erc20, chain.deploy(plain_erc20, sender=owner, name="token"))
    start = chain.block_number()
    before = chain.call(token.functions.balanceOf(bob.address))

    receipt = chain.transact(owner, token.functions.transfer(bob.address, 1_250_000))

    assert receipt["status"] == 1
    assert chain.call(token.functions.balanceOf(bob.address)) == before + 1_250_000
    assert chain.call(token.functions.totalSupply()) == SUPPLY
    events = chain.logs(
        token.events.Transfer, argument_filters={"receiver": bob.address}, from_block=start
    )
    assert [(e["args"]["sender"], e["args"]["value"]) for e in events] == [
        (owner.address, 1_250_000)
    ]
    assert events[0]["transactionHash"] == receipt["transactionHash"]
    raw = chain.logs(address=token.address, from_block=receipt["blockNumber"])
    assert len(raw) == 1 and raw[0]["topics"][0] == Web3.keccak(
        text="Transfer(address,address,uint256)"
    )


def test_a_send_asks_the_node_once_then_sends(chain, accounts, monkeypatch):
    """Estimate, fees and the sender's pending count come in one batch before signing; with
    gas and fees given, the count is asked alone."""
    asked: list[list[str]] = []
    post = chain._session.post

    def counting(url, **kwargs):
        body = kwargs["json"] if "json" in kwargs else json.loads(kwargs["data"])
        asked.append([c["method"] for c in body] if isinstance(body, list) else [body["method"]])
        return post(url, **kwargs)

    sender, to = accounts[2], accounts[3].address
    chain.transact(sender, to, value=1)  # the chain's id and nonce records, looked up once
    count = chain.pending_nonce(sender.address)
    monkeypatch.setattr(chain._session, "post", counting)

    chain.wait(chain.send(sender, to, value=1))
    first = asked[:2]
    asked.clear()
    chain.wait(chain.send(sender, to, value=1, gas=21_000, max_fee=10**10, priority_fee=1))

    assert first == [
        [
            "eth_estimateGas",
            "eth_getBlockByNumber",
            "eth_maxPriorityFeePerGas",
            "eth_getTransactionCount",
        ],
        ["eth_sendRawTransaction"],
    ]
    assert asked[:2] == [["eth_getTransactionCount"], ["eth_sendRawTransaction"]]
    assert chain.pending_nonce(sender.address) == count + 2


def test_several_reads_in_one_batch(chain, accounts, plain_erc20, reverter):
    owner, bob = accounts[0], accounts[1]
    token = chain.contract(plain_erc20, chain.deploy(plain_erc20, sender=owner, name="token"))
    failing = chain.contract(reverter, chain.deploy(reverter, sender=owner))
    reads = [
        (token, "totalSupply", ()),
        (token, "balanceOf", (owner.address,)),
        (token, "balanceOf", (bob.address,)),
    ]

    assert chain.read_all(reads) == [SUPPLY, SUPPLY, 0]
    with_revert = [*reads, (failing, "touch", (True,))]
    *values, error = chain.read_all(with_revert, return_errors=True)
    assert values == [SUPPLY, SUPPLY, 0]
    assert isinstance(error, TransactionReverted) and error.reason == "reverter: asked to fail"
    with pytest.raises(TransactionReverted, match="asked to fail"):
        chain.read_all(with_revert)
    # An account without code answers nothing a reader can decode.
    not_a_token = chain.contract(plain_erc20, bob.address)
    with pytest.raises(ChainError, match="answered unreadably"):
        chain.read_all([(not_a_token, "totalSupply", ())])


def test_revert_reasons_are_decoded_before_sending(chain, accounts, reverter):
    sender = accounts[2]
    contract = chain.contract(reverter, chain.deploy(reverter, sender=sender))
    nonce = chain.pending_nonce(sender.address)

    with pytest.raises(TransactionReverted) as caught:
        chain.send(sender, contract.functions.fail())
    assert caught.value.reason == "reverter: no"
    assert caught.value.message == "reverted: reverter: no"
    assert caught.value.tx_hash is None
    assert chain.pending_nonce(sender.address) == nonce  # nothing was sent

    with pytest.raises(TransactionReverted) as caught:
        chain.estimate_gas(sender, contract.functions.panic())
    assert caught.value.reason == "panic 0x12: division or modulo by zero"

    with pytest.raises(TransactionReverted) as caught:
        chain.call(contract.functions.touch(True))
    assert caught.value.reason == "reverter: asked to fail"

    with pytest.raises(TransactionReverted) as caught:
        chain.call(contract.address, contract.functions.bare()._encode_transaction_data())
    assert caught.value.reason is None and caught.value.data == b""

    # The transaction that was refused did not take a nonce: the next one uses it.
    receipt = chain.transact(sender, contract.functions.touch(False))
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == nonce


def test_revert_reason_of_a_mined_transaction(chain, accounts, reverter):
    sender = accounts[2]
    contract = chain.contract(reverter, chain.deploy(reverter, sender=sender))

    # With explicit gas there is no estimate to refuse it: it is mined, and fails.
    tx_hash = chain.send(sender, contract.functions.touch(True), gas=100_000)
    with pytest.raises(TransactionReverted) as caught:
        chain.wait(tx_hash, timeout=30)

    assert caught.value.reason == "reverter: asked to fail"
    assert caught.value.tx_hash == tx_hash
    assert decode_revert(caught.value.data) == "reverter: asked to fail"
    assert chain.receipt(tx_hash)["status"] == 0
    assert chain.call(contract.functions.touches()) == 0


def test_receipt_timeout(chain):
    never_sent = "0x" + os.urandom(32).hex()
    started = time.monotonic()

    with pytest.raises(TransactionTimeout, match=never_sent):
        chain.wait(never_sent, timeout=0.3)

    assert 0.3 <= time.monotonic() - started < 3
    assert chain.receipt(never_sent) is None


def test_concurrent_clients_share_one_account(node_url, accounts, tmp_path):
    sender, payee = accounts[3], accounts[4]
    # Two clients on one state directory: like two worker processes of the platform.
    clients = [Chain(node_url, state_dir=tmp_path), Chain(node_url, state_dir=tmp_path)]
    balance = clients[0].w3.eth.get_balance(payee.address)
    sent: list[list[str]] = [[], []]

    def worker(client: Chain, out: list[str]) -> None:
        out.extend(client.send(sender, payee.address, value=1, gas=21_000) for _ in range(8))

    threads = [
        threading.Thread(target=worker, args=pair) for pair in zip(clients, sent, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    receipts = [clients[0].wait(h, timeout=30) for out in sent for h in out]
    assert all(r["status"] == 1 for r in receipts)
    nonces = sorted(clients[0].w3.eth.get_transaction(h)["nonce"] for out in sent for h in out)
    assert nonces == list(range(nonces[0], nonces[0] + 16))
    assert clients[0].w3.eth.get_balance(payee.address) == balance + 16


def test_nonce_too_low_resyncs_and_retries(node_url, accounts, tmp_path, monkeypatch):
    sender, payee = accounts[5], accounts[4]
    probe = Chain(node_url, state_dir=tmp_path)
    probe.transact(sender, payee.address, value=1, gas=21_000)  # the account has used nonces
    nonces = NonceManager(tmp_path / "fresh.sqlite3", chain=f"{probe.chain_id}")
    chain = Chain(node_url, state_dir=tmp_path, nonces=nonces)
    expected = chain.pending_nonce(sender.address)
    # The node's answer to the send's questions lags behind (a load balancer's stale replica,
    # say): its pending count is zero. The nonce it leads to is refused as too low.
    batch = chain.batch

    def lagging(calls, **kwargs):
        answers = batch(calls, **kwargs)
        return [
            "0x0" if method == "eth_getTransactionCount" else answer
            for (method, _params), answer in zip(calls, answers, strict=True)
        ]

    monkeypatch.setattr(chain, "batch", lagging)

    receipt = chain.transact(sender, payee.address, value=2, gas=21_000)  # not the probe's twin

    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == expected
    assert nonces.next_nonce(sender.address) == expected + 1


def _rpc(chain: Chain, method: str, *params: object) -> object:
    answer = chain.w3.provider.make_request(method, list(params))
    assert "error" not in answer, answer
    return answer["result"]


def _mine_once_replaced(chain: Chain, *known: str) -> None:
    """Mine one block as soon as the pool holds a version of the transaction not in ``known``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pool = _rpc(chain, "txpool_content")["pending"]
        if {tx["hash"] for txs in pool.values() for tx in txs.values()} - set(known):
            break
        time.sleep(0.02)
    _rpc(chain, "evm_mine")


@pytest.mark.anvil
def test_stuck_transaction_is_replaced_on_anvil(anvil, accounts, tmp_path):
    chain = Chain(anvil.url, state_dir=tmp_path)
    sender, payee = accounts[1], accounts[5]
    balance = chain.w3.eth.get_balance(payee.address)
    _rpc(chain, "evm_setAutomine", False)  # nothing is mined until evm_mine: a stuck pool
    try:
        stuck = chain.send(sender, payee.address, value=7, gas=21_000)
        old = chain.w3.eth.get_transaction(stuck)
        replacement = chain.replace(stuck)
        new = chain.w3.eth.get_transaction(replacement)
        assert new["nonce"] == old["nonce"]
        assert new["maxPriorityFeePerGas"] * 8 >= old["maxPriorityFeePerGas"] * 9
        assert new["maxFeePerGas"] * 8 >= old["maxFeePerGas"] * 9

        # wait() replaces again by itself when nothing is mined for a while.
        miner = threading.Thread(target=_mine_once_replaced, args=(chain, stuck, replacement))
        miner.start()
        receipt = chain.wait(replacement, timeout=20, replace_after=0.1)
        miner.join()

        mined = Web3.to_hex(receipt["transactionHash"])
        assert receipt["status"] == 1 and mined not in (stuck, replacement)
        assert chain.receipt(stuck) is None and chain.receipt(replacement) is None
        assert chain.w3.eth.get_balance(payee.address) == balance + 7  # paid once
    finally:
        _rpc(chain, "evm_setAutomine", True)
        _rpc(chain, "evm_mine")


def test_the_environments_proxy_settings_are_read_once_and_kept(monkeypatch, tmp_path):
    """A deployment behind a proxy keeps it: the session reads HTTP(S)_PROXY and NO_PROXY
    when the client is made, not on every call."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "localhost")
    through = Chain("http://rpc.example:8545", state_dir=tmp_path)
    direct = Chain("http://localhost:8545", state_dir=tmp_path)
    monkeypatch.delenv("HTTP_PROXY")
    assert through._session.proxies.get("http") == "http://127.0.0.1:9"
    assert "http" not in direct._session.proxies
    assert through._session.trust_env is False  # the environment is not read again


class _FlakyNode:
    """An HTTP JSON-RPC endpoint on 127.0.0.1 that answers its first ``fails`` requests with
    503 Service Unavailable and every call after (alone or in a batch) with 0x2a."""

    def __init__(self, fails: int) -> None:
        import http.server

        self.requests = 0
        node = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                node.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if node.requests <= fails:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                calls = body if isinstance(body, list) else [body]
                results = [{"jsonrpc": "2.0", "id": c["id"], "result": "0x2a"} for c in calls]
                answer = json.dumps(results if isinstance(body, list) else results[0])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> _FlakyNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_read_the_node_fails_is_retried_as_web3_would(tmp_path):
    """Single calls go straight over HTTP, with web3's retries: a read answered with an HTTP
    error is asked again; one that keeps failing is a ChainError, after web3's 5 tries."""
    with _FlakyNode(fails=2) as flaky:
        assert Chain(flaky.url, state_dir=tmp_path).block_number() == 42
        assert flaky.requests == 3
    with _FlakyNode(fails=100) as dead:
        with pytest.raises(ChainError, match="eth_blockNumber to .* failed"):
            Chain(dead.url, state_dir=tmp_path).block_number()
        assert dead.requests == 5


def test_a_batch_of_reads_is_retried_as_its_calls_would_be(tmp_path):
    """A batch of calls web3 retries (what a send asks before signing) is retried as they
    would be alone; one with a call web3 does not retry is not."""
    reads = [("eth_blockNumber", []), ("eth_getTransactionCount", ["0x" + "11" * 20, "pending"])]
    with _FlakyNode(fails=2) as flaky:
        assert Chain(flaky.url, state_dir=tmp_path).batch(reads) == ["0x2a", "0x2a"]
        assert flaky.requests == 3
    with _FlakyNode(fails=1) as flaky:
        with pytest.raises(ChainError, match="batch of 2 calls .* failed"):
            Chain(flaky.url, state_dir=tmp_path).batch([reads[0], ("eth_sendTransaction", [{}])])
        assert flaky.requests == 1
