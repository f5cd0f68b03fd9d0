"""POST /rpc: the node's JSON-RPC for wallets and dapps, read-only plus raw transactions.

Reads and ``eth_sendRawTransaction`` (already signed by the sender: the platform signs
nothing here) go to the node as they are; every other method, such as ``eth_sendTransaction``
or the nodes' admin and debug namespaces, is refused with a JSON-RPC error. Callers are rate
limited by address.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from carpay.api.problems import problem_responses
from carpay.api.routes.common import platform
from carpay.api.security import client_address
from carpay.errors import ServiceUnavailable

__all__ = ["FORWARDED", "MAX_BATCH", "router"]

#: The methods forwarded to the node: reads, and the broadcast of signed transactions.
FORWARDED = frozenset(
    {
        "web3_clientVersion",
        "web3_sha3",
        "net_version",
        "net_listening",
        "eth_chainId",
        "eth_syncing",
        "eth_blockNumber",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_blobBaseFee",
        "eth_feeHistory",
        "eth_getBalance",
        "eth_getTransactionCount",
        "eth_getCode",
        "eth_getStorageAt",
        "eth_call",
        "eth_estimateGas",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockReceipts",
        "eth_getTransactionByHash",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionReceipt",
        "eth_getLogs",
        "eth_sendRawTransaction",
    }
)
#: The most requests one batch may hold.
MAX_BATCH = 100
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_ERROR = -32700, -32600, -32601, -32603

router = APIRouter(tags=["json-rpc"])

_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["jsonrpc", "method"],
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "id": {"type": ["integer", "string", "null"]},
        "method": {"type": "string", "examples": ["eth_blockNumber"]},
        "params": {"type": ["array", "object"]},
    },
}


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class _Forwarder:
    """One HTTP client to the node, shared by the requests of an application."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=30.0)

    def send(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            response = self.client.post(self.url, json=calls)
            answers = response.json()
        except (httpx.HTTPError, ValueError):
            # Not the exception's text: it names the node's URL, which may carry a key.
            return [_error(c.get("id"), INTERNAL_ERROR, "the node is not reachable") for c in calls]
        if not isinstance(answers, list):
            answers = [answers] * len(calls)
        by_id = {json.dumps(a.get("id")): a for a in answers if isinstance(a, dict)}
        return [
            by_id.get(json.dumps(c.get("id")))
            or _error(c.get("id"), INTERNAL_ERROR, "the node gave no answer")
            for c in calls
        ]


_lock = threading.Lock()


def _forwarder(request: Request) -> _Forwarder:
    p = platform(request)
    if p.chain is None:
        raise ServiceUnavailable("no node is configured")
    with _lock:
        forwarder = getattr(request.app.state, "rpc_forwarder", None)
        if forwarder is None:
            forwarder = request.app.state.rpc_forwarder = _Forwarder(p.chain.url)
    return forwarder


@router.post(
    "/rpc",
    summary="Ethereum JSON-RPC (reads and eth_sendRawTransaction)",
    responses={
        200: {
            "description": "The JSON-RPC answer, or a list of them for a batch",
            "content": {"application/json": {"schema": {}}},
        },
        **problem_responses(429, 503),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            _REQUEST_SCHEMA,
                            {"type": "array", "items": _REQUEST_SCHEMA, "maxItems": MAX_BATCH},
                        ]
                    }
                }
            },
        }
    },
)
async def rpc(request: Request) -> JSONResponse:
    p = platform(request)
    p.limiter.take(f"ip:{client_address(request)}")
    forwarder = _forwarder(request)
    try:
        payload = json.loads(await request.body())
    except ValueError:
        return JSONResponse(_error(None, PARSE_ERROR, "parse error"))
    batch = isinstance(payload, list)
    calls = payload if batch else [payload]
    if not calls or len(calls) > MAX_BATCH:
        message = f"a batch holds 1 to {MAX_BATCH} requests"
        return JSONResponse(_error(None, INVALID_REQUEST, message))
    answers: list[dict[str, Any] | None] = []
    forwarded: list[dict[str, Any]] = []
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            answers.append(_error(None, INVALID_REQUEST, "invalid request"))
        elif call["method"] not in FORWARDED:
            message = f"the method {call['method'][:100]} is not available here"
            answers.append(_error(call.get("id"), METHOD_NOT_FOUND, message))
        else:
            answers.append(None)
            # Our own ids: the node answers a batch in any order and callers' ids may repeat.
            forwarded.append({**call, "jsonrpc": "2.0", "id": len(forwarded)})
    if forwarded:
        results = iter(await run_in_threadpool(forwarder.send, forwarded))
        for i, call in enumerate(calls):
            if answers[i] is None:
                answers[i] = {**next(results), "id": call.get("id")}
    return JSONResponse(answers if batch else answers[0])
