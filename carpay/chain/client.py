"""The Chain object: one EVM network over JSON-RPC, to deploy, call, send, wait and read logs."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract.contract import Contract, ContractEvent, ContractFunction
from web3.exceptions import (
    ContractLogicError,
    TransactionIndexingInProgress,
    TransactionNotFound,
    Web3Exception,
)
from web3.providers.rpc.utils import check_if_retry_on_failure
from web3.types import EventData, LogReceipt, TxReceipt

from carpay.chain import build
from carpay.chain.build import CompiledContract
from carpay.chain.nonces import NonceManager
from carpay.errors import (
    ChainError,
    DeploymentNotFound,
    NonceTooLow,
    TransactionRejected,
    TransactionReverted,
    TransactionTimeout,
)

__all__ = ["Chain", "Deployment", "decode_revert"]

log = logging.getLogger(__name__)

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
PANIC_REASONS = {
    0x00: "generic panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised function",
}

#: Gas sent above the node's estimate: state may move between estimate and inclusion.
GAS_HEADROOM_PERCENT = 20
#: ... and at least this much: the first write of one storage slot (22,100) and its event.
#: A contract whose work depends on the time (a premium earned by the second) may write a
#: slot at inclusion that was still empty at the estimate. Unused gas is not charged.
GAS_HEADROOM_MIN = 25_000


def gas_with_headroom(estimate: int) -> int:
    """The gas limit to send for a node's ``estimate``."""
    return estimate + max(estimate * GAS_HEADROOM_PERCENT // 100, GAS_HEADROOM_MIN)


#: The least fee increase a replacement carries; geth's pool needs 10%, others 12.5%.
REPLACEMENT_BUMP_PER_MILLE = 125
#: How many of carpay's contract objects (a name at an address) a client keeps built.
_CONTRACT_MEMORY = 1024
#: How many sent transactions the client remembers so that it can replace them.
_SENT_MEMORY = 10_000

Target = str | ContractFunction | None


def decode_revert(data: bytes) -> str | None:
    """The reason inside revert data, if the data carries one.

    ``Error(string)`` gives its string (``"checkout: invoice expired"``); ``Panic(uint256)``
    gives e.g. ``"panic 0x12: division or modulo by zero"``. Anything else (no data, a custom
    error) gives None.
    """
    try:
        if data[:4] == ERROR_SELECTOR:
            return abi_decode(["string"], data[4:])[0]
        if data[:4] == PANIC_SELECTOR:
            code = abi_decode(["uint256"], data[4:])[0]
            return f"panic {code:#04x}: {PANIC_REASONS.get(code, 'unknown panic code')}"
    except Exception:  # malformed data is simply not a reason
        return None
    return None


@dataclass(frozen=True)
class Deployment:
    """Where a named contract was deployed on one chain."""

    address: ChecksumAddress
    tx_hash: str
    block: int


@dataclass
class _Sent:
    sender: LocalAccount
    tx: dict[str, Any]


class _RpcError(ChainError):
    """A JSON-RPC error answer, before it is classified."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        self.rpc_code = error.get("code")
        self.rpc_message = str(error.get("message", ""))
        self.rpc_data = error.get("data")
        super().__init__(f"{method}: {self.rpc_message} (code {self.rpc_code})")

    def as_revert(self, tx_hash: str | None = None) -> TransactionReverted | None:
        """The revert this error reports, if it reports one."""
        message = self.rpc_message.lower()
        if self.rpc_code != 3 and "revert" not in message:
            return None
        data = _revert_bytes(self.rpc_data)
        reason = decode_revert(data)
        if reason is None and not data and ": " in self.rpc_message:
            # Nodes that keep the data to themselves still put the reason in the message.
            reason = self.rpc_message.split(": ", 1)[1]
        return TransactionReverted(reason, data=data, tx_hash=tx_hash)


#: The calls the fees of a transaction are worked out from (:meth:`Chain._fees_of`): the
#: latest block's base fee and the node's tip.
_FEE_BASIS = [("eth_getBlockByNumber", ["latest", False]), ("eth_maxPriorityFeePerGas", [])]


def _answer(answer: Any) -> Any:
    """A batch's answer (:meth:`Chain.batch` with ``return_errors``), its error raised."""
    if isinstance(answer, Exception):
        raise answer
    return answer


#: Connections kept to the node: the API's request threads, relayers and indexer share them.
_HTTP_POOL = 64


def _http_session(url: str) -> requests.Session:
    """An HTTP session for ``url`` that reads the environment (proxies, a CA bundle) once:
    requests would read it again on every call, a quarter of a call's time to a local node."""
    session = requests.Session()
    proxies = requests.utils.get_environ_proxies(url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    session.trust_env = False
    session.proxies.update(proxies)
    if bundle and url.lower().startswith("https:"):
        # Only where it is used: requests looks the path up on the disk at every request.
        session.verify = bundle
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=_HTTP_POOL)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Chain:
    """One EVM network, reached over HTTP JSON-RPC.

    Transactions are signed here with the sender's key and submitted with
    ``eth_sendRawTransaction`` only; nonces come from a :class:`NonceManager` kept in
    ``state_dir`` (default: the settings' data directory), so several threads and processes
    may send for the same account. Deployments are recorded in
    ``<state_dir>/deployments/<chain_id>.json``.
    """

    def __init__(
        self,
        url: str,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        nonces: NonceManager | None = None,
        request_timeout: float = 30.0,
        poll_interval: float = 0.005,
    ) -> None:
        self.url = url
        self._session = _http_session(url)
        self.w3 = Web3(
            Web3.HTTPProvider(
                url, request_kwargs={"timeout": request_timeout}, session=self._session
            )
        )
        if state_dir is None:
            from carpay.settings import Settings

            state_dir = Settings().data_dir
        self.state_dir = Path(state_dir)
        self.poll_interval = poll_interval
        self._nonces = nonces
        self._sent: OrderedDict[str, _Sent] = OrderedDict()
        self._lock = threading.Lock()
        self._timeout = request_timeout
        self._contracts: OrderedDict[tuple[str, str], Contract] = OrderedDict()

    def __repr__(self) -> str:
        return f"Chain({self.url!r})"

    # -- the network -------------------------------------------------------------------------

    @cached_property
    def chain_id(self) -> int:
        """The chain id the node reports (EIP-155), which every signed transaction carries."""
        return int(self._rpc("eth_chainId", []), 16)

    @cached_property
    def genesis_hash(self) -> str:
        """The hash of block 0: tells apart two chains that share a chain id (dev nodes)."""
        return self._rpc("eth_getBlockByNumber", ["0x0", False])["hash"]

    @property
    def nonces(self) -> NonceManager:
        """The nonce manager this chain's senders draw from."""
        if self._nonces is None:
            with self._lock:
                if self._nonces is None:
                    self._nonces = NonceManager(
                        self.state_dir / "nonces.sqlite3",
                        chain=f"{self.chain_id}:{self.genesis_hash}",
                        pending=self.pending_nonce,
                    )
        return self._nonces

    def block_number(self) -> int:
        """The number of the latest block."""
        return int(self._rpc("eth_blockNumber", []), 16)

    def pending_nonce(self, address: str) -> int:
        """How many transactions ``address`` has sent, counting those in the node's pool."""
        return int(self._rpc("eth_getTransactionCount", [address, "pending"]), 16)

    def fees(self) -> tuple[int, int]:
        """``(maxFeePerGas, maxPriorityFeePerGas)`` for a transaction sent now.

        The tip is the node's ``eth_maxPriorityFeePerGas``; the cap is twice the latest base
        fee plus the tip, which stays valid through six full blocks of base fee rises.
        """
        base, tip = self._fee_basis()
        return 2 * base + tip, tip

    # -- contracts ---------------------------------------------------------------------------

    def deploy(
        self,
        compiled: CompiledContract | str,
        *args: Any,
        sender: LocalAccount,
        name: str | None = None,
        value: int = 0,
        gas: int | None = None,
        timeout: float = 120.0,
    ) -> ChecksumAddress:
        """Deploy a contract with constructor ``args``, wait for it and record it by ``name``.

        ``compiled`` is compiler output, or the name of one of carpay's own contracts. The
        deployment is recorded under ``name`` (default: the contract's name) and found again
        with :meth:`deployment`. A constructor revert raises :class:`TransactionReverted`.
        """
        if isinstance(compiled, str):
            compiled = build.contract(compiled)
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.transact(sender, None, data, value=value, gas=gas, timeout=timeout)
        address = to_checksum_address(receipt["contractAddress"])
        tx_hash = Web3.to_hex(receipt["transactionHash"])
        self._record(name or compiled.name, Deployment(address, tx_hash, receipt["blockNumber"]))
        return address

    def deployment(self, name: str) -> Deployment:
        """Where ``name`` was deployed on this chain; :class:`DeploymentNotFound` if it wasn't."""
        entry = self._read_deployments().get(name)
        if entry is None or entry.get("genesis", self.genesis_hash) != self.genesis_hash:
            raise DeploymentNotFound(f"no deployment of {name!r} on chain {self.chain_id}")
        return Deployment(to_checksum_address(entry["address"]), entry["tx_hash"], entry["block"])

    def deployments(self) -> dict[str, Deployment]:
        """Every deployment recorded for this chain, by name."""
        return {
            name: Deployment(to_checksum_address(e["address"]), e["tx_hash"], e["block"])
            for name, e in self._read_deployments().items()
            if e.get("genesis", self.genesis_hash) == self.genesis_hash
        }

    def contract(self, compiled: CompiledContract | str, address: str | None = None) -> Contract:
        """A web3 contract object for ``compiled`` at ``address``.

        ``compiled`` may be the name of one of carpay's own contracts. Without ``address``,
        the recorded deployment of that name is used.
        """
        name = compiled if isinstance(compiled, str) else compiled.name
        address = to_checksum_address(address or self.deployment(name).address)
        if not isinstance(compiled, str):
            return self.w3.eth.contract(address=address, abi=compiled.abi)
        # web3 builds a contract's class from its ABI each time (about 5 ms): carpay's own
        # contracts, whose sources do not change while the process runs, are built once per
        # address.
        key = (compiled, address)
        found = self._contracts.get(key)
        if found is None:
            found = self.w3.eth.contract(address=address, abi=build.contract(compiled).abi)
            self._contracts[key] = found
            while len(self._contracts) > _CONTRACT_MEMORY:
                self._contracts.popitem(last=False)
        return found

    # -- reading -----------------------------------------------------------------------------

    def call(
        self,
        to: str | ContractFunction,
        data: bytes | str = b"",
        *,
        sender: str | LocalAccount | None = None,
        value: int = 0,
        block: int | str = "latest",
        gas: int | None = None,
    ) -> Any:
        """Run a call without a transaction (``eth_call``).

        ``to`` is a bound contract function (``token.functions.balanceOf(owner)``), whose
        decoded result is returned, or an address, with raw ``data``, whose raw output bytes
        are returned. A revert raises :class:`TransactionReverted` with its reason. ``gas``
        limits the call (default: the node's).
        """
        frm = getattr(sender, "address", sender)
        block_id = hex(block) if isinstance(block, int) else block
        if isinstance(to, ContractFunction):
            params: dict[str, Any] = {"value": value}
            if frm:
                params["from"] = frm
            if gas is not None:
                params["gas"] = gas
            with self._web3_errors():
                return to.call(params, block_identifier=block_id)
        call = self._call_object(frm, to, _as_bytes(data), value)
        if gas is not None:
            call["gas"] = hex(gas)
        try:
            return bytes.fromhex(self._rpc("eth_call", [call, block_id])[2:])
        except _RpcError as exc:
            raise exc.as_revert() or exc from None

    def estimate_gas(
        self, sender: str | LocalAccount, to: Target, data: bytes | str = b"", value: int = 0
    ) -> int:
        """The node's gas estimate; a revert raises :class:`TransactionReverted` with its reason.

        It is made in the next block's context (``pending``), at about the time the transaction
        will be mined: on ``latest``, geth and anvil run it at the head's timestamp, and a
        contract whose work depends on the time (earnings accrued so far, say) is estimated
        for the wrong moment. (The embedded node runs every call in the next block's context.)
        """
        to, payload = _target(to, data)
        sender = getattr(sender, "address", sender)
        return int(_answer(self._ask([self._estimate_call(sender, to, payload, value)])[0]), 16)

    def _estimate_call(
        self, sender: str, to: str | None, payload: bytes, value: int
    ) -> tuple[str, list[Any]]:
        """The JSON-RPC call of :meth:`estimate_gas` (on ``pending``: see there)."""
        return ("eth_estimateGas", [self._call_object(sender, to, payload, value), "pending"])

    def receipt(self, tx_hash: str | bytes) -> TxReceipt | None:
        """The receipt of a mined transaction, or None while it is not mined."""
        with self._web3_errors():
            try:
                return self.w3.eth.get_transaction_receipt(_hex(tx_hash))  # type: ignore[arg-type]
            except (TransactionNotFound, TransactionIndexingInProgress):
                return None

    def logs(
        self,
        event: ContractEvent | type[ContractEvent] | None = None,
        *,
        argument_filters: Mapping[str, Any] | None = None,
        address: str | Sequence[str] | None = None,
        topics: Sequence[Any] | None = None,
        from_block: int | str = 0,
        to_block: int | str = "latest",
    ) -> list[EventData] | list[LogReceipt]:
        """Logs between two blocks (inclusive).

        With ``event`` (``token.events.Transfer``), the decoded events of that contract,
        optionally narrowed by ``argument_filters`` on indexed arguments. Without, the raw logs
        matching ``address`` and ``topics``.
        """
        with self._web3_errors():
            if event is not None:
                return list(
                    event.get_logs(
                        argument_filters=dict(argument_filters or {}),
                        from_block=from_block,
                        to_block=to_block,
                    )
                )
            spec: dict[str, Any] = {"fromBlock": from_block, "toBlock": to_block}
            if address is not None:
                spec["address"] = address
            if topics is not None:
                spec["topics"] = list(topics)
            return list(self.w3.eth.get_logs(spec))  # type: ignore[arg-type]

    # -- sending -----------------------------------------------------------------------------

    def send(
        self,
        sender: LocalAccount,
        to: Target,
        data: bytes | str = b"",
        value: int = 0,
        gas: int | None = None,
        *,
        max_fee: int | None = None,
        priority_fee: int | None = None,
    ) -> str:
        """Sign and submit a transaction; returns its hash without waiting for it.

        ``to`` is an address, a bound contract function (then ``data`` is its calldata), or
        None to create a contract from ``data``. Without ``gas`` the node estimates it (a
        revert raises :class:`TransactionReverted` before anything is sent). Fees default to
        :meth:`fees`. A refusal raises :class:`TransactionRejected`.
        """
        to, payload = _target(to, data)
        # What the node must say before signing, asked in one round trip: the estimate, the
        # fees and the sender's pending count (for the nonce manager). The estimate fails
        # first: a revert raises before anything else is looked at.
        asks: list[tuple[str, list[Any]]] = []
        if gas is None:
            asks.append(self._estimate_call(sender.address, to, payload, value))
        fees_asked = max_fee is None or priority_fee is None
        if fees_asked:
            asks += _FEE_BASIS
        asks.append(("eth_getTransactionCount", [sender.address, "pending"]))
        answers = self._ask(asks)
        if gas is None:
            gas = gas_with_headroom(int(_answer(answers[0]), 16))
        if fees_asked:
            base, tip = self._fees_of(*answers[-3:-1])  # before the count, last
            priority_fee = tip if priority_fee is None else priority_fee
            max_fee = 2 * base + priority_fee if max_fee is None else max_fee
        pending = int(_answer(answers[-1]), 16)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "gas": gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority_fee,
            "value": value,
            "data": payload,
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        for attempt in (1, 2):
            nonce = self.nonces.reserve(sender.address, pending=pending)
            try:
                return self._submit(sender, {**tx, "nonce": nonce})
            except NonceTooLow:
                # Something outside this nonce manager used the nonce, or the count the manager
                # saw lagged: catch up with the node's own count and try once more.
                pending = self.pending_nonce(sender.address)
                self.nonces.resync(sender.address, pending=pending)
                if attempt == 2:
                    raise
            except TransactionRejected:
                self.nonces.release(sender.address, nonce)
                raise
        raise AssertionError("unreachable")

    def replace(self, tx_hash: str | bytes, sender: LocalAccount | None = None) -> str:
        """Re-send a pending transaction with the same nonce and fees raised by at least 12.5%.

        Used to unstick a transaction priced below what the network now takes. ``sender`` is
        needed only for a transaction this object did not send itself. Raises
        :class:`NonceTooLow` when a transaction with that nonce has been mined meanwhile.
        """
        tx_hash = _hex(tx_hash)
        with self._lock:
            sent = self._sent.get(tx_hash)
        if sent is not None:
            sender, tx = sender or sent.sender, dict(sent.tx)
        else:
            if sender is None:
                raise ValueError(f"{tx_hash} was not sent by this Chain: pass its sender")
            tx = self._fetch_tx(tx_hash, sender)
        base, tip = self._fee_basis()
        tx["maxPriorityFeePerGas"] = max(_bump(tx["maxPriorityFeePerGas"]), tip)
        tx["maxFeePerGas"] = max(_bump(tx["maxFeePerGas"]), 2 * base + tx["maxPriorityFeePerGas"])
        return self._submit(sender, tx)

    def wait(
        self,
        tx_hash: str | bytes,
        timeout: float = 120.0,
        *,
        replace_after: float | None = None,
        sender: LocalAccount | None = None,
    ) -> TxReceipt:
        """Wait for a transaction to be mined and return its receipt.

        Raises :class:`TransactionTimeout` after ``timeout`` seconds and
        :class:`TransactionReverted`, with the reason replayed from the parent block, when it
        was mined but failed. With ``replace_after``, a transaction still not mined that many
        seconds after it (or its last replacement) was sent is replaced with higher fees
        (:meth:`replace`); the receipt is then that of whichever version was mined.
        """
        started = time.monotonic()
        deadline = started + timeout
        hashes, last_sent, delay = [_hex(tx_hash)], started, self.poll_interval
        while True:
            for candidate in reversed(hashes):
                receipt = self.receipt(candidate)
                if receipt is not None:
                    return self._check(receipt)
            now = time.monotonic()
            if now >= deadline:
                also = f" (replaced by {', '.join(hashes[1:])})" if len(hashes) > 1 else ""
                raise TransactionTimeout(f"transaction {hashes[0]}{also} not mined in {timeout}s")
            if replace_after is not None and now - last_sent >= replace_after:
                last_sent = now
                try:
                    hashes.append(self.replace(hashes[-1], sender))
                except NonceTooLow:
                    replace_after = None  # a version was mined; the next poll finds it
                except TransactionRejected as exc:
                    log.warning("could not replace %s: %s", hashes[-1], exc.message)
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 1.5, 0.5)

    def transact(
        self,
        sender: LocalAccount,
        to: Target,
        data: bytes | str = b"",
        value: int = 0,
        gas: int | None = None,
        *,
        timeout: float = 120.0,
        replace_after: float | None = None,
    ) -> TxReceipt:
        """:meth:`send` then :meth:`wait`: the receipt of a successful transaction."""
        tx_hash = self.send(sender, to, data, value, gas)
        return self.wait(tx_hash, timeout, replace_after=replace_after, sender=sender)

    def transact_all(
        self, calls: Sequence[tuple[LocalAccount, Target]], *, timeout: float = 120.0
    ) -> list[TxReceipt]:
        """Send every ``(sender, to)`` (as :meth:`send`) without waiting, then wait for them
        all: transactions that do not depend on one another, mined together in as few blocks
        as the node packs them. The receipts, in order; the first failure raises."""
        hashes = [self.send(sender, to) for sender, to in calls]
        return [self.wait(tx_hash, timeout) for tx_hash in hashes]

    def read_all(
        self,
        calls: Sequence[tuple[Contract, str, Sequence[Any]]],
        *,
        block: int | str = "latest",
        return_errors: bool = False,
    ) -> list[Any]:
        """The decoded results of contract reads ``(contract, function name, args)``, asked
        as one JSON-RPC batch of ``eth_call`` (a tuple for a function of several outputs). A
        revert raises :class:`TransactionReverted`, or with ``return_errors`` stands in the
        list in place of its result."""
        block_id = hex(block) if isinstance(block, int) else block
        batch = [
            (
                "eth_call",
                [{"to": c.address, "data": c.encode_abi(name, args=list(args))}, block_id],
            )
            for c, name, args in calls
        ]
        results = []
        for (contract, name, _args), answer in zip(
            calls, self.batch(batch, return_errors=return_errors), strict=True
        ):
            if isinstance(answer, Exception):
                results.append(answer)
                continue
            outputs = contract.get_function_by_name(name).abi["outputs"]
            try:
                values = abi_decode([o["type"] for o in outputs], bytes.fromhex(answer[2:]))
            except Exception as exc:  # noqa: BLE001 (no such function there: empty output)
                failure = ChainError(f"{name} at {contract.address} answered unreadably: {exc}")
                if not return_errors:
                    raise failure from exc
                results.append(failure)
                continue
            results.append(values if len(values) != 1 else values[0])
        return results

    def batch(
        self, calls: Sequence[tuple[str, list[Any]]], *, return_errors: bool = False
    ) -> list[Any]:
        """The results of several JSON-RPC ``(method, params)`` calls sent as one batch.

        Results come back in the order of ``calls`` (the node may run them in any order). An
        error raises :class:`ChainError` (:class:`TransactionReverted` for a revert), or with
        ``return_errors`` stands in the list in place of its result.
        """
        if not calls:
            return []
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        try:
            answers = self._post(payload, [method for method, _params in calls])
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            raise ChainError(f"batch of {len(calls)} calls to {self.url} failed: {exc}") from exc
        if not isinstance(answers, list) or len(answers) != len(calls):
            raise ChainError(f"{self.url} answered a batch of {len(calls)} calls unreadably")
        results: list[Any] = [None] * len(calls)
        for answer in answers:
            error = answer.get("error")
            if error is None:
                results[answer["id"]] = answer.get("result")
                continue
            method = calls[answer["id"]][0]
            failure = _RpcError(method, error if isinstance(error, Mapping) else {"message": error})
            failure = failure.as_revert() or failure
            if not return_errors:
                raise failure
            results[answer["id"]] = failure
        return results

    # -- internals ---------------------------------------------------------------------------

    def _post(self, payload: Any, methods: Sequence[str]) -> Any:
        """POST ``payload`` (one call or a batch of ``methods``) and parse the answer.

        Straight over the HTTP session: web3's provider adds a third to a local call. Its
        retries are kept: a payload whose methods web3 would all retry is retried on the
        errors it retries, as often. Raises requests' errors (OSErrors) and ValueError.
        """
        retry = self.w3.provider.exception_retry_configuration  # type: ignore[attr-defined]
        tries = 1
        if retry is not None and all(
            check_if_retry_on_failure(method, retry.method_allowlist) for method in methods
        ):
            tries = max(retry.retries, 1)
        for attempt in range(tries):
            try:
                answer = self._session.post(self.url, json=payload, timeout=self._timeout)
                answer.raise_for_status()
                return answer.json()
            except (OSError, ValueError) as exc:
                if attempt + 1 < tries and isinstance(exc, tuple(retry.errors)):
                    time.sleep(retry.backoff_factor * 2**attempt)
                    continue
                raise
        raise AssertionError("unreachable")

    def _rpc(self, method: str, params: list[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            response = self._post(payload, [method])
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors
            raise ChainError(f"{method} to {self.url} failed: {exc}") from exc
        if not isinstance(response, Mapping):
            raise ChainError(f"{self.url} answered {method} unreadably")
        error = response.get("error")
        if error is not None:
            raise _RpcError(method, error if isinstance(error, Mapping) else {"message": error})
        return response.get("result")

    @contextmanager
    def _web3_errors(self) -> Iterator[None]:
        try:
            yield
        except ContractLogicError as exc:
            data = _revert_bytes(exc.data)
            reason = decode_revert(data)
            if reason is None and not data and ": " in (exc.message or ""):
                reason = exc.message.split(": ", 1)[1]
            raise TransactionReverted(reason, data=data) from exc
        except (Web3Exception, OSError) as exc:
            raise ChainError(f"{self.url}: {exc}") from exc

    def _ask(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """:meth:`batch` with ``return_errors``; one call is asked alone (a node may take
        single calls only)."""
        if len(calls) != 1:
            return self.batch(calls, return_errors=True)
        try:
            return [self._rpc(*calls[0])]
        except _RpcError as exc:
            return [exc.as_revert() or exc]

    def _fee_basis(self) -> tuple[int, int]:
        return self._fees_of(*self._ask(_FEE_BASIS))

    def _fees_of(self, block: Any, tip: Any) -> tuple[int, int]:
        """The base fee and tip from the answers to :data:`_FEE_BASIS`."""
        base = int(_answer(block).get("baseFeePerGas") or "0x0", 16)
        if isinstance(tip, Exception):  # older nodes: the tip is what the gas price adds
            return base, max(int(self._rpc("eth_gasPrice", []), 16) - base, 0)
        return base, int(tip, 16)

    @staticmethod
    def _call_object(sender: str | None, to: str | None, data: bytes, value: int) -> dict:
        call: dict[str, Any] = {"data": "0x" + data.hex()}
        if sender:
            call["from"] = sender
        if to is not None:
            call["to"] = to
        if value:
            call["value"] = hex(value)
        return call

    def _submit(self, sender: LocalAccount, tx: dict[str, Any]) -> str:
        signed = sender.sign_transaction(tx)
        tx_hash = Web3.to_hex(signed.hash)
        try:
            self._rpc("eth_sendRawTransaction", [Web3.to_hex(signed.raw_transaction)])
        except _RpcError as exc:
            message = exc.rpc_message
            if "already known" not in message.lower():  # the node holds this exact one: fine
                if "nonce too low" in message.lower():
                    raise NonceTooLow(message) from None
                raise TransactionRejected(message) from None
        with self._lock:
            self._sent[tx_hash] = _Sent(sender, tx)
            while len(self._sent) > _SENT_MEMORY:
                self._sent.popitem(last=False)
        return tx_hash

    def _fetch_tx(self, tx_hash: str, sender: LocalAccount) -> dict[str, Any]:
        with self._web3_errors():
            found = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        if found["from"] != sender.address:
            raise ValueError(f"{tx_hash} was sent by {found['from']}, not {sender.address}")
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": found["nonce"],
            "gas": found["gas"],
            "maxFeePerGas": found.get("maxFeePerGas", found.get("gasPrice", 0)),
            "maxPriorityFeePerGas": found.get("maxPriorityFeePerGas", found.get("gasPrice", 0)),
            "value": found["value"],
            "data": bytes(found["input"]),
        }
        if found.get("to"):
            tx["to"] = found["to"]
        return tx

    def _check(self, receipt: TxReceipt) -> TxReceipt:
        if receipt["status"] == 1:
            return receipt
        raise self._replay_failure(receipt)

    def _replay_failure(self, receipt: TxReceipt) -> TransactionReverted:
        """Why a mined transaction failed: run it again with eth_call on its parent block."""
        tx_hash = Web3.to_hex(receipt["transactionHash"])
        with self._web3_errors():
            tx = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        call = self._call_object(tx["from"], tx.get("to"), bytes(tx["input"]), tx["value"])
        call["gas"] = hex(tx["gas"])
        try:
            self._rpc("eth_call", [call, hex(receipt["blockNumber"] - 1)])
        except _RpcError as exc:
            revert = exc.as_revert(tx_hash)
            if revert is not None:
                return revert
            return TransactionReverted(exc.rpc_message or None, tx_hash=tx_hash)
        # The replay succeeded: the failure depended on transactions earlier in its block.
        return TransactionReverted(None, tx_hash=tx_hash)

    # -- deployment records ------------------------------------------------------------------

    @property
    def _deployments_file(self) -> Path:
        return self.state_dir / "deployments" / f"{self.chain_id}.json"

    def _read_deployments(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self._deployments_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ChainError(f"{self._deployments_file} is not valid JSON: {exc}") from exc

    def _record(self, name: str, deployment: Deployment) -> None:
        path = self._deployments_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, _file_lock(path.with_suffix(".lock")):
            records = self._read_deployments()
            records[name] = {**asdict(deployment), "genesis": self.genesis_hash}
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(records, f, indent=2, sort_keys=True)
                    f.write("\n")
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes, where the platform has flock."""
    try:
        import fcntl
    except ImportError:  # Windows: the in-process lock is all there is
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _target(to: Target, data: bytes | str) -> tuple[str | None, bytes]:
    if isinstance(to, ContractFunction):
        # web3 has no public way to get a bound function's calldata without a node round trip.
        return to.address, _as_bytes(to._encode_transaction_data())
    return to, _as_bytes(data)


def _as_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return bytes.fromhex(data.removeprefix("0x"))
    return bytes(data)


def _hex(tx_hash: str | bytes) -> str:
    return tx_hash.lower() if isinstance(tx_hash, str) else Web3.to_hex(tx_hash)


def _revert_bytes(data: Any) -> bytes:
    """Raw revert data from a JSON-RPC error's ``data``, which nodes shape differently."""
    if isinstance(data, Mapping):
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def _bump(fee: int) -> int:
    return max(fee + 1, -(-fee * (1000 + REPLACEMENT_BUMP_PER_MILLE) // 1000))
