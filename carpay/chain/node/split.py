"""The node on two processes: JSON-RPC in this one, execution in another.

py-evm executes on one core at a time (the interpreter lock), and in one process the HTTP
server, each submitted transaction's signature recovery and the journal's writes took about
half of that core. A ``SplitNode`` (what ``carpay node`` and ``carpay up`` run) keeps them in
the process that serves: it decodes a raw transaction and recovers its sender, asks the engine
process to check and pool it, writes it to the journal and answers; blocks, transactions,
receipts and logs it reads itself from the committed LMDB data (a reader in another process
sees a block once it is committed). The engine process, a :class:`Node` that writes no
journal, runs the pool, the mining and every state read (balances, nonces, code, storage,
calls, estimates).

They talk over a socket pair, in pickled messages. To the engine: the options once, then lists
of ``(id, operation, args)`` (an operation of :data:`OPERATIONS`: what the event loop asked in
one turn goes in one message), or ``None`` to stop. From it: ``("ready", facts)`` or
``("error", message)`` once, then ``("answers", [...])``, the answers to one list in its order,
each ``("ok", id, result)``, ``("rejected", id, message)`` (the pool refused a transaction) or
``("failed", id, text)``; and ``("block", number)`` after every committed block.

The engine exits at once when the socket closes (the serving process is gone, even by
``kill -9``): LMDB keeps the last committed block and the journal what was acknowledged, and
the next start mines the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carpay.chain.node.pool import Rejected
from carpay.chain.node.serving import OPERATIONS, Serving
from carpay.errors import CarpayError, NodeError
from carpay.settings import DEV_MNEMONIC

if TYPE_CHECKING:
    from carpay.chain.node.journal import JournalWriter
    from carpay.chain.node.store import Store

# py-evm (about a second to import) is imported by open(), once the engine process is starting.

__all__ = ["SplitNode"]

log = logging.getLogger("carpay.node")

#: How long the engine process may take to open the data directory.
START_TIMEOUT_S = 60.0
#: How long it may take to finish its work and close when stopped.
STOP_TIMEOUT_S = 30.0


class SplitNode(Serving):
    """The embedded node with its engine in a child process (see the module's text).

    Takes :class:`Node`'s options; ``start()``/``serve_forever()``/``stop()`` as there.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        chain_id: int = 1337,
        host: str = "127.0.0.1",
        port: int = 8545,
        block_time: float | None = None,
        mnemonic: str | None = DEV_MNEMONIC,
        accounts: int = 10,
    ) -> None:
        super().__init__(data_dir, chain_id=chain_id, host=host, port=port, block_time=block_time)
        self._options = {
            "chain_id": chain_id,
            "block_time": block_time,
            "mnemonic": mnemonic,
            "accounts": accounts,
        }
        self.addresses: list[str] = []
        self.store: Store | None = None
        self._journal: JournalWriter | None = None
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._outbox: list[tuple[int, str, tuple]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Any] = []
        self._closing = False
        self._closed = False
        self.engine_failed = False

    # -- lifecycle ----------------------------------------------------------------------

    def open(self) -> None:
        """Start the engine process (it opens the data, replays the journal), then the journal
        writer and the LMDB reader here."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "carpay.chain.node.split", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                # out of the terminal's process group: Ctrl-C reaches the serving process
                # only, which stops the engine (even while the engine is still importing)
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send({"data_dir": str(self.data_dir), **self._options})
        from carpay.chain.node import engine
        from carpay.chain.node.journal import Journal, JournalWriter
        from carpay.chain.node.store import Store

        self._decode = engine.decode_transaction
        self._block_result = engine.BlockResult
        try:
            if not self._conn.poll(START_TIMEOUT_S):
                self._process.kill()
                self._end_process()
                raise NodeError(f"the node's engine did not start in {START_TIMEOUT_S:.0f}s")
            kind, detail = self._conn.recv()
        except (EOFError, OSError):
            kind, detail = "error", "the node's engine process ended as it started"
        if kind != "ready":
            self._end_process()
            raise NodeError(detail)
        self.addresses = detail["addresses"]
        self.store = Store(self.data_dir / "db", readonly=True)
        self._journal = JournalWriter(Journal(self.data_dir / "journal"), self.store.settled)
        threading.Thread(target=self._receive, name="node-engine-link", daemon=True).start()

    def close(self) -> None:
        """Write what is queued to the journal, let the engine finish and close, then close."""
        if self._closed or self._process is None:  # closed, or never opened
            return
        self._closed = True
        self._closing = True
        if self._journal is not None:
            self._journal.close()
        with self._send_lock, contextlib.suppress(OSError):  # an engine gone already
            self._conn.send(None)
        self._end_process()
        if self.store is not None:
            self.store.close()

    def _end_process(self) -> None:
        assert self._process is not None and self._conn is not None
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("the node's engine did not stop in %ss: killing it", STOP_TIMEOUT_S)
            self._process.kill()
            self._process.wait()
        self._conn.close()

    # -- what the JSON-RPC side uses ----------------------------------------------------

    @property
    def head_number(self) -> int:
        assert self.store is not None
        return self.store.get_json(b"head")

    def on_block(self, listener: Any) -> None:
        """Call ``listener(result)`` after every committed block (from a thread of its own);
        the result has the block and its logs."""
        self._listeners.append(listener)

    async def ask(self, name: str, *args: Any) -> Any:
        """Run the engine operation ``name`` in the engine process; its result.

        A transaction to submit is decoded, its sender recovered and its hash taken here:
        what the engine gets is known to be well formed and signed, and it gets it decoded,
        with its hash (py-evm keeps it on the transaction, and pickle with it). Unpickling a
        transfer takes 8 us of the engine's time, decoding it 68 us, hashing it 26 us.
        """
        if name not in OPERATIONS:
            raise KeyError(name)
        if name == "submit":
            (raw,) = args
            try:
                tx = self._decode(raw)
                tx.hash  # noqa: B018 (kept on the transaction)
            except Exception as exc:
                raise Rejected(f"invalid transaction: {exc}") from exc
            args = (raw, tx)
        if self.engine_failed or self._closing:
            raise NodeError("the node's engine is not running")
        self._loop = asyncio.get_running_loop()
        rid = next(self._ids)
        answer = self._loop.create_future()
        self._pending[rid] = answer
        self._outbox.append((rid, name, args))
        if len(self._outbox) == 1:
            self._loop.call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        asked, self._outbox = self._outbox, []
        with self._send_lock, contextlib.suppress(OSError):  # gone: _receive fails them
            try:
                self._conn.send(asked)
            except OSError:
                raise
            except Exception:
                # Something that does not pickle (a transaction type pickle cannot rebuild,
                # say): the engine decodes transactions itself; what still fails is failed.
                log.exception("the engine's operations could not be sent together")
                for rid, name, args in asked:
                    try:
                        self._conn.send([(rid, name, args[:1] if name == "submit" else args)])
                    except OSError:
                        raise
                    except Exception as exc:
                        self._deliver([("failed", rid, f"{type(exc).__name__}: {exc}")])

    async def journaled(self, raw: bytes) -> None:
        """Return once ``raw`` is in the fsynced journal."""
        assert self._journal is not None
        await asyncio.wrap_future(self._journal.append(raw))

    def _receive(self) -> None:
        """Hand the engine's answers to the event loop, all that arrived together at once."""
        conn = self._conn
        assert conn is not None
        while True:
            try:
                messages = [conn.recv()]
                while conn.poll():
                    messages.append(conn.recv())
            except (EOFError, OSError):
                break
            answers = []
            for kind, detail in messages:
                if kind != "block":
                    answers.extend(detail)
                    continue
                try:
                    self._published(detail)
                except Exception:  # this thread must live on: it carries every answer
                    log.exception("publishing block %s failed", detail)
            if answers and self._loop is not None:
                self._loop.call_soon_threadsafe(self._deliver, answers)
        if not self._closing:
            self.engine_failed = True
            log.error("the node's engine process ended: the node stops")
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._fail_pending)
            if self._server is not None:
                self._server.stop()

    def _published(self, number: int) -> None:
        if not self._listeners:
            return
        assert self.store is not None
        block_hash = self.store.get_committed(self.store.index, b"n" + number.to_bytes(8, "big"))
        block = self.store.get_json(b"b" + block_hash)
        logs = self.store.get_json(b"l" + number.to_bytes(8, "big")) or []
        result = self._block_result(number, block, logs=logs)
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:
                log.exception("a block listener failed")

    def _deliver(self, answers: list[tuple[str, int, Any]]) -> None:
        for kind, rid, value in answers:
            answer = self._pending.pop(rid, None)
            if answer is None or answer.done():
                continue
            if kind == "ok":
                answer.set_result(value)
            elif kind == "rejected":
                answer.set_exception(Rejected(value))
            else:
                answer.set_exception(NodeError(f"the node's engine failed: {value}"))

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(NodeError("the node's engine process ended"))


# -- the engine process -------------------------------------------------------------------


def _engine(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the serving process stops it
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from carpay.chain.node.node import Node

    conn = Connection(fd)
    options = conn.recv()
    node = Node(options.pop("data_dir"), port=0, writes_journal=False, **options)
    try:
        node.open()
    except CarpayError as exc:
        conn.send(("error", exc.message))
        return
    except Exception as exc:
        conn.send(("error", f"the node could not open its data: {exc}"))
        return
    lock = threading.Lock()

    def send(message: Any) -> None:
        with lock:
            try:
                conn.send(message)
            except OSError:  # the serving process is gone
                os._exit(1)

    node.on_block(lambda result: send(("block", result.number)))
    send(("ready", {"addresses": node.addresses}))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            # The serving process is gone: stop as a crash would, where a crash is safe.
            os._exit(1)
        if message is None:
            break
        node.run(_answer, node, message, send)
    node.close()
    conn.close()


def _answer(node: Any, asked: list[tuple[int, str, tuple]], send: Any) -> None:
    """Run what was asked in one message, in its order, on the worker; one message back."""
    answers: list[tuple[str, int, Any]] = []
    for rid, name, args in asked:
        try:
            answers.append(("ok", rid, node.operation(name)(*args)))
        except Rejected as exc:
            answers.append(("rejected", rid, str(exc)))
        except Exception as exc:
            log.exception("the engine operation %s failed", name)
            answers.append(("failed", rid, f"{type(exc).__name__}: {exc}"))
    try:
        send(("answers", answers))
    except Exception:  # an answer that does not pickle: every asker still hears back
        log.exception("the engine's answers could not be sent")
        send(("answers", [("failed", rid, "the answer could not be sent") for rid, _, _ in asked]))


if __name__ == "__main__":
    _engine(int(sys.argv[1]))
