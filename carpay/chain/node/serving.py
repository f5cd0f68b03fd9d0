"""What a node that serves JSON-RPC has, whichever process executes its blocks; light to
import (no py-evm), so that the serving process can start its engine process first."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Self

from carpay.errors import NodeError

__all__ = ["ENGINE_OPERATIONS", "OPERATIONS", "POOL_OPERATIONS", "Serving"]

#: What the JSON-RPC side may ask of the engine (:meth:`Node.ask`): its state reads, and the
#: node's pool.
ENGINE_OPERATIONS = ("account", "call", "code_at", "estimate_gas", "next_base_fee", "storage_at")
POOL_OPERATIONS = ("pending_nonce", "pending_transaction", "submit")
OPERATIONS = frozenset(ENGINE_OPERATIONS + POOL_OPERATIONS)


class Serving:
    """Serving JSON-RPC, whichever process executes the blocks; a subclass has ``open()`` and
    ``close()``."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        chain_id: int,
        host: str,
        port: int,
        block_time: float | None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.chain_id = chain_id
        self.host = host
        self.port = port
        self.block_time = block_time
        self._server: Any = None  # set by server.serve while it serves
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> Self:
        """Open the node and serve JSON-RPC from a background thread; returns when serving."""
        from carpay.chain.node.server import serve

        self.open()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(serve(self, ready))
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="node-rpc", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self.close()
            raise NodeError(f"the node could not serve on {self.host}:{self.port}: {failure[0]}")
        return self

    def serve_forever(self) -> None:
        """Open the node and serve JSON-RPC in this thread until interrupted."""
        from carpay.chain.node.server import serve

        self.open()
        try:
            asyncio.run(serve(self, threading.Event()))
        finally:
            self.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._thread is not None:
            self._thread.join(10)
        self.close()
