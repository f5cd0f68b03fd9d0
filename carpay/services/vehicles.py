"""Registering a vehicle: a registrar (an OEM, a registration authority) titles it by its VIN.

Sent from the registrar's own key (see :class:`carpay.services.participant_keys.
ParticipantKeys`) for its API owner, after checks: the VIN valid by ISO 3779, the registrar
holding the role by the indexed registry, the VIN not titled nor being titled. The title
(ERC-721, ``uint256(keccak256(vin))``) goes to ``holder``; the vehicle's record is at
``/v1/vehicles/{vin}`` once indexed.
"""

from __future__ import annotations

import sqlalchemy as sa
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from sqlalchemy.orm import Session

from carpay.errors import Conflict, ValidationFailed
from carpay.ledger import queries
from carpay.ledger.models import OutboxIntent
from carpay.ledger.tables import LedgerEvent
from carpay.services.outbox import checksum
from carpay.services.participant_keys import ParticipantKeys
from carpay.services.vin import title_of, validate_vin

__all__ = ["TITLE_KIND", "Vehicles"]

TITLE_KIND = "title"
_MINT = function_signature_to_4byte_selector("mintTitle(address,string)")
_ZERO = "0x" + "00" * 20


class Vehicles:
    """Titles vehicles on the ``vehicle_registry`` contract at ``registry``."""

    def __init__(self, keys: ParticipantKeys, registry: str) -> None:
        self.keys = keys
        self.registry = checksum(registry, "registry")

    def register(
        self,
        session: Session,
        *,
        owner: str,
        registrar: str,
        vin: str,
        holder: str,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Title the vehicle ``vin`` to ``holder``, from ``registrar``."""
        vin = validate_vin(vin)
        holder = checksum(holder, "holder")
        if holder == _ZERO:
            raise ValidationFailed(
                "holder must not be the zero address", errors=[{"loc": ["holder"], "msg": "zero"}]
            )
        outbox = self.keys.outbox(session, owner, registrar, "registrar")
        if not self._is_registrar(session, outbox.sender):
            raise Conflict(f"{outbox.sender} is not a registrar of titles")
        title = title_of(vin)
        if queries.vehicle(session, self.keys.chain_id, title) is not None:
            raise Conflict(f"{vin} is titled already")
        if outbox.exists(
            session, kind=TITLE_KIND, states=("pending", "sent", "confirmed"), vin=vin
        ):
            raise Conflict(f"{vin} is being titled already")
        return outbox.enqueue(
            session,
            kind=TITLE_KIND,
            owner=owner,
            to=self.registry,
            data=_MINT + encode(["address", "string"], [holder, vin]),
            details={"registrar": outbox.sender, "vin": vin, "title": str(title), "holder": holder},
            reference=reference,
        )

    def _is_registrar(self, session: Session, account: str) -> bool:
        """Whether the registry's last word on ``account`` (as indexed) granted the role."""
        last = session.scalars(
            sa.select(LedgerEvent.args)
            .where(
                LedgerEvent.chain_id == self.keys.chain_id,
                LedgerEvent.contract == "vehicle_registry",
                LedgerEvent.event == "RegistrarChanged",
                LedgerEvent.args["account"].as_string() == account.lower(),
            )
            .order_by(LedgerEvent.block_number.desc(), LedgerEvent.log_index.desc())
        ).first()
        return bool(last and last["enabled"])
