"""Gasless checkout: pay a merchant's signed invoice, or place a hold, for a payer who signed.

The payer signs an EIP-3009 ``ReceiveWithAuthorization`` whose nonce is the invoice's (or the
hold's) EIP-712 struct hash, so the signature pays exactly that invoice; the platform's
relayer submits it through the outbox and pays the gas. Everything that can be checked before
anything is sent is checked here, so a bad request is refused with a clear error and changes
nothing: the amounts, the deadlines, both signatures, the merchant's standing and whether the
invoice was paid already.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import (
    collapse_if_tuple,
    function_abi_to_4byte_selector,
    keccak,
    to_checksum_address,
)
from sqlalchemy.orm import Session

from carpay.chain import gas_with_headroom
from carpay.errors import (
    ChainError,
    Conflict,
    InsufficientFunds,
    TransactionReverted,
    ValidationFailed,
)
from carpay.ledger.models import OutboxIntent, utcnow
from carpay.services.outbox import Outbox, checksum
from carpay.services.platform import currency_tokens

__all__ = [
    "INVOICE_FIELDS",
    "RECEIVE_FIELDS",
    "CheckoutPayments",
    "CheckoutView",
    "Hold",
    "Invoice",
    "ReceiveAuthorization",
]

ZERO_ADDRESS = "0x" + "00" * 20
INVOICE_TYPE = (
    "Invoice(address merchant,uint256 amount,address token,bytes32 invoiceId,uint256 expiry,"
    "address payer)"
)
HOLD_TYPE = (
    "Hold(address payer,address merchant,address token,uint256 amount,uint256 deadline,"
    "bytes32 salt)"
)
#: EIP-712 fields of checkout's Invoice and of EIP-3009's ReceiveWithAuthorization.
INVOICE_FIELDS = [
    {"name": "merchant", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "token", "type": "address"},
    {"name": "invoiceId", "type": "bytes32"},
    {"name": "expiry", "type": "uint256"},
    {"name": "payer", "type": "address"},
]
RECEIVE_FIELDS = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
PAYMENT_KIND = "payment"
#: The gas a payment or hold is sent with when its check succeeds with it: about twice what
#: a payment takes (125,174), with room for the fresh storage slots a first payment to a
#: payout can write. Unused gas is not paid for.
CHECKOUT_GAS = 300_000
HOLD_KIND = "hold"


def _bytes32(value: str, field: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValidationFailed(
            f"{field} must be 32 bytes of hex", errors=[{"loc": [field], "msg": "not bytes32"}]
        )
    return raw


def _amount(value: int, field: str) -> int:
    if not 0 < value < 2**256:
        raise ValidationFailed(
            f"{field} must be positive", errors=[{"loc": [field], "msg": "out of range"}]
        )
    return value


@dataclass(frozen=True)
class Invoice:
    """An invoice as the merchant signed it (``payer`` zero: anyone may pay it)."""

    merchant: str
    amount_minor: int
    token: str
    invoice_id: str
    expiry: int
    payer: str = ZERO_ADDRESS

    def checked(self) -> Invoice:
        return Invoice(
            checksum(self.merchant, "invoice.merchant"),
            _amount(self.amount_minor, "invoice.amount_minor"),
            checksum(self.token, "invoice.token"),
            "0x" + _bytes32(self.invoice_id, "invoice.invoice_id").hex(),
            self.expiry,
            checksum(self.payer, "invoice.payer"),
        )

    def as_tuple(self) -> tuple:
        return (
            self.merchant,
            self.amount_minor,
            self.token,
            bytes.fromhex(self.invoice_id[2:]),
            self.expiry,
            self.payer,
        )

    def typed_data(self, view: CheckoutView) -> tuple[dict[str, Any], dict[str, Any], dict]:
        """``(domain, types, message)``: what the merchant signs (EIP-712, checkout's domain)."""
        domain = {
            "name": "carpay checkout",
            "version": "1",
            "chainId": view.chain_id,
            "verifyingContract": view.checkout,
        }
        fields = ("merchant", "amount", "token", "invoiceId", "expiry", "payer")
        message = dict(zip(fields, self.as_tuple(), strict=True))
        return domain, {"Invoice": INVOICE_FIELDS}, message

    def struct_hash(self) -> bytes:
        types = ["bytes32", "address", "uint256", "address", "bytes32", "uint256", "address"]
        return keccak(abi_encode(types, [keccak(text=INVOICE_TYPE), *self.as_tuple()]))


@dataclass(frozen=True)
class Hold:
    """A hold of up to ``amount_minor`` that ``payer`` places on ``merchant`` until ``deadline``."""

    payer: str
    merchant: str
    token: str
    amount_minor: int
    deadline: int
    salt: str

    def checked(self) -> Hold:
        return Hold(
            checksum(self.payer, "hold.payer"),
            checksum(self.merchant, "hold.merchant"),
            checksum(self.token, "hold.token"),
            _amount(self.amount_minor, "hold.amount_minor"),
            self.deadline,
            "0x" + _bytes32(self.salt, "hold.salt").hex(),
        )

    def as_tuple(self) -> tuple:
        salt = bytes.fromhex(self.salt[2:])
        return (self.payer, self.merchant, self.token, self.amount_minor, self.deadline, salt)

    def struct_hash(self) -> bytes:
        types = ["bytes32", "address", "address", "address", "uint256", "uint256", "bytes32"]
        return keccak(abi_encode(types, [keccak(text=HOLD_TYPE), *self.as_tuple()]))


@dataclass(frozen=True)
class ReceiveAuthorization:
    """The payer's EIP-3009 ``ReceiveWithAuthorization`` signature, for checkout to pull."""

    valid_after: int
    valid_before: int
    v: int
    r: str
    s: str

    def args(self) -> tuple:
        r, s = _bytes32(self.r, "authorization.r"), _bytes32(self.s, "authorization.s")
        return (self.valid_after, self.valid_before, self.v, r, s)


class CheckoutView(Protocol):
    """What the checkout service reads from the chain before it promises anything."""

    checkout: str
    chain_id: int

    def token_domain(self, token: str) -> dict[str, Any]:
        """The token's EIP-712 domain (ERC-5267)."""

    def merchant_terms(self, merchant: str) -> tuple[str, int, int, bool]:
        """``(payout, fee_bps, category, active)``; payout zero if not registered."""

    def invoice_paid(self, merchant: str, invoice_id: bytes) -> bool: ...

    def payment_state(
        self, merchant: str, invoice_id: bytes, token: str, payer: str
    ) -> tuple[tuple[str, int, int, bool], bool, int | None]:
        """``(merchant_terms(merchant), invoice_paid(merchant, invoice_id), balance(token,
        payer))`` at once (the balance None if ``token`` has none to read)."""

    def estimate(self, sender: str, data: bytes) -> int:
        """The gas of checkout's call ``data`` sent by ``sender`` now; a revert raises
        :class:`TransactionReverted`."""

    def runs_with(self, sender: str, data: bytes, gas: int) -> bool:
        """Whether checkout's call ``data`` sent by ``sender`` with ``gas`` succeeds now."""

    def hold_exists(self, hold_id: bytes) -> bool: ...

    def hold_state(self, hold_id: bytes) -> tuple[int, int]:
        """``(state, remaining)``: state 0 never placed, 1 open, 2 closed."""

    def balance(self, token: str, account: str) -> int:
        """``account``'s balance of ``token`` now."""

    def is_currency(self, token: str) -> bool:
        """Whether ``token`` is one of the platform's currency tokens."""

    def encode(self, function: str, *args: Any) -> bytes:
        """Calldata of checkout's ``function(*args)``."""


class ChainCheckoutView:
    """A :class:`CheckoutView` over :class:`carpay.chain.Chain` and the recorded deployment."""

    def __init__(self, chain: Any, checkout: str | None = None) -> None:
        self._chain = chain
        self._contract = chain.contract("checkout", checkout)
        self.checkout = self._contract.address
        self.chain_id = chain.chain_id
        self._registry = chain.contract(
            "merchant_registry", self._contract.functions.registry().call()
        )
        self._domains: dict[str, dict[str, Any]] = {}
        self._encoders: dict[str, tuple[bytes, list[str]]] = {}

    def token_domain(self, token: str) -> dict[str, Any]:
        if token not in self._domains:
            fields = self._chain.contract("currency_token", token).functions.eip712Domain().call()
            self._domains[token] = dict(
                zip(("name", "version", "chainId", "verifyingContract"), fields[1:5], strict=True)
            )
        return self._domains[token]

    def _call(self, contract: Any, function: str, *args: Any) -> Any:
        # A plain eth_call: web3's contract call asks the node its chain id every time.
        return self._chain.read_all([(contract, function, args)])[0]

    def merchant_terms(self, merchant: str) -> tuple[str, int, int, bool]:
        payout, fee_bps, category, active = self._call(self._registry, "merchantTerms", merchant)
        return to_checksum_address(payout), fee_bps, category, active

    def invoice_paid(self, merchant: str, invoice_id: bytes) -> bool:
        return self._call(self._contract, "payments", merchant, invoice_id) != b"\0" * 32

    def payment_state(
        self, merchant: str, invoice_id: bytes, token: str, payer: str
    ) -> tuple[tuple[str, int, int, bool], bool, int | None]:
        # One JSON-RPC batch: a payment's reads wait for the node once, not three times.
        answers = self._chain.read_all(
            [
                (self._registry, "merchantTerms", (merchant,)),
                (self._contract, "payments", (merchant, invoice_id)),
                (self._chain.contract("currency_token", token), "balanceOf", (payer,)),
            ],
            return_errors=True,
        )
        for answer in answers[:2]:
            if isinstance(answer, Exception):
                raise answer
        (payout, fee_bps, category, active), record, balance = answers
        terms = (to_checksum_address(payout), fee_bps, category, active)
        # A token without a readable balance is left to its authorization's check.
        return terms, record != b"\0" * 32, None if isinstance(balance, Exception) else balance

    def estimate(self, sender: str, data: bytes) -> int:
        return self._chain.estimate_gas(sender, self.checkout, data)

    def runs_with(self, sender: str, data: bytes, gas: int) -> bool:
        try:  # on "pending", as the estimate is made (see Chain.estimate_gas)
            self._chain.call(self.checkout, data, sender=sender, block="pending", gas=gas)
        except ChainError:  # refused, out of gas, or no answer: the estimate tells which
            return False
        return True

    def hold_exists(self, hold_id: bytes) -> bool:
        return self.hold_state(hold_id)[0] != 0

    def hold_state(self, hold_id: bytes) -> tuple[int, int]:
        state, remaining = self._call(self._contract, "holdState", hold_id)
        return state, remaining

    def balance(self, token: str, account: str) -> int:
        return self._call(self._chain.contract("currency_token", token), "balanceOf", account)

    def is_currency(self, token: str) -> bool:
        return to_checksum_address(token) in currency_tokens(self._chain)

    def encode(self, function: str, *args: Any) -> bytes:
        # eth_abi with the function's types, read once: web3's encode_abi normalizes every
        # argument through its formatters first, a seventh of a payment request's time.
        if function not in self._encoders:
            abi = self._contract.get_function_by_name(function).abi
            types = [collapse_if_tuple(dict(i)) for i in abi["inputs"]]
            self._encoders[function] = (function_abi_to_4byte_selector(abi), types)
        selector, types = self._encoders[function]
        return selector + abi_encode(types, list(args))


@dataclass(frozen=True)
class Checked:
    """A payment or hold that passed every check but the database's: the outbox intent it
    becomes (``conflict`` the refusal if one for ``reference`` is in flight already)."""

    kind: str
    reference: str
    data: bytes
    details: dict[str, Any]
    conflict: str
    #: The gas to send it with, as the check found it (None: the relayer estimates it).
    gas_limit: int | None = None


class CheckoutPayments:
    """Gasless invoice payments and holds, written to ``outbox`` for the relayer to send."""

    def __init__(
        self, outbox: Outbox, view: CheckoutView, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.outbox = outbox
        self.view = view
        self._clock = clock

    def pay_invoice(
        self,
        session: Session,
        *,
        owner: str,
        invoice: Invoice,
        merchant_signature: str,
        payer: str,
        authorization: ReceiveAuthorization,
    ) -> OutboxIntent:
        """Promise to pay ``invoice`` from ``payer``; refused, with nothing written, if the
        invoice, its signature, the merchant or the payer's authorization is not good."""
        checked = self.check_payment(
            invoice=invoice,
            merchant_signature=merchant_signature,
            payer=payer,
            authorization=authorization,
        )
        return self.enqueue(session, owner, checked)

    def place_hold(
        self, session: Session, *, owner: str, hold: Hold, authorization: ReceiveAuthorization
    ) -> OutboxIntent:
        """Promise to place ``hold`` for its payer, who signed ``authorization``."""
        return self.enqueue(session, owner, self.check_hold(hold=hold, authorization=authorization))

    def check_payment(
        self,
        *,
        invoice: Invoice,
        merchant_signature: str,
        payer: str,
        authorization: ReceiveAuthorization,
    ) -> Checked:
        """:meth:`pay_invoice`'s checks of the signatures and against the chain, which need no
        database: done before its transaction, they hold no lock while they wait for the node."""
        invoice = invoice.checked()
        payer = checksum(payer, "payer")
        now = int(self._clock().timestamp())
        if invoice.expiry <= now:
            raise ValidationFailed("the invoice has expired", errors=[_err("invoice.expiry")])
        if invoice.payer not in (ZERO_ADDRESS, payer):
            raise ValidationFailed(
                "the invoice names another payer", errors=[_err("payer", "not the invoice's")]
            )
        signature = _signature(merchant_signature)
        struct_hash = invoice.struct_hash()
        if _invoice_signer(invoice, struct_hash, self.view, signature) != invoice.merchant:
            raise ValidationFailed(
                "the invoice is not signed by its merchant",
                errors=[_err("merchant_signature", "not the merchant's")],
            )
        reference = "0x" + struct_hash.hex()
        data = self.view.encode(
            "payInvoiceWithAuthorization",
            invoice.as_tuple(),
            signature,
            payer,
            *authorization.args(),
        )
        details = {"invoice": asdict(invoice), "payer": payer, "invoice_hash": reference}
        conflict = "this invoice is paid or being paid already"
        gas = self._checked_gas(
            data,
            lambda: self._refuse_payment(invoice, payer, struct_hash, authorization, now, conflict),
        )
        return Checked(PAYMENT_KIND, reference, data, details, conflict, gas)

    def _checked_gas(self, data: bytes, refuse: Callable[[], None]) -> int:
        """The gas for the relayer to send checkout's call ``data`` with, checked now.

        The call runs as the relayer will send it, with CHECKOUT_GAS: if it succeeds, the
        contracts accept everything the service's checks would look at (the merchant, the
        invoice or hold, the payer's authorization and balance), and that gas is enough, so
        the relayer sends it with that gas and estimates nothing. One EVM run, where an
        estimate takes two. If it fails, it is estimated (an ERC-1271 merchant's wallet may
        need more gas); if the contracts refuse it, ``refuse()`` raises what the checks name,
        else the contracts' reason is raised (:class:`TransactionReverted`; on a node whose
        pending state is ahead of its latest, that may be a payment still pending).
        """
        if self.view.runs_with(self.outbox.sender, data, CHECKOUT_GAS):
            return CHECKOUT_GAS
        try:
            return gas_with_headroom(self.view.estimate(self.outbox.sender, data))
        except TransactionReverted:
            refuse()
            raise

    def _refuse_hold(
        self,
        hold: Hold,
        hold_id: bytes,
        authorization: ReceiveAuthorization,
        now: int,
        conflict: str,
    ) -> None:
        """Raise what is wrong with a hold the contracts refuse, if the checks name it."""
        self._check_merchant(hold.merchant)
        self._check_authorization(
            hold.payer, hold.token, hold.amount_minor, hold_id, authorization, now
        )
        if self.view.hold_exists(hold_id):
            raise Conflict(conflict)
        try:
            balance = self.view.balance(hold.token, hold.payer)
        except ChainError:  # a token without a readable balance: its authorization decides
            balance = None
        if balance is not None and balance < hold.amount_minor:
            raise InsufficientFunds("the payer's balance is short of the hold's amount")

    def _refuse_payment(
        self,
        invoice: Invoice,
        payer: str,
        struct_hash: bytes,
        authorization: ReceiveAuthorization,
        now: int,
        conflict: str,
    ) -> None:
        """Raise what is wrong with a payment the contracts refuse, if the checks name it."""
        terms, paid, balance = self.view.payment_state(
            invoice.merchant, bytes.fromhex(invoice.invoice_id[2:]), invoice.token, payer
        )
        self._check_merchant(invoice.merchant, terms)
        self._check_authorization(
            payer, invoice.token, invoice.amount_minor, struct_hash, authorization, now
        )
        if paid:
            raise Conflict(conflict)
        if balance is not None and balance < invoice.amount_minor:
            raise InsufficientFunds("the payer's balance is short of the invoice's amount")

    def check_hold(self, *, hold: Hold, authorization: ReceiveAuthorization) -> Checked:
        """:meth:`place_hold`'s checks that need no database (see :meth:`check_payment`)."""
        hold = hold.checked()
        now = int(self._clock().timestamp())
        if hold.deadline <= now:
            raise ValidationFailed("the hold's deadline has passed", errors=[_err("hold.deadline")])
        hold_id = hold.struct_hash()
        conflict = "this hold is placed or being placed already"
        reference = "0x" + hold_id.hex()
        data = self.view.encode(
            "placeHoldWithAuthorization", hold.as_tuple(), *authorization.args()
        )
        details = {"hold": asdict(hold), "hold_id": reference}
        gas = self._checked_gas(
            data, lambda: self._refuse_hold(hold, hold_id, authorization, now, conflict)
        )
        return Checked(HOLD_KIND, reference, data, details, conflict, gas)

    def enqueue(self, session: Session, owner: str, checked: Checked) -> OutboxIntent:
        """Write a checked payment or hold to the outbox, unless one is in flight already."""
        if self._in_flight(session, checked.kind, checked.reference):
            raise Conflict(checked.conflict)
        return self.outbox.enqueue(
            session,
            kind=checked.kind,
            owner=owner,
            to=self.view.checkout,
            data=checked.data,
            details=checked.details,
            reference=checked.reference,
            gas_limit=checked.gas_limit,
        )

    # -- checks ------------------------------------------------------------------------------

    def _check_merchant(
        self, merchant: str, terms: tuple[str, int, int, bool] | None = None
    ) -> None:
        payout, _fee, _category, active = terms or self.view.merchant_terms(merchant)
        if int(payout, 16) == 0 or not active:
            raise Conflict(f"{merchant} is not an active merchant")

    def _check_authorization(
        self,
        payer: str,
        token: str,
        amount: int,
        nonce: bytes,
        authorization: ReceiveAuthorization,
        now: int,
    ) -> None:
        if not authorization.valid_after < now < authorization.valid_before:
            raise ValidationFailed(
                "the payer's authorization is not valid now",
                errors=[_err("authorization.valid_before", "outside its validity")],
            )
        valid_after, valid_before, v, r, s = authorization.args()
        message = {
            "from": payer,
            "to": self.view.checkout,
            "value": amount,
            "validAfter": valid_after,
            "validBefore": valid_before,
            "nonce": nonce,
        }
        types = {"ReceiveWithAuthorization": RECEIVE_FIELDS}
        signature = r + s + bytes([v])
        if _signer(self.view.token_domain(token), types, message, signature) != payer:
            raise ValidationFailed(
                "the authorization is not the payer's signature of this payment",
                errors=[_err("authorization", "not the payer's")],
            )

    def _in_flight(self, session: Session, kind: str, reference: str) -> bool:
        """Whether an intent for ``reference`` is pending, sent or done. A failed one gives up
        the reference (renamed ``<reference>#failed-<id>``) so that a retry can take it."""
        intent = session.scalars(
            sa.select(OutboxIntent)
            .where(OutboxIntent.kind == kind, OutboxIntent.reference == reference)
            .with_for_update()
        ).first()
        if intent is None:
            return False
        if intent.state != "failed":
            return True
        intent.reference = f"{reference}#failed-{intent.id}"
        session.flush()
        return False


def _err(field: str, msg: str = "invalid") -> dict[str, Any]:
    return {"loc": field.split("."), "msg": msg}


def _signature(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 65:
        raise ValidationFailed(
            "a signature is 65 bytes of hex (r, s, v)",
            errors=[_err("merchant_signature", "not 65 bytes")],
        )
    return raw


def _invoice_signer(
    invoice: Invoice, struct_hash: bytes, view: CheckoutView, signature: bytes
) -> str | None:
    """Who signed ``invoice`` (its ``struct_hash``): EIP-712's digest from checkout's domain
    separator, made once per domain, where encoding the whole typed data each time took
    most of a payment's check."""
    key = (view.chain_id, view.checkout)
    separator = _DOMAIN_SEPARATORS.get(key)
    if separator is None:
        domain, types, message = invoice.typed_data(view)
        separator = encode_typed_data(
            domain_data=domain, message_types=types, message_data=message
        ).header
        _DOMAIN_SEPARATORS[key] = separator
    try:
        return Account.recover_message(
            SignableMessage(b"\x01", separator, struct_hash), signature=signature
        )
    except Exception:  # any malformed signature recovers nobody
        return None


#: Checkout's EIP-712 domain separators by chain id and checkout address (its name and
#: version are fixed in ``Invoice.typed_data``).
_DOMAIN_SEPARATORS: dict[tuple, bytes] = {}


def _signer(domain: dict[str, Any], types: dict, message: dict, signature: bytes) -> str | None:
    try:
        encoded = encode_typed_data(domain_data=domain, message_types=types, message_data=message)
        return Account.recover_message(encoded, signature=signature)
    except Exception:  # any malformed signature recovers nobody
        return None
