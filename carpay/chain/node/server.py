"""JSON-RPC over HTTP and WebSocket (with eth_subscribe) for the embedded node."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import threading
from array import array
from typing import Any

from aiohttp import WSMsgType, web

from carpay.chain.node.engine import BlockResult
from carpay.chain.node.node import Node
from carpay.chain.node.rpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    Rpc,
    RpcError,
)

__all__ = ["serve"]

log = logging.getLogger("carpay.node")

MAX_BODY = 32 << 20
MAX_BATCH = 1_000
MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_NESTING = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and -1 as signed bytes
_HEAD_FIELDS = (
    "number",
    "hash",
    "parentHash",
    "nonce",
    "mixHash",
    "sha3Uncles",
    "logsBloom",
    "transactionsRoot",
    "stateRoot",
    "receiptsRoot",
    "miner",
    "difficulty",
    "extraData",
    "gasLimit",
    "gasUsed",
    "timestamp",
    "baseFeePerGas",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
    "requestsHash",
)


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


async def _answer(rpc: Rpc, body: Any) -> Any:
    """The response to a request or a batch; None when nothing is to be sent back."""
    if isinstance(body, list):
        if not body:
            return _error(None, INVALID_REQUEST, "empty batch")
        if len(body) > MAX_BATCH:
            return _error(None, INVALID_REQUEST, f"batch larger than {MAX_BATCH}")
        answers = await asyncio.gather(*(rpc.handle(item) for item in body))
        return [a for a, item in zip(answers, body, strict=True) if _wants_answer(item)] or None
    answer = await rpc.handle(body)
    return answer if _wants_answer(body) else None


def _loads(data: bytes | str) -> Any:
    """Parse a request body; ValueError if it is not JSON or nested deeper than MAX_DEPTH.

    py_ecc raises the interpreter's recursion limit to 100 000, so a body of 100 000 ``[``
    would overflow the C stack inside ``json.loads`` and kill the node with SIGSEGV.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        steps = array("b", _STRING.sub(b"", raw).translate(_NESTING, _NOT_A_BRACKET))
        if max(itertools.accumulate(steps), default=0) > MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {MAX_DEPTH}")
    return json.loads(raw)


def _wants_answer(item: Any) -> bool:
    return not (isinstance(item, dict) and "method" in item and "id" not in item)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class _Subscriptions:
    """eth_subscribe state of one WebSocket connection."""

    def __init__(self, rpc: Rpc, ws: web.WebSocketResponse) -> None:
        self.rpc = rpc
        self.ws = ws
        self.subs: dict[str, tuple[str, Any]] = {}

    def subscribe(self, params: Any) -> str:
        if not isinstance(params, list) or not params:
            raise RpcError(INVALID_PARAMS, "invalid params: expected [kind, filter?]")
        kind = params[0]
        if kind == "newHeads":
            spec = None
        elif kind == "logs":
            spec = self.rpc._log_filter(params[1] if len(params) > 1 and params[1] else {})
        elif kind == "newPendingTransactions":
            spec = None
        else:
            raise RpcError(INVALID_PARAMS, f"invalid params: unknown subscription {kind!r}")
        sid = "0x" + next(self.rpc._ids).to_bytes(16, "big").hex()
        self.subs[sid] = (kind, spec)
        return sid

    def unsubscribe(self, params: Any) -> bool:
        if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
            raise RpcError(INVALID_PARAMS, "invalid params: expected [subscription id]")
        return self.subs.pop(params[0], None) is not None

    async def publish(self, result: BlockResult) -> None:
        for sid, (kind, spec) in list(self.subs.items()):
            if kind == "newHeads":
                head = {k: result.block[k] for k in _HEAD_FIELDS}
                await self._send(sid, head)
            elif kind == "logs":
                for entry in result.logs:
                    if self.rpc.matches(spec, entry):
                        await self._send(sid, entry)

    async def _send(self, sid: str, result: Any) -> None:
        if self.ws.closed:
            return
        message = {
            "jsonrpc": "2.0",
            "method": "eth_subscription",
            "params": {"subscription": sid, "result": result},
        }
        await self.ws.send_str(_dumps(message))


class _Server:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.rpc = Rpc(node)
        self.sockets: set[_Subscriptions] = set()
        self.loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        # FIFO: one block's notifications are all sent before the next block's
        self.publishing = asyncio.Lock()
        node.on_block(self._on_block)

    def _on_block(self, result: BlockResult) -> None:
        if self.sockets:
            asyncio.run_coroutine_threadsafe(self._publish(result), self.loop)

    async def _publish(self, result: BlockResult) -> None:
        async with self.publishing:
            for subs in list(self.sockets):
                try:
                    await subs.publish(result)
                except ConnectionError:
                    self.sockets.discard(subs)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set)

    async def http(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await self.websocket(request)
            return web.json_response({"node": "carpay", "chainId": self.node.chain_id})
        if request.method != "POST":
            return web.Response(status=405)
        try:
            body = _loads(await request.read())
        except ValueError:  # UnicodeDecodeError is one
            return web.json_response(_error(None, PARSE_ERROR, "parse error"))
        answer = await _answer(self.rpc, body)
        if answer is None:
            return web.Response(status=204)
        return web.Response(text=_dumps(answer), content_type="application/json")

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_BODY, heartbeat=30)
        await ws.prepare(request)
        subs = _Subscriptions(self.rpc, ws)
        self.sockets.add(subs)
        try:
            async for msg in ws:
                # web3.py's WebSocketProvider sends binary frames by default; geth takes both
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    body = _loads(msg.data)
                except ValueError:
                    await ws.send_str(_dumps(_error(None, PARSE_ERROR, "parse error")))
                    continue
                answer = await self._ws_answer(subs, body)
                if answer is not None:
                    await ws.send_str(_dumps(answer))
        finally:
            self.sockets.discard(subs)
        return ws

    async def _ws_answer(self, subs: _Subscriptions, body: Any) -> Any:
        if isinstance(body, dict) and body.get("method") in ("eth_subscribe", "eth_unsubscribe"):
            rid = body.get("id")
            try:
                if body["method"] == "eth_subscribe":
                    result: Any = subs.subscribe(body.get("params"))
                else:
                    result = subs.unsubscribe(body.get("params"))
            except RpcError as exc:
                return {"jsonrpc": "2.0", "id": rid, "error": exc.as_dict()}
            except Exception as exc:  # a bad message must not close the connection
                log.exception("internal error in %s", body["method"])
                return _error(rid, INTERNAL_ERROR, f"internal error: {exc}")
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        return await _answer(self.rpc, body)


async def serve(node: Node, ready: threading.Event) -> None:
    """Serve ``node`` on its host and port until ``node.stop()``; sets ``ready`` once up."""
    server = _Server(node)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route("*", "/", server.http)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, node.host, node.port, reuse_address=True)
    await site.start()
    node.port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked
    node._server = server
    ready.set()
    try:
        await server.stopped.wait()
    finally:
        await runner.cleanup()
