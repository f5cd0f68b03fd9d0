"""JSON-RPC transport: HTTP, batches, malformed requests and WebSocket subscriptions."""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
from eth_utils import keccak
from websockets.sync.client import connect

PINGED = "0x" + keccak(text="Pinged(address,uint256,string)").hex()


def call(method: str, *params: Any, rid: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)}


def still_answers(rpc) -> None:
    assert rpc("eth_chainId") == "0x539"


# -- batches ----------------------------------------------------------------------------


def test_a_batch_answers_each_request_by_id(rpc):
    batch = [
        call("eth_chainId", rid=1),
        call("net_version", rid="two"),
        {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []},  # a notification
        call("eth_getBalance", "0x" + "00" * 20, "latest", rid=4),
    ]
    status, answers = rpc.post(batch)
    assert status == 200 and isinstance(answers, list)
    by_id = {a["id"]: a for a in answers}
    assert set(by_id) == {1, "two", 4}
    assert by_id[1]["result"] == "0x539"
    assert by_id["two"]["result"] == "1337"
    assert by_id[4]["result"].startswith("0x")


def test_a_batch_answers_bad_items_one_by_one(embedded_rpc):
    # as the JSON-RPC spec shows; anvil refuses the whole batch with one error
    batch = [call("eth_chainId", rid=1), 42, call("no_such_method", rid=3), {"id": 4}]
    status, answers = embedded_rpc.post(batch)
    assert status == 200 and len(answers) == 4
    results = [a for a in answers if "result" in a]
    errors = sorted(a["error"]["code"] for a in answers if "error" in a)
    assert [r["id"] for r in results] == [1]
    assert errors == [-32601, -32600, -32600]
    assert next(a for a in answers if a.get("id") == 3)["error"]["code"] == -32601
    still_answers(embedded_rpc)


def test_notifications_alone_get_no_answer(rpc):
    note = {"jsonrpc": "2.0", "method": "eth_chainId", "params": []}
    for body in (note, [note, note]):
        status, answer = rpc.post(body)
        assert status in (200, 204) and answer is None
    still_answers(rpc)


def test_an_empty_batch_is_an_invalid_request(rpc):
    status, answer = rpc.post([])
    assert status == 200
    assert answer["error"]["code"] == -32600 and answer["id"] is None
    still_answers(rpc)


def test_a_batch_over_the_limit_is_refused_whole(embedded_rpc):
    # anvil answers any batch; the embedded node caps them at 1000
    status, answer = embedded_rpc.post([call("eth_chainId", rid=i) for i in range(1001)])
    assert status == 200
    assert answer["error"]["code"] == -32600 and "1000" in answer["error"]["message"]
    status, answers = embedded_rpc.post([call("eth_chainId", rid=i) for i in range(1000)])
    assert [a["id"] for a in answers] == list(range(1000))


# -- malformed requests -----------------------------------------------------------------

MALFORMED = {
    "bad json": b'{"jsonrpc": "2.0", "id": 1, "method": ',
    "not utf-8": b"\xff\xfe\x00{",
    "empty body": b"",
    "a number": b"42",
    "a string": b'"eth_chainId"',
    "null": b"null",
    "no method": b'{"jsonrpc": "2.0", "id": 1}',
    "method not a string": b'{"jsonrpc": "2.0", "id": 1, "method": 7}',
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,  # once killed the node with SIGSEGV
    "deep and open": b"{" * 200_000,
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_an_error_and_the_node_lives_on(rpc, body):
    status, answer = rpc.post(body)
    assert status == 200
    if isinstance(answer, list):  # a bracketed body is a batch of bad items
        (answer,) = answer
    assert answer["error"]["code"] in (-32700, -32600)
    assert answer["id"] in (None, 1)  # 1: anvil reads the id of an object without a method
    still_answers(rpc)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (MALFORMED["bad json"], -32700),  # anvil says -32600
        (MALFORMED["not utf-8"], -32700),
        (MALFORMED["deep nesting"], -32700),
        (MALFORMED["a number"], -32600),
        (MALFORMED["no method"], -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "nope", "params": []}', -32601),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": 5}', -32602),
    ],
)
def test_the_embedded_node_uses_the_standard_error_codes(embedded_rpc, body, code):
    status, answer = embedded_rpc.post(body)
    assert status == 200 and answer["error"]["code"] == code, answer
    assert answer["jsonrpc"] == "2.0"


def test_an_unknown_method_is_method_not_found(rpc):
    error = rpc.error("eth_doesNotExist", 1, 2)
    assert error["code"] == -32601
    assert rpc.error("eth_subscribe", "newHeads")["code"] == -32601  # HTTP has no push


def test_the_connection_survives_a_malformed_request(rpc):
    # one keep-alive connection: a bad request must not leave it hung or closed
    url = urlsplit(rpc.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    try:
        for body in (b"{oops", json.dumps(call("eth_chainId", rid=9)).encode()):
            conn.request("POST", "/", body, headers)
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200
        assert answer == {"jsonrpc": "2.0", "id": 9, "result": "0x539"}
    finally:
        conn.close()


def test_other_http_verbs(embedded_rpc):
    status, info = embedded_rpc.post(b"", method="GET")
    assert status == 200 and info["chainId"] == 1337
    status, _ = embedded_rpc.post(b"{}", method="PUT")
    assert status == 405
    still_answers(embedded_rpc)


def test_concurrent_requests_are_all_answered(rpc):
    def one(i: int) -> dict[str, Any]:
        return rpc.post(call("eth_getBalance", "0x" + "ab" * 10 + f"{i:020x}", "latest", rid=i))[1]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(200)))
    assert [a["id"] for a in answers] == list(range(200))
    assert all(a["result"] == "0x0" for a in answers)


# -- WebSocket --------------------------------------------------------------------------


def ws_url(rpc) -> str:
    return rpc.url.replace("http://", "ws://", 1)


def ask(ws, method: str, *params: Any, rid: int = 1) -> dict[str, Any]:
    ws.send(json.dumps(call(method, *params, rid=rid)))
    return json.loads(ws.recv(timeout=10))


def notifications(ws, wanted: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The next ``wanted`` eth_subscription messages."""
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < wanted:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        assert message["method"] == "eth_subscription", message
        found.append(message["params"])
    return found


def silent(ws, seconds: float = 0.3) -> bool:
    try:
        ws.recv(timeout=seconds)
    except TimeoutError:
        return True
    return False


def test_websocket_answers_text_and_binary_frames(rpc):
    with connect(ws_url(rpc)) as ws:
        assert ask(ws, "eth_chainId") == {"jsonrpc": "2.0", "id": 1, "result": "0x539"}
        # web3.py's WebSocketProvider sends binary frames unless told otherwise
        ws.send(json.dumps(call("net_version", rid=2)).encode())
        assert json.loads(ws.recv(timeout=10))["result"] == "1337"
        ws.send(json.dumps([call("eth_chainId", rid=3), call("net_version", rid=4)]))
        answers = json.loads(ws.recv(timeout=10))
        assert {a["id"]: a["result"] for a in answers} == {3: "0x539", 4: "1337"}


def test_websocket_survives_malformed_messages(rpc):
    with connect(ws_url(rpc)) as ws:
        for bad in ("{nope", "[]", "42", "[" * 100_000 + "]" * 100_000):
            ws.send(bad)
            answer = json.loads(ws.recv(timeout=10))
            answer = answer[0] if isinstance(answer, list) else answer
            assert answer["error"]["code"] in (-32700, -32600)
        for method, params in [
            ("eth_subscribe", ["noSuchKind"]),
            ("eth_subscribe", []),
            ("eth_subscribe", ["logs", {"topics": 5}]),
            ("eth_unsubscribe", {"id": 1}),  # once closed the connection
            ("eth_unsubscribe", [[1]]),
            ("eth_unsubscribe", [{"id": 1}]),
        ]:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": method, "params": params}))
            answer = json.loads(ws.recv(timeout=10))
            assert answer["id"] == 5 and answer["error"]["code"] == -32602, (method, params)
        assert ask(ws, "eth_chainId", rid=7)["result"] == "0x539"


def test_new_heads_follow_every_block_in_order(rpc, funded):
    with connect(ws_url(rpc)) as ws:
        sid = ask(ws, "eth_subscribe", "newHeads")["result"]
        start = rpc.head()
        # sent without waiting: blocks follow each other as fast as the node mines them
        sent = [rpc.send(funded, nonce=n, to=funded.address, gas=21_000) for n in range(8)]
        receipts = [rpc.wait(tx_hash) for tx_hash in sent]
        last = int(receipts[-1]["blockNumber"], 16)
        heads = notifications(ws, last - start)
    assert {h["subscription"] for h in heads} == {sid}
    blocks = [h["result"] for h in heads]
    assert [int(b["number"], 16) for b in blocks] == list(range(start + 1, last + 1))
    assert {r["blockHash"] for r in receipts} <= {b["hash"] for b in blocks}
    for parent, child in zip(blocks, blocks[1:], strict=False):
        assert child["parentHash"] == parent["hash"]
    full = rpc("eth_getBlockByHash", blocks[-1]["hash"], False)
    for key in ("parentHash", "stateRoot", "timestamp", "baseFeePerGas", "gasUsed", "miner"):
        assert blocks[-1][key] == full[key]


def test_log_subscriptions_get_only_matching_logs(rpc, funded, tester):
    with connect(ws_url(rpc)) as ws:
        heads = ask(ws, "eth_subscribe", "newHeads", rid=1)["result"]
        mine = ask(ws, "eth_subscribe", "logs", {"address": tester, "topics": [PINGED]}, rid=2)
        other = ask(ws, "eth_subscribe", "logs", {"topics": [None, "0x" + "ee" * 32]}, rid=3)
        assert len({heads, mine["result"], other["result"]}) == 3
        receipt = rpc.transact(funded, to=tester, data=rpc.calldata("ping(uint256)", 41))
        received = notifications(ws, 2)
        assert silent(ws)
    by_sub = {n["subscription"]: n["result"] for n in received}
    assert set(by_sub) == {heads, mine["result"]}
    assert by_sub[heads]["number"] == receipt["blockNumber"]
    assert by_sub[mine["result"]] == receipt["logs"][0]


def test_unsubscribed_streams_fall_silent(rpc, funded):
    with connect(ws_url(rpc)) as ws:
        sid = ask(ws, "eth_subscribe", "newHeads")["result"]
        assert ask(ws, "eth_unsubscribe", sid, rid=2)["result"] is True
        assert ask(ws, "eth_unsubscribe", sid, rid=3)["result"] is False
        rpc.transact(funded, to=funded.address, gas=21_000)
        assert silent(ws)
        assert ask(ws, "eth_blockNumber", rid=4)["result"] == hex(rpc.head())


def test_a_closed_subscriber_does_not_stop_the_others(rpc, funded):
    with connect(ws_url(rpc)) as ws:
        sid = ask(ws, "eth_subscribe", "newHeads")["result"]
        gone = connect(ws_url(rpc))
        ask(gone, "eth_subscribe", "newHeads")
        gone.close()
        receipt = rpc.transact(funded, to=funded.address, gas=21_000)
        (head,) = notifications(ws, 1)
    assert head["subscription"] == sid
    assert head["result"]["number"] == receipt["blockNumber"]
