"""The merchant's side of checkout: invoices signed, and refunds, captures and voids sent,
with the merchant's own key.

Checkout lets only a payment's merchant refund it and only a hold's merchant capture or void
it, so these transactions are the merchant's own. The platform sends them for a merchant
whose key it holds (:class:`carpay.accounts.Keyring`), through an outbox of that merchant's
(its own relayer sends them, exactly once), and only for the merchant's API owner. Each is
checked against the ledger and the chain before anything is written: a refund never above
what was paid less what was refunded, a capture never above what the hold still holds, and
one change of a payment or a hold in flight at a time (each names the record it changes).
A merchant whose key the platform does not hold sends them from its own wallet; the ledger's
webhooks tell its owner either way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from sqlalchemy.orm import Session

from carpay.accounts.custody import Keyring
from carpay.errors import Conflict, InsufficientFunds, ValidationFailed
from carpay.ledger.models import OutboxIntent, utcnow
from carpay.ledger.tables import LedgerPayment, LedgerRefund
from carpay.services.checkout import ZERO_ADDRESS, CheckoutView, Hold, Invoice
from carpay.services.outbox import Outbox
from carpay.services.participant_keys import ParticipantKeys

__all__ = ["CAPTURE_KIND", "REFUND_KIND", "VOID_KIND", "MerchantCheckout"]

REFUND_KIND, CAPTURE_KIND, VOID_KIND = "refund", "capture", "void"
_HOLD_OPEN = 1


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": field.split("."), "msg": message}])


class MerchantCheckout:
    """Refunds, captures and voids for the merchants whose keys are in ``keyring``."""

    def __init__(
        self,
        view: CheckoutView,
        keyring: Keyring,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.view = view
        self.keys = ParticipantKeys(keyring, chain_id=view.chain_id, clock=clock)
        self._clock = clock

    def create_invoice(
        self,
        session: Session,
        *,
        owner: str,
        merchant: str,
        amount_minor: int,
        token: str,
        expiry: int,
        payer: str = ZERO_ADDRESS,
        invoice_id: str | None = None,
    ) -> tuple[Invoice, str]:
        """An invoice of ``merchant``'s, signed with its key: ``(invoice, signature)``.

        Anyone (or only ``payer``) may pay it once before ``expiry``, directly or gaslessly
        (``POST /v1/payments``). ``invoice_id`` defaults to 32 random bytes.
        """
        invoice = Invoice(
            merchant,
            amount_minor,
            token,
            invoice_id or "0x" + secrets.token_hex(32),
            expiry,
            payer,
        ).checked()
        key = self.keys.key(session, owner, invoice.merchant, "merchant")
        if invoice.expiry <= int(self._clock().timestamp()):
            raise _invalid("expiry", "the expiry must be in the future")
        if not self.view.is_currency(invoice.token):
            raise _invalid("token", "token is not one of the platform's currency tokens")
        payout, _fee, _category, active = self.view.merchant_terms(invoice.merchant)
        if int(payout, 16) == 0 or not active:
            raise Conflict(f"{invoice.merchant} is not an active merchant")
        if self.view.invoice_paid(invoice.merchant, bytes.fromhex(invoice.invoice_id[2:])):
            raise Conflict("an invoice of this id is paid already")
        domain, types, message = invoice.typed_data(self.view)
        signed = key.sign_typed_data(domain, types, message)
        return invoice, "0x" + bytes(signed.signature).hex()

    def refund(
        self,
        session: Session,
        *,
        owner: str,
        invoice: Invoice,
        amount_minor: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Refund ``amount_minor`` of the paid ``invoice`` to its payer, from the merchant."""
        invoice = invoice.checked()
        outbox = self.keys.outbox(session, owner, invoice.merchant, "merchant")
        if amount_minor <= 0:
            raise _invalid("amount_minor", "amount_minor must be positive")
        chain_id = self.view.chain_id
        paid = session.scalars(
            sa.select(LedgerPayment).where(
                LedgerPayment.chain_id == chain_id,
                LedgerPayment.kind == "invoice",
                LedgerPayment.merchant == invoice.merchant.lower(),
                LedgerPayment.reference == invoice.invoice_id,
            )
        ).first()
        if (
            paid is None
            or paid.gross != invoice.amount_minor
            or paid.token != invoice.token.lower()
        ):
            raise Conflict("this invoice is not paid (or its payment is not indexed yet)")
        last = session.scalars(
            sa.select(LedgerRefund.refunded)
            .where(
                LedgerRefund.chain_id == chain_id,
                LedgerRefund.merchant == paid.merchant,
                LedgerRefund.invoice_id == invoice.invoice_id,
            )
            .order_by(LedgerRefund.id.desc())
        ).first()
        refunded = last or 0
        if refunded + amount_minor > paid.gross:
            raise _invalid(
                "amount_minor",
                f"the refund exceeds what is left of the payment ({paid.gross - refunded})",
            )
        if self.view.balance(invoice.token, invoice.merchant) < amount_minor:
            raise InsufficientFunds(
                "the merchant's balance is short of the refund (refunds come from the "
                "merchant's takings; the platform keeps its fee)"
            )
        target = f"invoice:{invoice.merchant}:{invoice.invoice_id}"
        self._one_at_a_time(session, outbox, target)
        payer = to_checksum_address(paid.payer)
        details = {
            "target": target,
            "invoice": asdict(invoice),
            "payer": payer,
            "amount_minor": amount_minor,
            "refunded_before": refunded,
        }
        call = ("refund", invoice.as_tuple(), payer, refunded, amount_minor)
        return self._send(session, outbox, REFUND_KIND, owner, call, details, reference)

    def capture(
        self,
        session: Session,
        *,
        owner: str,
        hold: Hold,
        amount_minor: int,
        final: bool,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Capture ``amount_minor`` of the open ``hold``; ``final`` returns the rest at once."""
        hold, outbox, hold_id, remaining = self._open_hold(session, owner, hold)
        if hold.deadline <= int(self._clock().timestamp()):
            raise Conflict("the hold's deadline has passed: it can only be voided or reclaimed")
        if not 0 < amount_minor <= remaining:
            raise _invalid("amount_minor", f"amount_minor must be from 1 to {remaining}")
        details = {
            "target": f"hold:{hold_id}",
            "hold": asdict(hold),
            "hold_id": hold_id,
            "amount_minor": amount_minor,
            "final": final,
        }
        call = ("capture", hold.as_tuple(), amount_minor, final)
        return self._send(session, outbox, CAPTURE_KIND, owner, call, details, reference)

    def void(
        self, session: Session, *, owner: str, hold: Hold, reference: str | None = None
    ) -> OutboxIntent:
        """Release the whole of the open ``hold`` back to its payer."""
        hold, outbox, hold_id, remaining = self._open_hold(session, owner, hold)
        details = {
            "target": f"hold:{hold_id}",
            "hold": asdict(hold),
            "hold_id": hold_id,
            "released_minor": remaining,
        }
        call = ("void", hold.as_tuple())
        return self._send(session, outbox, VOID_KIND, owner, call, details, reference)

    def _send(
        self,
        session: Session,
        outbox: Outbox,
        kind: str,
        owner: str,
        call: tuple[Any, ...],
        details: dict[str, Any],
        reference: str | None,
    ) -> OutboxIntent:
        """Write checkout's ``call`` (function name, then arguments) to ``outbox``."""
        return outbox.enqueue(
            session,
            kind=kind,
            owner=owner,
            to=self.view.checkout,
            data=self.view.encode(*call),
            details=details,
            reference=reference,
        )

    # -- checks ------------------------------------------------------------------------------

    def _open_hold(self, session: Session, owner: str, hold: Hold) -> tuple[Hold, Outbox, str, int]:
        hold = hold.checked()
        outbox = self.keys.outbox(session, owner, hold.merchant, "merchant")
        hold_id = "0x" + hold.struct_hash().hex()
        state, remaining = self.view.hold_state(bytes.fromhex(hold_id[2:]))
        if state != _HOLD_OPEN:
            raise Conflict("this hold is not open")
        self._one_at_a_time(session, outbox, f"hold:{hold_id}")
        return hold, outbox, hold_id, remaining

    def _one_at_a_time(self, session: Session, outbox: Outbox, target: str) -> None:
        """Refuse a change of ``target`` while another of the merchant's is not yet mined:
        each carries the record it changes (what was refunded, what is held)."""
        in_flight: list[Any] = list(
            session.scalars(
                sa.select(OutboxIntent.details)
                .where(
                    OutboxIntent.sender == outbox.sender,
                    OutboxIntent.kind.in_((REFUND_KIND, CAPTURE_KIND, VOID_KIND)),
                    OutboxIntent.state.in_(("pending", "sent")),
                )
                .with_for_update()
            )
        )
        if any(details.get("target") == target for details in in_flight):
            raise Conflict("another change of this payment or hold is being sent: retry after it")
