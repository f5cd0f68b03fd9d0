"""The keeper: renews insurance policies when their term ends, and lapses the unrenewed.

``insurance.renew`` and ``insurance.lapse`` may be called by anyone; the platform calls them
so that auto-renewal happens without the owner or the insurer doing anything. Each pass
(:meth:`PolicyKeeper.run_once`) reads the indexed active policies and, for each whose term
has ended by the chain's clock, writes one intent to the outbox: ``renew`` within the grace
period, ``lapse`` after it. The relayer sends them (the platform pays the gas). An intent's
reference names the policy and the term it ends, and the outbox keeps references unique, so
a term is renewed at most once however many keepers run; a renewal that fails (the holder's
balance or allowance is short, a higher premium awaits their acceptance) is not tried again
for that term, and the policy is lapsed once its grace period is over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from eth_utils import function_signature_to_4byte_selector
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carpay.chain import Chain
from carpay.ledger import queries
from carpay.ledger.db import Database
from carpay.ledger.models import OutboxIntent
from carpay.services.outbox import Outbox

__all__ = ["OWNER", "PolicyKeeper"]

log = logging.getLogger(__name__)

#: The owner of the keeper's intents (its events go to no merchant's webhooks).
OWNER = "keeper"
_SELECTORS = {
    action: function_signature_to_4byte_selector(f"{action}(uint256)")
    for action in ("renew", "lapse")
}


class PolicyKeeper:
    """Renews and lapses the policies of the insurance contract at ``insurance``."""

    def __init__(self, outbox: Outbox, insurance: str) -> None:
        self.outbox = outbox
        self.insurance = insurance

    def run_once(self, session: Session, now: int) -> list[OutboxIntent]:
        """Write the renewals and lapses due at chain time ``now``; returns the new intents."""
        written = []
        for policy in queries.policies(session, self.outbox.chain_id, status="active"):
            paid_through = policy["paid_through"]
            if now < paid_through:
                continue
            action = "renew" if now < paid_through + policy["grace"] else "lapse"
            intent = self._enqueue(session, action, policy["policy_id"], paid_through)
            if intent is not None:
                written.append(intent)
        return written

    def _enqueue(
        self, session: Session, action: str, policy_id: int, paid_through: int
    ) -> OutboxIntent | None:
        reference = f"{action}:{self.outbox.chain_id}:{self.insurance}:{policy_id}:{paid_through}"
        try:
            with session.begin_nested():
                return self.outbox.enqueue(
                    session,
                    kind=f"policy_{action}",
                    owner=OWNER,
                    to=self.insurance,
                    data=_SELECTORS[action] + policy_id.to_bytes(32, "big"),
                    details={"policy_id": policy_id, "paid_through": paid_through},
                    reference=reference,
                )
        except IntegrityError:
            return None  # written already, by this keeper or another

    def run(
        self,
        db: Database,
        chain: Chain,
        stop: threading.Event,
        interval: float = 1.0,
        now: Callable[[], int] | None = None,
    ) -> None:
        """Keep until ``stop`` is set; ``now`` gives chain time (default: the head's)."""
        clock = now or (lambda: chain.w3.eth.get_block("latest")["timestamp"])
        while not stop.is_set():
            try:
                at = clock()  # asked before the transaction: the node's answer may take a while
                with db.begin() as session:
                    self.run_once(session, at)
            except Exception:
                log.exception("keeper: the pass failed; retrying")
            stop.wait(interval)
