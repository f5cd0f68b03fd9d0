"""The processes beside the API's: the embedded node's, and the background workers'.

The indexer (with its webhook notifications), a relayer per signing key, the webhook
dispatcher and the insurance keeper share nothing with the API but the database and the node,
so they run in a child process (:class:`Background`); ``carpay up`` runs the embedded node in
another (:class:`NodeProcess`). Each gets a core instead of sharing one interpreter lock. A
child is started with ``spawn`` (a fresh interpreter: forking a process that runs threads is
unsafe), ignores Ctrl-C (its parent stops it, so that it finishes its step first) and exits
when its parent goes away, even by ``kill -9``: whatever it was doing resumes on the next
start (the workers' from the database, the node's from its journal).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account

from carpay.chain import Chain
from carpay.errors import CarpayError, NodeError
from carpay.ledger import Database, Indexer
from carpay.services.platform import Platform
from carpay.settings import Settings

__all__ = ["Background", "NodeProcess", "Plan"]

log = logging.getLogger(__name__)

#: How often the child checks that its parent still runs, in seconds.
_PARENT_CHECK_S = 0.5
#: How long the workers' threads have, together, to finish their steps when stopped.
_STOP_BUDGET_S = 8.0


@dataclass(frozen=True)
class Plan:
    """What the background process runs: on ``rpc_url``, for ``platform``, with the signing
    keys ``keys`` (hex; the first is the platform's relayer, which also keeps policies)."""

    settings: Settings
    rpc_url: str
    platform: Platform
    keys: tuple[str, ...]
    interval: float = 0.2
    start_block: int = 0

    def __repr__(self) -> str:  # the keys never reach a log or a traceback
        return f"Plan(rpc_url={self.rpc_url!r}, keys=<{len(self.keys)} keys>)"


class _Child:
    """A spawned child process running ``target(*args, stop, reports)``."""

    name = "carpay-child"

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._reports, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=target, args=(*args, self._stop, child_end), name=self.name, daemon=True
        )
        self._process.start()
        child_end.close()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the child to finish its step and stop; terminate it if it does not."""
        self._stop.set()
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("%s did not stop in %ss: terminating it", self.name, timeout)
            self._process.terminate()
            self._process.join(5)


def _until_stopped(stop: Any) -> None:
    """Wait for ``stop``, or for the parent process to go away."""
    parent = os.getppid()
    while not stop.wait(_PARENT_CHECK_S):
        if os.getppid() != parent:
            return


def _child_setup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


class Background(_Child):
    """The background workers of ``plan``, started at once; :meth:`stop` ends them."""

    name = "carpay-workers"

    def __init__(self, plan: Plan) -> None:
        super().__init__(_work, plan)


def _work(plan: Plan, stop: Any, _reports: Any) -> None:
    _child_setup()
    db = Database.from_settings(plan.settings)
    chain = Chain(plan.rpc_url, state_dir=plan.settings.data_dir)
    threads_stop = threading.Event()
    threads = start_threads(db, chain, plan, threads_stop)
    try:
        _until_stopped(stop)
    finally:
        threads_stop.set()
        # Each finishes its step; all of them within one budget (they are daemon threads: a
        # step still running then ends with the process, and resumes on the next start).
        deadline = time.monotonic() + _STOP_BUDGET_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        db.dispose()


class NodeProcess(_Child):
    """The embedded node (``SplitNode(data_dir, **options)``: its engine in one more process)
    in a child process; returns once it serves, or raises :class:`NodeError` with the reason
    it could not start."""

    name = "carpay-node"

    def __init__(self, data_dir: Path, *, timeout: float = 60.0, **options: Any) -> None:
        super().__init__(_serve_node, data_dir, options)
        if not self._reports.poll(timeout):
            self.stop()
            raise NodeError(f"the embedded node did not start in {timeout:.0f}s")
        try:
            kind, detail = self._reports.recv()
        except EOFError:
            kind, detail = "error", "the embedded node's process ended"
        if kind != "ready":
            self.stop()
            raise NodeError(detail)
        self.url: str = detail

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
        self._reports.close()


def _serve_node(data_dir: Path, options: dict[str, Any], stop: Any, reports: Any) -> None:
    from carpay.chain.node.split import SplitNode

    _child_setup()
    try:
        node = SplitNode(data_dir, **options).start()
    except CarpayError as exc:
        reports.send(("error", exc.message))
        return
    try:
        reports.send(("ready", node.url))
        _until_stopped(stop)
    finally:
        node.stop()


def start_threads(
    db: Database, chain: Chain, plan: Plan, stop: threading.Event
) -> list[threading.Thread]:
    """Start the indexer, the relayers, the dispatcher and the keeper as threads of this
    process; they run until ``stop`` is set."""
    from carpay.services.keeper import PolicyKeeper
    from carpay.services.notifications import ChainNotifier
    from carpay.services.outbox import Outbox
    from carpay.services.webhooks import Webhooks
    from carpay.services.workers import start_workers

    confirmations = plan.settings.final_after
    indexer = Indexer(
        db,
        chain,
        plan.platform.watched(),
        confirmations=confirmations,
        start_block=plan.start_block,
    )
    indexer.add_projection(ChainNotifier(Webhooks()))
    threads = [
        threading.Thread(
            target=indexer.run, args=(stop, plan.interval), name="carpay-indexer", daemon=True
        )
    ]
    threads[0].start()
    signers = [Account.from_key(key) for key in plan.keys]
    threads += start_workers(
        db, chain, signers, stop, interval=plan.interval, confirmations=confirmations
    )
    if plan.platform.insurance:
        keeper = PolicyKeeper(
            Outbox(sender=signers[0].address, chain_id=chain.chain_id), plan.platform.insurance
        )
        threads.append(
            threading.Thread(
                target=keeper.run, args=(db, chain, stop), name="carpay-keeper", daemon=True
            )
        )
        threads[-1].start()
    return threads
