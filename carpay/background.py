"""The platform's background work in a process of its own, beside the API's.

The indexer (with its webhook notifications), a relayer per signing key, the webhook
dispatcher and the insurance keeper share nothing with the API but the database and the node,
so they run in a child process: the API's request threads and the workers each get a core
instead of sharing one interpreter lock. The child is started with ``spawn`` (a fresh
interpreter: forking a process that runs threads is unsafe), ignores Ctrl-C (the parent stops
it, so that it finishes its step first) and exits when the parent goes away, even by
``kill -9``: whatever it was doing resumes from the database on the next start.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass

from eth_account import Account

from carpay.chain import Chain
from carpay.ledger import Database, Indexer
from carpay.services.platform import Platform
from carpay.settings import Settings

__all__ = ["Background", "Plan"]

log = logging.getLogger(__name__)

#: How often the child checks that its parent still runs, in seconds.
_PARENT_CHECK_S = 0.5


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


class Background:
    """The background process of ``plan``, started at once; :meth:`stop` ends it."""

    def __init__(self, plan: Plan) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._process = context.Process(
            target=_main, args=(plan, self._stop), name="carpay-workers", daemon=True
        )
        self._process.start()

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout: float = 20.0) -> None:
        """Ask the workers to finish their step and stop; terminate them if they do not."""
        self._stop.set()
        self._process.join(timeout)
        if self._process.is_alive():
            log.warning("the background workers did not stop in %ss: terminating them", timeout)
            self._process.terminate()
            self._process.join(5)


def _main(plan: Plan, stop: multiprocessing.synchronize.Event) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parent = os.getppid()
    db = Database.from_settings(plan.settings)
    threads_stop = threading.Event()
    threads = start_threads(
        db, Chain(plan.rpc_url, state_dir=plan.settings.data_dir), plan, threads_stop
    )
    try:
        while not stop.wait(_PARENT_CHECK_S):
            if os.getppid() != parent:
                return  # the parent died: stop with it (finally below)
    finally:
        threads_stop.set()
        for thread in threads:
            thread.join(10)
        db.dispose()


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
