"""Selling a vehicle by escrow: the seller opens it, the buyer pays in, the seller deposits
the title, and the sale settles in one transaction (``vehicle_escrow``).

Each step is sent from the key of the party that takes it (see
:class:`carpay.services.participant_keys.ParticipantKeys`), for that party's API owner, after
checks against the ledger: the seller the vehicle's owner, the escrow open, the side not in
yet, the deadline ahead, the buyer's balance enough. Paying in and depositing the title are
each an approval and the call that uses it, sent in that order from the party's key (the
relayer sends the call once the approval is mined). A lien needs its lender's signed payoff
statement with the title; settlement pays the lender first, the platform its fee, the seller
the rest, and gives the buyer the title. After the deadline with a side missing, either party
reclaims: each takes back what they put in.
"""

from __future__ import annotations

from collections.abc import Callable

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from sqlalchemy.orm import Session

from carpay.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from carpay.ledger import queries
from carpay.ledger.models import OutboxIntent
from carpay.services.outbox import Outbox, checksum
from carpay.services.participant_keys import ParticipantKeys
from carpay.services.platform import require_currency
from carpay.services.vin import validate_vin, vehicle_of

__all__ = ["ACTIONS", "MAX_PRICE", "Escrows"]

#: What ``vehicle_escrow`` accepts: a price below 2**96, a deadline below 2**48.
MAX_PRICE, MAX_DEADLINE = 2**96 - 1, 2**48 - 1
_CREATE = function_signature_to_4byte_selector(
    "createEscrow(uint256,address,address,uint256,uint256,address)"
)
_FUND = function_signature_to_4byte_selector("fund(uint256)")
_DEPOSIT = function_signature_to_4byte_selector("depositTitle(uint256,uint256,uint256,bytes)")
#: The calls either party may make on an open escrow.
ACTIONS = ("settle", "dispute", "cancel", "reclaim")
#: The parties, either of whom may take each of them.
PARTIES = ("buyer", "seller")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [field], "msg": message}])


class Escrows:
    """Vehicle sales on the ``vehicle_escrow`` contract at ``escrow``, for titles of the
    registry at ``registry``. ``balance(token, account)`` reads a balance from the chain."""

    def __init__(
        self,
        keys: ParticipantKeys,
        escrow: str,
        registry: str,
        *,
        currencies: frozenset[str],
        balance: Callable[[str, str], int],
        now: Callable[[], int],
    ) -> None:
        self.keys = keys
        self.escrow = checksum(escrow, "escrow")
        self.registry = checksum(registry, "registry")
        self.currencies = currencies
        self._balance = balance
        self._now = now  # unix time

    def open(
        self,
        session: Session,
        *,
        owner: str,
        seller: str,
        vin: str,
        buyer: str,
        token: str,
        price_minor: int,
        deadline: int,
        arbiter: str,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Offer the vehicle ``vin`` to ``buyer`` for ``price_minor`` of ``token``, both sides
        in by ``deadline``; ``arbiter`` may resolve a dispute either way."""
        vin = validate_vin(vin)
        token = require_currency(token, self.currencies)
        outbox = self.keys.outbox(session, owner, seller, "seller")
        seller = outbox.sender
        buyer, arbiter = checksum(buyer, "buyer"), checksum(arbiter, "arbiter")
        if buyer == seller:
            raise _invalid("buyer", "the buyer must not be the seller")
        if arbiter in (seller, buyer):
            raise _invalid("arbiter", "the arbiter must be neither buyer nor seller")
        if not 0 < price_minor <= MAX_PRICE:
            raise _invalid("price_minor", f"price_minor must be from 1 to {MAX_PRICE}")
        if not self._now() < deadline <= MAX_DEADLINE:
            raise _invalid("deadline", "the deadline must be in the future")
        title, _vehicle = vehicle_of(session, self.keys.chain_id, vin, owner=seller, role="seller")
        data = _CREATE + encode(
            ["uint256", "address", "address", "uint256", "uint256", "address"],
            [title, buyer, token, price_minor, deadline, arbiter],
        )
        details = {
            "seller": seller,
            "vin": vin,
            "title": str(title),
            "buyer": buyer,
            "token": token,
            "price_minor": price_minor,
            "deadline": deadline,
            "arbiter": arbiter,
        }
        return outbox.enqueue(
            session,
            kind="escrow_open",
            owner=owner,
            to=self.escrow,
            data=data,
            details=details,
            reference=reference,
        )

    def fund(
        self, session: Session, *, owner: str, escrow_id: int, reference: str | None = None
    ) -> OutboxIntent:
        """The buyer pays the price into the escrow (an approval of exactly the price, then
        ``fund``)."""
        escrow = self._open(session, escrow_id)
        outbox = self._party(session, owner, escrow, "buyer")
        if escrow["funded"] or outbox.exists(session, kind="escrow_fund", escrow_id=escrow_id):
            raise Conflict(f"escrow {escrow_id} is paid in already")
        price, token = escrow["price"], checksum(escrow["token"], "token")
        if self._balance(token, outbox.sender) < price:
            raise InsufficientFunds(f"the buyer's balance is short of the price of {price}")
        outbox.approve(
            session,
            owner=owner,
            contract=token,
            spender=self.escrow,
            amount_or_id=price,
            purpose="escrow_fund",
        )
        return outbox.enqueue(
            session,
            kind="escrow_fund",
            owner=owner,
            to=self.escrow,
            data=_FUND + escrow_id.to_bytes(32, "big"),
            details={"escrow_id": escrow_id, "buyer": outbox.sender, "amount_minor": price},
            reference=reference,
        )

    def deposit_title(
        self,
        session: Session,
        *,
        owner: str,
        escrow_id: int,
        payoff_minor: int = 0,
        valid_before: int = 0,
        lender_signature: bytes = b"",
        reference: str | None = None,
    ) -> OutboxIntent:
        """The seller moves the title into the escrow (an approval of the title, then
        ``depositTitle``); a liened title with its lender's signed payoff statement."""
        escrow = self._open(session, escrow_id)
        outbox = self._party(session, owner, escrow, "seller")
        if escrow["deposited"] or outbox.exists(
            session, kind="escrow_deposit", escrow_id=escrow_id
        ):
            raise Conflict(f"escrow {escrow_id} holds the title already")
        title = int(escrow["title"])
        vehicle = queries.vehicle(session, self.keys.chain_id, title)
        if vehicle is None or vehicle["owner"] != outbox.sender.lower():
            raise Conflict(f"the seller no longer owns the title of escrow {escrow_id}")
        if vehicle["lien"] is not None:
            if not lender_signature:
                raise _invalid(
                    "lender_signature",
                    "the title has a lien: its lender's signed payoff statement is needed",
                )
            if not self._now() <= valid_before < 2**256:
                raise _invalid("valid_before", "the payoff statement has expired")
            if not 0 <= payoff_minor <= escrow["price"]:
                raise Conflict(f"the payoff {payoff_minor} is above the price")
        outbox.approve(
            session,
            owner=owner,
            contract=self.registry,
            spender=self.escrow,
            amount_or_id=title,
            purpose="escrow_deposit",
        )
        data = _DEPOSIT + encode(
            ["uint256", "uint256", "uint256", "bytes"],
            [escrow_id, payoff_minor, valid_before, lender_signature],
        )
        details = {"escrow_id": escrow_id, "seller": outbox.sender, "title": str(title)}
        if vehicle["lien"] is not None:
            details |= {"lender": vehicle["lien"]["lender"], "payoff_minor": payoff_minor}
        return outbox.enqueue(
            session,
            kind="escrow_deposit",
            owner=owner,
            to=self.escrow,
            data=data,
            details=details,
            reference=reference,
        )

    def act(
        self,
        session: Session,
        *,
        owner: str,
        escrow_id: int,
        action: str,
        party: str,
        reference: str | None = None,
    ) -> OutboxIntent:
        """``settle``, ``dispute``, ``cancel`` or ``reclaim`` the escrow as its ``party``
        (``buyer`` or ``seller``); the contract decides what the escrow's state allows, and
        the relayer's estimate refuses the rest with the contract's reason, sending nothing."""
        if action not in ACTIONS:
            raise _invalid("action", f"action must be one of {', '.join(ACTIONS)}")
        if party not in PARTIES:
            raise _invalid("party", f"party must be one of {', '.join(PARTIES)}")
        escrow = self._open(session, escrow_id)
        outbox = self._party(session, owner, escrow, party)
        if action == "reclaim" and self._now() <= escrow["deadline"]:
            raise Conflict(f"escrow {escrow_id} may be reclaimed only after its deadline")
        if action in ("settle", "dispute") and not (escrow["funded"] and escrow["deposited"]):
            raise Conflict(f"escrow {escrow_id} is waiting for the price or the title")
        if outbox.exists(session, kind=f"escrow_{action}", escrow_id=escrow_id):
            raise Conflict(f"escrow {escrow_id}: a {action} is in flight already")
        selector = function_signature_to_4byte_selector(f"{action}(uint256)")
        return outbox.enqueue(
            session,
            kind=f"escrow_{action}",
            owner=owner,
            to=self.escrow,
            data=selector + escrow_id.to_bytes(32, "big"),
            details={"escrow_id": escrow_id, party: outbox.sender},
            reference=reference,
        )

    def get(self, session: Session, escrow_id: int) -> dict:
        """The indexed escrow ``escrow_id``."""
        escrow = queries.escrow(session, self.keys.chain_id, escrow_id)
        if escrow is None:
            raise NotFound(f"no escrow {escrow_id}")
        return escrow

    def _open(self, session: Session, escrow_id: int) -> dict:
        escrow = self.get(session, escrow_id)
        if escrow["state"] in ("settled", "unwound"):
            raise Conflict(f"escrow {escrow_id} is {escrow['state']}")
        return escrow

    def _party(self, session: Session, owner: str, escrow: dict, party: str) -> Outbox:
        """The outbox of the escrow's ``party``, if ``owner`` speaks for it."""
        return self.keys.outbox(session, owner, escrow[party], party)
