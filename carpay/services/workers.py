"""The platform's background work: the relayer and the webhook dispatcher, in threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
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
    signer: LocalAccount | Sequence[LocalAccount] | None,
    stop: threading.Event,
    *,
    clock: Callable[[], datetime] = utcnow,
    interval: float = 0.2,
    confirmations: int = 0,
) -> list[threading.Thread]:
    """Start the webhook dispatcher and (with a ``chain``) a relayer per key of ``signer``
    (which takes a transaction as done once ``confirmations`` blocks are on top of it).

    Each runs in a daemon thread until ``stop`` is set; join the returned threads to wait
    for them. One relayer may run per signing key, in one process: it owns that key's nonces.
    """
    dispatcher = WebhookDispatcher(db, clock=clock)

    def dispatch() -> None:
        try:
            dispatcher.run(stop, interval)
        finally:
            dispatcher.close()

    threads = [threading.Thread(target=dispatch, name="carpay-webhooks", daemon=True)]
    signers = [] if signer is None else [signer] if isinstance(signer, LocalAccount) else signer
    unique = {key.address: key for key in signers}  # one relayer per key: it owns its nonces
    for key in unique.values() if chain is not None else ():
        relayer = Relayer(
            db,
            chain,
            key,
            webhooks=Webhooks(clock=clock),
            clock=clock,
            confirmations=confirmations,
        )
        threads.append(
            threading.Thread(
                target=relayer.run,
                args=(stop, interval),
                name=f"carpay-relayer-{key.address[:10]}",
                daemon=True,
            )
        )
    for thread in threads:
        thread.start()
    return threads
