"""Ethereum JSON-RPC methods of the embedded node, with the standard error codes."""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from eth_utils import is_hex, keccak

from carpay.chain.node.engine import hexbytes, hexint
from carpay.chain.node.node import Node
from carpay.chain.node.pool import Rejected

if TYPE_CHECKING:
    from carpay.chain.node.split import SplitNode

__all__ = ["RpcError", "Rpc"]

CLIENT_VERSION = "carpay-node/0.1.0/py-evm"
DEFAULT_PRIORITY_FEE = 1_000_000_000
MAX_LOG_BLOCK_RANGE = 100_000
MAX_LOGS = 20_000

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
EXECUTION_REVERTED = 3

UINT256_MAX = 2**256 - 1
_QUANTITY = re.compile(r"0x[0-9a-fA-F]+")
#: The tags that name the newest block (this node has no separate pending or safe block); a
#: tuple, not a set: a tag may be an object ({blockHash}), which a set cannot look up.
_NEWEST = ("latest", "pending", "safe", "finalized")


class RpcError(Exception):
    """A JSON-RPC error: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


# -- parameter parsing ------------------------------------------------------------------


def _bad(what: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"invalid params: {what}")


def _data(value: Any, what: str = "data") -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or not is_hex(value):
        if value == "0x":
            return b""
        raise _bad(f"{what} must be a 0x-prefixed hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise _bad(f"{what} must have an even number of hex digits") from exc


def _address(value: Any, what: str = "address") -> bytes:
    raw = _data(value, what)
    if len(raw) != 20:
        raise _bad(f"{what} must be 20 bytes")
    return raw


def _hash(value: Any, what: str = "hash") -> bytes:
    raw = _data(value, what)
    if len(raw) != 32:
        raise _bad(f"{what} must be 32 bytes")
    return raw


def _quantity(value: Any, what: str = "quantity") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        number = value
    elif isinstance(value, str) and _QUANTITY.fullmatch(value):
        number = int(value, 16)
    else:  # int() alone would also take "0x_1" or "0x1 "
        raise _bad(f"{what} must be a 0x-prefixed hex quantity")
    if number > UINT256_MAX:
        raise _bad(f"{what} does not fit in 256 bits")
    return number


def _params(params: Any, minimum: int, maximum: int) -> list[Any]:
    if params is None:
        params = []
    if not isinstance(params, list):
        raise _bad("params must be an array")
    if not minimum <= len(params) <= maximum:
        raise _bad(f"expected {minimum} to {maximum} parameters, got {len(params)}")
    return params + [None] * (maximum - len(params))


class Rpc:
    """Dispatches JSON-RPC requests to a ``Node`` or a ``SplitNode``.

    Index reads (blocks, receipts, logs) are served from committed LMDB data on the calling
    thread; anything that needs state or the pool is asked of the engine (``node.ask``).
    """

    def __init__(self, node: Node | SplitNode) -> None:
        self.node = node
        self.filters: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.methods: dict[str, Callable[..., Awaitable[Any]]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("rpc_")
        }

    async def handle(self, request: Any) -> dict[str, Any] | None:
        """Answer one request object; None for a notification (a request without id)."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": INVALID_REQUEST, "message": "invalid request"},
            }
        rid = request.get("id")
        try:
            method = self.methods.get(request["method"])
            if method is None:
                raise RpcError(METHOD_NOT_FOUND, f"the method {request['method']} does not exist")
            result = await method(request.get("params"))
            response: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcError as exc:
            response = {"jsonrpc": "2.0", "id": rid, "error": exc.as_dict()}
        except Exception as exc:  # never a crash or a hung connection
            import logging

            logging.getLogger("carpay.node").exception("internal error in %s", request["method"])
            response = {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": INTERNAL_ERROR, "message": f"internal error: {exc}"},
            }
        return response

    # -- blocks and tags ----------------------------------------------------------------

    def _block_number(self, tag: Any, *, allow_hash: bool = True, head: int | None = None) -> int:
        if head is None:
            head = self.node.head_number
        if tag is None or tag in _NEWEST:
            return head
        if tag == "earliest":
            return 0
        if isinstance(tag, dict):
            if "blockHash" in tag and allow_hash:
                block = self._block_by_hash(_hash(tag["blockHash"], "blockHash"))
                if block is None:
                    raise RpcError(SERVER_ERROR, "header not found")
                return int(block["number"], 16)
            if "blockNumber" in tag:
                return self._block_number(tag["blockNumber"])
            raise _bad("block must be a tag, a number or {blockHash}")
        if isinstance(tag, str) and len(tag) == 66 and allow_hash:
            block = self._block_by_hash(_hash(tag, "block hash"))
            if block is None:
                raise RpcError(SERVER_ERROR, "header not found")
            return int(block["number"], 16)
        number = _quantity(tag, "block number")
        if number > head:
            raise RpcError(SERVER_ERROR, "header not found")
        return number

    def _state_block(self, tag: Any) -> int | None:
        """The block whose state ``tag`` asks for; None for the newest. "latest" and its like
        are None outright: reading the head here twice (once to resolve the tag, once to
        compare) could straddle a block, and turn "latest" into the block before it, whose
        state lacks the transaction the client has just seen mined."""
        if tag is None or tag in _NEWEST:
            return None
        head = self.node.head_number
        number = self._block_number(tag, head=head)
        return None if number == head else number

    def _block_by_hash(self, block_hash: bytes) -> dict[str, Any] | None:
        return self.node.store.get_json(b"b" + block_hash)

    def _block_hash(self, number: int) -> bytes | None:
        store = self.node.store
        return store.get_committed(store.index, b"n" + number.to_bytes(8, "big"))

    def _block(self, number: int) -> dict[str, Any] | None:
        block_hash = self._block_hash(number)
        return None if block_hash is None else self._block_by_hash(block_hash)

    def _full(self, block: dict[str, Any] | None, full: Any) -> dict[str, Any] | None:
        if block is None or not full:
            return block
        store = self.node.store
        txs = [store.get_json(b"t" + bytes.fromhex(h[2:])) for h in block["transactions"]]
        return dict(block, transactions=txs)

    # -- simple answers -----------------------------------------------------------------

    async def rpc_eth_chainId(self, params: Any) -> str:
        return hexint(self.node.chain_id)

    async def rpc_net_version(self, params: Any) -> str:
        return str(self.node.chain_id)

    async def rpc_net_listening(self, params: Any) -> bool:
        return True

    async def rpc_net_peerCount(self, params: Any) -> str:
        return "0x0"

    async def rpc_web3_clientVersion(self, params: Any) -> str:
        return CLIENT_VERSION

    async def rpc_web3_sha3(self, params: Any) -> str:
        (data,) = _params(params, 1, 1)
        return hexbytes(keccak(_data(data)))

    async def rpc_eth_syncing(self, params: Any) -> bool:
        return False

    async def rpc_eth_mining(self, params: Any) -> bool:
        return True

    async def rpc_eth_accounts(self, params: Any) -> list[str]:
        return []  # nothing is unlocked: the node accepts only signed raw transactions

    async def rpc_eth_blockNumber(self, params: Any) -> str:
        return hexint(self.node.head_number)

    async def rpc_eth_gasPrice(self, params: Any) -> str:
        base = await self.node.ask("next_base_fee")
        return hexint(base + DEFAULT_PRIORITY_FEE)

    async def rpc_eth_maxPriorityFeePerGas(self, params: Any) -> str:
        return hexint(DEFAULT_PRIORITY_FEE)

    async def rpc_eth_blobBaseFee(self, params: Any) -> str:
        return "0x1"

    async def rpc_eth_feeHistory(self, params: Any) -> dict[str, Any]:
        count, newest, percentiles = _params(params, 2, 3)
        count = min(_quantity(count, "blockCount"), 1024)
        if percentiles is not None and (
            not isinstance(percentiles, list)
            or not all(
                isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p <= 100
                for p in percentiles
            )
        ):
            raise _bad("rewardPercentiles must be an array of numbers from 0 to 100")
        newest = self._block_number(newest, allow_hash=False)
        oldest = max(0, newest - count + 1)
        base_fees, ratios, rewards = [], [], []
        for n in range(oldest, newest + 1):
            block = self._block(n)
            assert block is not None
            base_fees.append(block["baseFeePerGas"])
            ratios.append(int(block["gasUsed"], 16) / int(block["gasLimit"], 16))
            if percentiles:
                rewards.append(self._rewards(block, percentiles))
        base_fees.append(
            hexint(await self.node.ask("next_base_fee"))
            if newest == self.node.head_number
            else self._block(newest + 1)["baseFeePerGas"]
        )
        history: dict[str, Any] = {
            "oldestBlock": hexint(oldest),
            "baseFeePerGas": base_fees,
            "gasUsedRatio": ratios,
            "baseFeePerBlobGas": ["0x1"] * len(base_fees),
            "blobGasUsedRatio": [0.0] * len(ratios),
        }
        if percentiles:
            history["reward"] = rewards
        return history

    def _rewards(self, block: dict[str, Any], percentiles: list[float]) -> list[str]:
        store = self.node.store
        base = int(block["baseFeePerGas"], 16)
        tips = []
        for h in block["transactions"]:
            receipt = store.get_json(b"r" + bytes.fromhex(h[2:]))
            tips.append((int(receipt["effectiveGasPrice"], 16) - base, int(receipt["gasUsed"], 16)))
        if not tips:
            return ["0x0"] * len(percentiles)
        tips.sort()
        total = sum(g for _, g in tips)
        out = []
        for p in percentiles:
            threshold, acc = total * p / 100, 0
            for tip, gas in tips:
                acc += gas
                if acc >= threshold:
                    out.append(hexint(tip))
                    break
            else:
                out.append(hexint(tips[-1][0]))
        return out

    # -- state --------------------------------------------------------------------------

    async def rpc_eth_getBalance(self, params: Any) -> str:
        address, tag = _params(params, 1, 2)
        addr, number = _address(address), self._state_block(tag)
        _nonce, balance = await self.node.ask("account", addr, number)
        return hexint(balance)

    async def rpc_eth_getTransactionCount(self, params: Any) -> str:
        address, tag = _params(params, 1, 2)
        addr = _address(address)
        if tag == "pending":
            return hexint(await self.node.ask("pending_nonce", addr))
        nonce, _balance = await self.node.ask("account", addr, self._state_block(tag))
        return hexint(nonce)

    async def rpc_eth_getCode(self, params: Any) -> str:
        address, tag = _params(params, 1, 2)
        addr, number = _address(address), self._state_block(tag)
        return hexbytes(await self.node.ask("code_at", addr, number))

    async def rpc_eth_getStorageAt(self, params: Any) -> str:
        address, slot, tag = _params(params, 2, 3)
        addr, key, number = _address(address), _quantity(slot, "slot"), self._state_block(tag)
        value = await self.node.ask("storage_at", addr, key, number)
        return "0x" + value.to_bytes(32, "big").hex()

    def _call_params(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict):
            raise _bad("the call must be an object")
        parsed: dict[str, Any] = {}
        if call.get("from"):
            parsed["from"] = _address(call["from"], "from")
        if call.get("to"):
            parsed["to"] = _address(call["to"], "to")
        data = call.get("input")
        if data is None:
            data = call.get("data")
        if data is not None:
            parsed["data"] = _data(data, "input")
        if call.get("value") is not None:
            parsed["value"] = _quantity(call["value"], "value")
        if call.get("gas") is not None:
            parsed["gas"] = _quantity(call["gas"], "gas")
        return parsed

    @staticmethod
    def _raise_failure(result: Any) -> None:
        if result.reverted:
            reason = _revert_reason(result.output)
            message = f"execution reverted: {reason}" if reason else "execution reverted"
            raise RpcError(EXECUTION_REVERTED, message, hexbytes(result.output))
        if result.error:
            raise RpcError(SERVER_ERROR, result.error)

    @staticmethod
    def _no_overrides(overrides: Any) -> None:
        # Ignoring them would answer a different question than the one asked.
        if overrides:
            raise _bad("state overrides are not supported")

    async def rpc_eth_call(self, params: Any) -> str:
        call, tag, overrides = _params(params, 1, 3)
        self._no_overrides(overrides)
        parsed, number = self._call_params(call), self._state_block(tag)
        result = await self.node.ask("call", parsed, number)
        self._raise_failure(result)
        return hexbytes(result.output)

    async def rpc_eth_estimateGas(self, params: Any) -> str:
        call, tag, overrides = _params(params, 1, 3)
        self._no_overrides(overrides)
        parsed, number = self._call_params(call), self._state_block(tag)
        result = await self.node.ask("estimate_gas", parsed, number)
        self._raise_failure(result)
        return hexint(result.gas)

    # -- transactions -------------------------------------------------------------------

    async def rpc_eth_sendRawTransaction(self, params: Any) -> str:
        (raw,) = _params(params, 1, 1)
        data = _data(raw, "transaction")
        try:
            tx_hash = await self.node.ask("submit", data)
        except Rejected as exc:
            raise RpcError(SERVER_ERROR, str(exc)) from exc
        await self.node.journaled(data)
        return hexbytes(tx_hash)

    async def rpc_eth_sendTransaction(self, params: Any) -> str:
        raise RpcError(
            SERVER_ERROR,
            "unknown account: the node accepts only signed raw "
            "transactions (eth_sendRawTransaction)",
        )

    async def rpc_eth_getTransactionByHash(self, params: Any) -> dict[str, Any] | None:
        (tx_hash,) = _params(params, 1, 1)
        key = _hash(tx_hash, "transaction hash")
        found = self.node.store.get_json(b"t" + key)
        if found is None:
            found = await self.node.ask("pending_transaction", key)
        if found is None:  # mined between the two looks: out of the pool, into a block
            found = self.node.store.get_json(b"t" + key)
        return found

    async def rpc_eth_getTransactionReceipt(self, params: Any) -> dict[str, Any] | None:
        (tx_hash,) = _params(params, 1, 1)
        return self.node.store.get_json(b"r" + _hash(tx_hash, "transaction hash"))

    async def rpc_eth_getTransactionByBlockNumberAndIndex(self, params: Any) -> Any:
        tag, index = _params(params, 2, 2)
        return self._tx_at(self._block_or_none(tag), index)

    async def rpc_eth_getTransactionByBlockHashAndIndex(self, params: Any) -> Any:
        block_hash, index = _params(params, 2, 2)
        return self._tx_at(self._block_by_hash(_hash(block_hash, "block hash")), index)

    def _tx_at(self, block: dict[str, Any] | None, index: Any) -> dict[str, Any] | None:
        i = _quantity(index, "index")
        if block is None or i >= len(block["transactions"]):
            return None
        return self.node.store.get_json(b"t" + bytes.fromhex(block["transactions"][i][2:]))

    def _block_or_none(self, tag: Any) -> dict[str, Any] | None:
        """The block ``tag`` names; None for one beyond the head, as geth answers."""
        try:
            number = self._block_number(tag, allow_hash=False)
        except RpcError as exc:
            if exc.code == SERVER_ERROR:
                return None
            raise
        return self._block(number)

    async def rpc_eth_getBlockByNumber(self, params: Any) -> dict[str, Any] | None:
        tag, full = _params(params, 1, 2)
        return self._full(self._block_or_none(tag), full)

    async def rpc_eth_getBlockByHash(self, params: Any) -> dict[str, Any] | None:
        block_hash, full = _params(params, 1, 2)
        return self._full(self._block_by_hash(_hash(block_hash, "block hash")), full)

    async def rpc_eth_getBlockTransactionCountByNumber(self, params: Any) -> str | None:
        (tag,) = _params(params, 1, 1)
        block = self._block_or_none(tag)
        return None if block is None else hexint(len(block["transactions"]))

    async def rpc_eth_getBlockTransactionCountByHash(self, params: Any) -> str | None:
        (block_hash,) = _params(params, 1, 1)
        block = self._block_by_hash(_hash(block_hash, "block hash"))
        return None if block is None else hexint(len(block["transactions"]))

    async def rpc_eth_getBlockReceipts(self, params: Any) -> list[dict[str, Any]] | None:
        (tag,) = _params(params, 1, 1)
        block = self._block(self._block_number(tag))
        if block is None:
            return None
        store = self.node.store
        return [store.get_json(b"r" + bytes.fromhex(h[2:])) for h in block["transactions"]]

    async def rpc_eth_getUncleCountByBlockNumber(self, params: Any) -> str:
        return "0x0"

    async def rpc_eth_getUncleCountByBlockHash(self, params: Any) -> str:
        return "0x0"

    # -- logs and filters ---------------------------------------------------------------

    def _log_filter(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise _bad("the filter must be an object")
        addresses = spec.get("address")
        if addresses is None:
            addrs = None
        else:
            items = addresses if isinstance(addresses, list) else [addresses]
            addrs = {_address(a) for a in items}
        wanted = spec.get("topics") or []
        if not isinstance(wanted, list):
            raise _bad("topics must be an array")
        topics = []
        for t in wanted:
            if t is None:
                topics.append(None)
            elif isinstance(t, list):
                topics.append({_hash(x, "topic") for x in t} if t else None)
            else:
                topics.append({_hash(t, "topic")})
        if len(topics) > 4:
            raise _bad("at most 4 topics")
        parsed: dict[str, Any] = {"addresses": addrs, "topics": topics}
        if spec.get("blockHash") is not None:
            block = self._block_by_hash(_hash(spec["blockHash"], "blockHash"))
            if block is None:
                raise RpcError(SERVER_ERROR, "unknown block")
            parsed["from"] = parsed["to"] = int(block["number"], 16)
        else:
            parsed["from_tag"] = spec.get("fromBlock", "latest")
            parsed["to_tag"] = spec.get("toBlock", "latest")
        return parsed

    def _range(self, f: dict[str, Any]) -> tuple[int, int]:
        if "from" in f:
            return f["from"], f["to"]
        head = self.node.head_number
        start = self._clamp(f["from_tag"], head)
        end = self._clamp(f["to_tag"], head)
        return start, end

    def _clamp(self, tag: Any, head: int) -> int:
        if tag is None or isinstance(tag, str) and not tag.startswith("0x"):
            return self._block_number(tag, allow_hash=False)
        return min(_quantity(tag, "block number"), head)

    def _logs(self, f: dict[str, Any], start: int, end: int) -> list[dict[str, Any]]:
        if end - start > MAX_LOG_BLOCK_RANGE:
            raise RpcError(SERVER_ERROR, f"block range too large: at most {MAX_LOG_BLOCK_RANGE}")
        addrs, topics = f["addresses"], f["topics"]
        found: list[dict[str, Any]] = []
        store = self.node.store
        for n in range(start, end + 1):
            block_logs = store.get_json(b"l" + n.to_bytes(8, "big"))
            if not block_logs:
                continue
            for entry in block_logs:
                if addrs is not None and bytes.fromhex(entry["address"][2:]) not in addrs:
                    continue
                if not _topics_match(entry["topics"], topics):
                    continue
                found.append(entry)
                if len(found) > MAX_LOGS:
                    raise RpcError(SERVER_ERROR, f"query returned more than {MAX_LOGS} results")
        return found

    async def rpc_eth_getLogs(self, params: Any) -> list[dict[str, Any]]:
        (spec,) = _params(params, 1, 1)
        f = self._log_filter(spec)
        start, end = self._range(f)
        return self._logs(f, start, end)

    def _new_filter(self, kind: str, spec: dict[str, Any] | None = None) -> str:
        fid = hexint(next(self._ids))
        self.filters[fid] = {"kind": kind, "spec": spec, "last": self.node.head_number}
        return fid

    async def rpc_eth_newFilter(self, params: Any) -> str:
        (spec,) = _params(params, 1, 1)
        f = self._log_filter(spec)
        start, _end = self._range(f)
        fid = self._new_filter("logs", f)
        if "from" in f or f["from_tag"] not in (None, *_NEWEST):
            # an explicit block: the first poll reports the logs since then, as anvil does;
            # from "latest", only blocks mined after the filter was installed count
            self.filters[fid]["last"] = min(self.node.head_number, start - 1)
        return fid

    async def rpc_eth_newBlockFilter(self, params: Any) -> str:
        return self._new_filter("blocks")

    async def rpc_eth_newPendingTransactionFilter(self, params: Any) -> str:
        return self._new_filter("pending")

    async def rpc_eth_uninstallFilter(self, params: Any) -> bool:
        (fid,) = _params(params, 1, 1)
        return self.filters.pop(_filter_id(fid), None) is not None

    def _filter(self, fid: Any) -> dict[str, Any]:
        f = self.filters.get(_filter_id(fid))
        if f is None:
            raise RpcError(SERVER_ERROR, "filter not found")
        return f

    async def rpc_eth_getFilterChanges(self, params: Any) -> list[Any]:
        (fid,) = _params(params, 1, 1)
        f = self._filter(fid)
        head = self.node.head_number
        start, f["last"] = f["last"] + 1, head
        if f["kind"] == "blocks":
            return [self._block(n)["hash"] for n in range(start, head + 1)]
        if f["kind"] == "pending":
            return []
        spec = f["spec"]
        _s, end = self._range(spec)
        return self._logs(spec, start, min(end, head))

    async def rpc_eth_getFilterLogs(self, params: Any) -> list[Any]:
        (fid,) = _params(params, 1, 1)
        f = self._filter(fid)
        if f["kind"] != "logs":
            raise RpcError(SERVER_ERROR, "filter is not a log filter")
        start, end = self._range(f["spec"])
        return self._logs(f["spec"], start, end)

    # -- subscriptions (WebSocket only; the server implements them) ---------------------

    def matches(self, spec: dict[str, Any], entry: dict[str, Any]) -> bool:
        addrs = spec["addresses"]
        if addrs is not None and bytes.fromhex(entry["address"][2:]) not in addrs:
            return False
        return _topics_match(entry["topics"], spec["topics"])


def _filter_id(value: Any) -> str:
    if not isinstance(value, str):
        raise _bad("the filter id must be a hex string")
    return value


def _topics_match(have: list[str], want: list[set[bytes] | None]) -> bool:
    if len(want) > len(have):
        return False
    for wanted, topic in zip(want, have, strict=False):
        if wanted is not None and bytes.fromhex(topic[2:]) not in wanted:
            return False
    return True


def _revert_reason(data: bytes) -> str | None:
    """The reason inside Error(string) or Panic(uint256) revert data, if any."""
    from eth_abi import decode

    try:
        if data[:4] == bytes.fromhex("08c379a0"):
            return decode(["string"], data[4:])[0]
        if data[:4] == bytes.fromhex("4e487b71"):
            return f"panic code {hex(decode(['uint256'], data[4:])[0])}"
    except Exception:
        return None
    return None
