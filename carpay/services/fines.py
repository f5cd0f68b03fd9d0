"""Traffic fines: an authority issues a fine against a vehicle, or waives one it issued; the
vehicle's owner pays it.

Sent from the participant's own key (see
:class:`carpay.services.participant_keys.ParticipantKeys`) for its API owner, after checks
against the ledger: the authority an active merchant of the authority category, the vehicle
titled, the terms within what the contract takes, the fine to waive unpaid and the
authority's, the payer the vehicle's owner with the balance to pay. An owner whose key the
platform does not hold pays from their own wallet (``traffic_fines.payFine``).
``fine.issued``, ``fine.paid`` and ``fine.waived`` reach the authority's owner from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from sqlalchemy.orm import Session

from carpay.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from carpay.ledger import queries
from carpay.ledger.models import OutboxIntent
from carpay.ledger.tables import LedgerVehicleRecord
from carpay.services.outbox import checksum
from carpay.services.participant_keys import ParticipantKeys
from carpay.services.platform import require_currency
from carpay.services.vin import validate_vin, vehicle_of

__all__ = ["ISSUE_KIND", "MAX_AMOUNT", "MAX_LATE_FEE", "PAY_KIND", "WAIVE_KIND", "Fines"]

ISSUE_KIND, WAIVE_KIND, PAY_KIND = "fine_issue", "fine_waive", "fine_pay"
#: What ``traffic_fines`` accepts: an amount and a late fee below 2**96 (its packed fields).
MAX_AMOUNT = MAX_LATE_FEE = 2**96 - 1
_ISSUE = function_signature_to_4byte_selector(
    "issueFine(uint256,address,uint256,uint256,uint256,uint16)"
)
_WAIVE = function_signature_to_4byte_selector("waiveFine(uint256)")
_PAY = function_signature_to_4byte_selector("payFine(uint256)")


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [field], "msg": message}])


class Fines:
    """Issues, waives and pays fines on the ``traffic_fines`` contract at ``fines``;
    ``balance(token, account)`` reads a balance from the chain."""

    def __init__(
        self,
        keys: ParticipantKeys,
        fines: str,
        *,
        currencies: frozenset[str],
        balance: Callable[[str, str], int],
        now: Callable[[], int],
    ) -> None:
        self.keys = keys
        self.currencies = currencies
        self._balance = balance
        self.fines = checksum(fines, "fines")
        self._now = now  # unix time

    def issue(
        self,
        session: Session,
        *,
        owner: str,
        authority: str,
        vin: str,
        token: str,
        amount_minor: int,
        late_fee_minor: int,
        due: int,
        reason: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Fine the vehicle ``vin``: ``amount_minor`` of ``token`` by ``due``, then the late fee."""
        vin = validate_vin(vin)
        token = require_currency(token, self.currencies)
        outbox = self.keys.outbox(session, owner, authority, "authority")
        authority = outbox.sender
        if not 0 < amount_minor <= MAX_AMOUNT:
            raise _invalid("amount_minor", f"amount_minor must be from 1 to {MAX_AMOUNT}")
        if not 0 <= late_fee_minor <= MAX_LATE_FEE:
            raise _invalid("late_fee_minor", f"late_fee_minor must be from 0 to {MAX_LATE_FEE}")
        if not self._now() < due < 2**64:
            raise _invalid("due", "the due date must be in the future")
        if not 0 <= reason < 2**16:
            raise _invalid("reason", "reason must be from 0 to 65535")
        self.keys.require_active(session, authority, "authority")
        title, _vehicle = vehicle_of(session, self.keys.chain_id, vin)
        data = _ISSUE + encode(
            ["uint256", "address", "uint256", "uint256", "uint256", "uint16"],
            [title, token, amount_minor, late_fee_minor, due, reason],
        )
        details = {
            "authority": authority,
            "vin": vin,
            "title": str(title),
            "token": token,
            "amount_minor": amount_minor,
            "late_fee_minor": late_fee_minor,
            "due": due,
            "reason": reason,
        }
        return outbox.enqueue(
            session,
            kind=ISSUE_KIND,
            owner=owner,
            to=self.fines,
            data=data,
            details=details,
            reference=reference,
        )

    def waive(
        self,
        session: Session,
        *,
        owner: str,
        authority: str,
        fine_id: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Waive the unpaid fine ``fine_id`` that ``authority`` issued."""
        outbox = self.keys.outbox(session, owner, authority, "authority")
        fine = self._fine(session, fine_id)
        if fine is None:
            raise NotFound(f"no fine {fine_id}")
        if fine["authority"] != outbox.sender.lower():
            raise Conflict(f"fine {fine_id} was issued by another authority")
        if fine["status"] != "unpaid":
            raise Conflict(f"fine {fine_id} is {fine['status']}")
        if outbox.exists(
            session, kind=WAIVE_KIND, states=("pending", "sent", "confirmed"), fine_id=fine_id
        ):
            raise Conflict(f"fine {fine_id} is being waived already")
        return outbox.enqueue(
            session,
            kind=WAIVE_KIND,
            owner=owner,
            to=self.fines,
            data=_WAIVE + fine_id.to_bytes(32, "big"),
            details={"authority": outbox.sender, "fine_id": fine_id},
            reference=reference,
        )

    def pay(
        self,
        session: Session,
        *,
        owner: str,
        payer: str,
        fine_id: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """The vehicle's owner ``payer`` pays the unpaid fine ``fine_id``: an approval of the
        amount with the late fee (what the fine can cost at most; the contract pulls the
        amount alone before the due date), then ``payFine``."""
        outbox = self.keys.outbox(session, owner, payer, "payer")
        fine = self._fine(session, fine_id)
        if fine is None:
            raise NotFound(f"no fine {fine_id}")
        if fine["status"] != "unpaid":
            raise Conflict(f"fine {fine_id} is {fine['status']}")
        if fine["vehicle_owner"] != outbox.sender.lower():
            raise Conflict(f"fine {fine_id} is on a vehicle {outbox.sender} does not own")
        if outbox.exists(session, kind=PAY_KIND, fine_id=fine_id):
            raise Conflict(f"fine {fine_id} is being paid already")
        token = checksum(fine["token"], "token")
        most = fine["amount"] + fine["late_fee"]
        due = fine["amount"] + (fine["late_fee"] if self._now() > fine["due"] else 0)
        if self._balance(token, outbox.sender) < due:
            raise InsufficientFunds(f"the payer's balance is short of the {due} due")
        outbox.approve(
            session,
            owner=owner,
            contract=token,
            spender=self.fines,
            amount_or_id=most,
            purpose=PAY_KIND,
        )
        return outbox.enqueue(
            session,
            kind=PAY_KIND,
            owner=owner,
            to=self.fines,
            data=_PAY + fine_id.to_bytes(32, "big"),
            details={"payer": outbox.sender, "fine_id": fine_id, "token": token, "due_minor": due},
            reference=reference,
        )

    def _fine(self, session: Session, fine_id: int) -> dict[str, Any] | None:
        """The indexed fine ``fine_id``, with its status and its vehicle's owner now, from the
        vehicle's record."""
        r = LedgerVehicleRecord
        title = session.scalar(
            sa.select(r.title).where(
                r.chain_id == self.keys.chain_id,
                r.contract == "traffic_fines",
                r.kind == "FineIssued",
                r.data["fine_id"].as_string() == str(fine_id),
            )
        )
        vehicle = (
            None if title is None else queries.vehicle(session, self.keys.chain_id, int(title))
        )
        if vehicle is None:
            return None
        return next(
            (
                {**f, "vehicle_owner": vehicle["owner"]}
                for f in vehicle["fines"]
                if f["fine_id"] == fine_id
            ),
            None,
        )
