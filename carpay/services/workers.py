"""The platform's background work: the relayer and the webhook dispatcher, in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from eth_account.signers.local import LocalAccount

from carpay.chain import Chain
from carpay.ledger.db import Database
from carpay.ledger.models import utcnow
from carpay.services.relayer import Relayer
from carpay.services.webhooks import WebhookDispatcher, Webhooks

__all__ = ["start_workers"]


def start_workers(
    db: Database,
    chain: Chain | None,
    signer: LocalAccount | None,
    stop: threading.Event,
    *,
    clock: Callable[[], datetime] = utcnow,
    interval: float = 0.2,
) -> list[threading.Thread]:
    """Start the webhook dispatcher and (with a ``chain`` and ``signer``) the relayer.

    Each runs in a daemon thread until ``stop`` is set; join the returned threads to wait
    for them. One relayer may run per signing key: start this once per key, in one process.
    """
    dispatcher = WebhookDispatcher(db, clock=clock)

    def dispatch() -> None:
        try:
            dispatcher.run(stop, interval)
        finally:
            dispatcher.close()

    threads = [threading.Thread(target=dispatch, name="carpay-webhooks", daemon=True)]
    if chain is not None and signer is not None:
        relayer = Relayer(db, chain, signer, webhooks=Webhooks(clock=clock), clock=clock)
        threads.append(
            threading.Thread(
                target=relayer.run, args=(stop, interval), name="carpay-relayer", daemon=True
            )
        )
    for thread in threads:
        thread.start()
    return threads
