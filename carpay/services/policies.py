"""Insurance policies: an insurer offers a policy for a vehicle, and pays claims under it.

Sent from the insurer's own key (see :class:`carpay.services.participant_keys.ParticipantKeys`)
for its API owner, after checks against the ledger: the insurer an active merchant of the
insurer category, the vehicle titled, terms the contract takes; a claim under a policy of the
insurer's that started, once per claim reference (the contract refuses a reference paid
already, so a retried claim pays once). The vehicle's owner accepts an offer from their own
wallet (``insurance.accept``, or a signature relayed), or from the key the platform holds
for them, for its owner, who may also cancel it; the platform's keeper renews policies
as their terms end (:mod:`carpay.services.keeper`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak
from sqlalchemy.orm import Session

from carpay.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from carpay.ledger import queries
from carpay.ledger.models import OutboxIntent
from carpay.services.outbox import checksum
from carpay.services.participant_keys import ParticipantKeys
from carpay.services.platform import require_currency
from carpay.services.vin import validate_vin, vehicle_of

__all__ = [
    "ACCEPT_KIND",
    "CANCEL_KIND",
    "CLAIM_KIND",
    "MAX_PERIOD",
    "MAX_PREMIUM",
    "OFFER_KIND",
    "Policies",
]

OFFER_KIND, CLAIM_KIND = "policy_offer", "claim"
ACCEPT_KIND, CANCEL_KIND = "policy_accept", "policy_cancel"
#: What ``insurance`` accepts: premiums below 2**96, terms and grace periods below 2**32 s.
MAX_PREMIUM, MAX_PERIOD = 2**96 - 1, 2**32 - 1
_OFFER = function_signature_to_4byte_selector(
    "offerPolicy(uint256,address,uint256,uint256,uint256,uint16,uint256)"
)
_CLAIM = function_signature_to_4byte_selector("payClaim(uint256,uint256,bytes32)")
_ACCEPT = function_signature_to_4byte_selector("accept(uint256,uint256)")
_CANCEL = function_signature_to_4byte_selector("cancel(uint256)")
_STARTED = ("active", "lapsed", "cancelled")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [field], "msg": message}])


class Policies:
    """Offers and claims (the insurer's), acceptances and cancellations (the holder's) on the
    ``insurance`` contract at ``insurance``; ``balance(token, account)`` reads a balance from
    the chain."""

    def __init__(
        self,
        keys: ParticipantKeys,
        insurance: str,
        *,
        currencies: frozenset[str],
        balance: Callable[[str, str], int],
        now: Callable[[], int],
    ) -> None:
        self.keys = keys
        self.currencies = currencies
        self._balance = balance
        self.insurance = checksum(insurance, "insurance")
        self._now = now  # unix time

    def offer(
        self,
        session: Session,
        *,
        owner: str,
        insurer: str,
        vin: str,
        token: str,
        premium_minor: int,
        term: int,
        grace: int,
        refund_bps: int,
        expiry: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Offer the owner of ``vin`` a policy: ``premium_minor`` a ``term`` (seconds), renewed
        within ``grace`` of its end; ``refund_bps`` of the unearned premium back on a
        cancellation; open for acceptance until ``expiry``."""
        vin = validate_vin(vin)
        token = require_currency(token, self.currencies)
        outbox = self.keys.outbox(session, owner, insurer, "insurer")
        if not 0 < premium_minor <= MAX_PREMIUM:
            raise _invalid("premium_minor", f"premium_minor must be from 1 to {MAX_PREMIUM}")
        if not 0 < term <= MAX_PERIOD:
            raise _invalid("term", f"term must be from 1 to {MAX_PERIOD} seconds")
        if not 0 < grace <= term:
            raise _invalid("grace", "grace must be from 1 second to the term")
        if not 0 <= refund_bps <= 10_000:
            raise _invalid("refund_bps", "refund_bps must be from 0 to 10000")
        if not self._now() < expiry < 2**64:
            raise _invalid("expiry", "the offer's expiry must be in the future")
        self.keys.require_active(session, outbox.sender, "insurer")
        title, _vehicle = vehicle_of(session, self.keys.chain_id, vin)
        data = _OFFER + encode(
            ["uint256", "address", "uint256", "uint256", "uint256", "uint16", "uint256"],
            [title, token, premium_minor, term, grace, refund_bps, expiry],
        )
        details = {
            "insurer": outbox.sender,
            "vin": vin,
            "title": str(title),
            "token": token,
            "premium_minor": premium_minor,
            "term": term,
            "grace": grace,
            "refund_bps": refund_bps,
            "expiry": expiry,
        }
        return outbox.enqueue(
            session,
            kind=OFFER_KIND,
            owner=owner,
            to=self.insurance,
            data=data,
            details=details,
            reference=reference,
        )

    def pay_claim(
        self,
        session: Session,
        *,
        owner: str,
        insurer: str,
        policy_id: int,
        amount_minor: int,
        claim: str,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Pay ``amount_minor`` to the holder of ``policy_id`` for the claim named ``claim``
        (the insurer's own claim number: each is paid once per policy)."""
        outbox = self.keys.outbox(session, owner, insurer, "insurer")
        if not 0 < amount_minor < 2**256:
            raise _invalid("amount_minor", "amount_minor must be positive")
        if not claim or len(claim) > 100:
            raise _invalid("claim", "claim must be 1 to 100 characters")
        policy = self._policy(session, policy_id)
        if policy["insurer"] != outbox.sender.lower():
            raise Conflict(f"policy {policy_id} is another insurer's")
        if policy["status"] not in _STARTED:
            raise Conflict(f"policy {policy_id} never started")
        claim_hash = keccak(text=claim)
        if outbox.exists(
            session,
            kind=CLAIM_KIND,
            states=("pending", "sent", "confirmed"),
            claim_hash="0x" + claim_hash.hex(),
            policy_id=policy_id,
        ):
            raise Conflict(f"claim {claim!r} under policy {policy_id} is paid or being paid")
        details: dict[str, Any] = {
            "insurer": outbox.sender,
            "policy_id": policy_id,
            "holder": policy["holder"],
            "amount_minor": amount_minor,
            "claim": claim,
            "claim_hash": "0x" + claim_hash.hex(),
        }
        data = _CLAIM + encode(
            ["uint256", "uint256", "bytes32"], [policy_id, amount_minor, claim_hash]
        )
        return outbox.enqueue(
            session,
            kind=CLAIM_KIND,
            owner=owner,
            to=self.insurance,
            data=data,
            details=details,
            reference=reference,
        )

    def accept(
        self,
        session: Session,
        *,
        owner: str,
        holder: str,
        policy_id: int,
        max_premium_minor: int,
        allowance_minor: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """The vehicle's owner ``holder`` accepts the offer ``policy_id``: renewals pull at
        most ``max_premium_minor``, within the ``allowance_minor`` the holder gives insurance
        (the first premium and the renewals it is to cover)."""
        outbox = self.keys.outbox(session, owner, holder, "holder")
        policy = self._policy(session, policy_id)
        if policy["status"] != "offered":
            raise Conflict(f"policy {policy_id} is {policy['status']}")
        vehicle = queries.vehicle(session, self.keys.chain_id, int(policy["title"]))
        if vehicle is None or vehicle["owner"] != outbox.sender.lower():
            raise Conflict(f"policy {policy_id} is for a vehicle {outbox.sender} does not own")
        if not policy["premium"] <= max_premium_minor <= MAX_PREMIUM:
            raise _invalid(
                "max_premium_minor", f"max_premium_minor must be from the premium to {MAX_PREMIUM}"
            )
        if not policy["premium"] <= allowance_minor < 2**256:
            raise _invalid("allowance_minor", "allowance_minor must cover the first premium")
        if outbox.exists(session, kind=ACCEPT_KIND, policy_id=policy_id):
            raise Conflict(f"policy {policy_id} is being accepted already")
        token = checksum(policy["token"], "token")
        if self._balance(token, outbox.sender) < policy["premium"]:
            raise InsufficientFunds("the holder's balance is short of the premium")
        outbox.approve(
            session,
            owner=owner,
            contract=token,
            spender=self.insurance,
            amount_or_id=allowance_minor,
            purpose=ACCEPT_KIND,
        )
        data = _ACCEPT + encode(["uint256", "uint256"], [policy_id, max_premium_minor])
        details = {
            "holder": outbox.sender,
            "policy_id": policy_id,
            "premium_minor": policy["premium"],
            "max_premium_minor": max_premium_minor,
            "allowance_minor": allowance_minor,
        }
        return outbox.enqueue(
            session,
            kind=ACCEPT_KIND,
            owner=owner,
            to=self.insurance,
            data=data,
            details=details,
            reference=reference,
        )

    def cancel(
        self,
        session: Session,
        *,
        owner: str,
        holder: str,
        policy_id: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """The holder ends the active policy ``policy_id`` now, with the refund the insurer's
        rule gives on the unearned premium."""
        outbox = self.keys.outbox(session, owner, holder, "holder")
        policy = self._policy(session, policy_id)
        if policy["status"] != "active":
            raise Conflict(f"policy {policy_id} is {policy['status']}")
        if policy["holder"] != outbox.sender.lower():
            raise Conflict(f"policy {policy_id} is held by another")
        if outbox.exists(session, kind=CANCEL_KIND, policy_id=policy_id):
            raise Conflict(f"policy {policy_id} is being cancelled already")
        return outbox.enqueue(
            session,
            kind=CANCEL_KIND,
            owner=owner,
            to=self.insurance,
            data=_CANCEL + policy_id.to_bytes(32, "big"),
            details={"holder": outbox.sender, "policy_id": policy_id},
            reference=reference,
        )

    def _policy(self, session: Session, policy_id: int) -> dict[str, Any]:
        policy = next(
            (
                p
                for p in queries.policies(session, self.keys.chain_id)
                if p["policy_id"] == policy_id
            ),
            None,
        )
        if policy is None:
            raise NotFound(f"no policy {policy_id}")
        return policy
