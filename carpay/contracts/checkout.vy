# pragma version ~=0.4.3
"""
@title Checkout
@custom:contract-name checkout
@license GNU Affero General Public License v3.0 only
@notice Takes payments for the merchants of `merchant_registry` and splits
        the platform's fee off each one by the merchant's fee tier:
        - invoices: a merchant signs an EIP-712 `Invoice` (ECDSA, or
          ERC-1271 for a contract merchant); the payer pays it once and
          before its expiry, directly (`payInvoice`, after `approve` or
          `permit`) or gaslessly through a relayer
          (`payInvoiceWithAuthorization`, EIP-3009
          `receiveWithAuthorization` whose nonce is the invoice's struct
          hash, so the payer's signature pays that invoice only);
        - `refund`: the merchant refunds a paid invoice, fully or in parts,
          never more than was paid, to the payer;
        - holds: the payer places a `Hold` of up to an amount for a merchant
          (`placeHold`, `placeHoldWithAuthorization` whose nonce is the
          hold's id); the merchant captures from it (`capture`, a final
          capture returns the rest) or voids it (`void`); after its
          deadline anyone may return it to the payer (`reclaim`);
        - `settleBatch`: settles many payer-signed payments to a merchant's
          payout in one transaction through the token's `settlePayments`
          (this contract must be a settler of the token).
        Views: `invoiceHash`, `invoiceDigest`, `holdId`, `holdState`,
        `payments`, `registry`, `DOMAIN_SEPARATOR`, `eip712Domain`.
        The contract holds tokens only for open holds.
"""


from ethereum.ercs import IERC20

from .interfaces import ICurrencyToken


# @dev EIP-712 domain (name "carpay checkout", version "1"), recomputed
# when the chain id changes.
from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator


# @dev ERC-1271 checks for merchants that are contracts.
from snekmate.utils import signature_checker


exports: eip712_domain_separator.eip712Domain


# @dev What checkout reads from the merchant registry.
interface IMerchantRegistry:
    def merchantTerms(merchant: address) -> (address, uint16, uint8, bool): view
    def treasury() -> address: view


# @dev An invoice as the merchant signs it; `payer` empty lets anyone pay.
struct Invoice:
    merchant: address
    amount: uint256
    token: address
    invoice_id: bytes32
    expiry: uint256
    payer: address


# @dev A hold as the payer places it; its id is its EIP-712 struct hash.
struct Hold:
    payer: address
    merchant: address
    token: address
    amount: uint256
    deadline: uint256
    salt: bytes32


# @dev The EIP-712 type hashes of an invoice and a hold.
INVOICE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Invoice(address merchant,uint256 amount,address token,bytes32 invoiceId,uint256 expiry,address payer)"
)
HOLD_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Hold(address payer,address merchant,address token,uint256 amount,uint256 deadline,bytes32 salt)"
)


# @dev The most payments one `settleBatch` takes (the token takes 256; a
# smaller bound keeps the memory checkout reserves, and pays for, small).
MAX_BATCH: public(constant(uint256)) = 128


# @dev The denominator of fee tiers: basis points.
_BPS: constant(uint256) = 10_000


# @dev The largest `s` of a signature that is not malleable (EIP-2).
_MALLEABILITY_THRESHOLD: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev A hold's state word: `_OPEN | remaining` while open, `_CLOSED` once
# captured in full, voided or reclaimed, zero if never placed.
_OPEN: constant(uint256) = 1 << 255
_CLOSED: constant(uint256) = 1


# @dev `holdState` statuses.
HOLD_NONE: constant(uint8) = 0
HOLD_OPEN: constant(uint8) = 1
HOLD_CLOSED: constant(uint8) = 2


# @dev The merchant registry that gives each merchant's payout, fee tier
# and active flag, and the platform's treasury.
registry: public(immutable(IMerchantRegistry))


# @dev For each merchant and invoice id, the hash of the payment record
# `keccak256(abi_encode(invoice_hash, payer, refunded))`, zero while unpaid.
# `refund` takes the record as arguments instead of reading three words.
payments: public(HashMap[address, HashMap[bytes32, bytes32]])


# @dev Each hold's state word (see `_OPEN`), keyed by hold id.
_holds: HashMap[bytes32, uint256]


# @dev Emitted when an invoice is paid: the receipt.
event InvoicePaid:
    invoice_id: indexed(bytes32)
    payer: indexed(address)
    merchant: indexed(address)
    token: address
    gross: uint256
    fee: uint256
    net: uint256


# @dev Emitted when a merchant refunds (part of) a paid invoice.
event Refunded:
    invoice_id: indexed(bytes32)
    payer: indexed(address)
    merchant: indexed(address)
    token: address
    amount: uint256
    refunded: uint256


# @dev Emitted when a payer places a hold.
event HoldPlaced:
    hold_id: indexed(bytes32)
    payer: indexed(address)
    merchant: indexed(address)
    token: address
    amount: uint256
    deadline: uint256


# @dev Emitted when a merchant captures from a hold; `returned` went back
# to the payer when the capture closed the hold (`remaining` is then 0).
event HoldCaptured:
    hold_id: indexed(bytes32)
    payer: indexed(address)
    merchant: indexed(address)
    gross: uint256
    fee: uint256
    net: uint256
    remaining: uint256
    returned: uint256


# @dev Emitted when a merchant voids a hold: all of it went back.
event HoldVoided:
    hold_id: indexed(bytes32)
    payer: indexed(address)
    merchant: indexed(address)
    returned: uint256


# @dev Emitted when an expired hold goes back to its payer.
event HoldReclaimed:
    hold_id: indexed(bytes32)
    payer: indexed(address)
    merchant: indexed(address)
    returned: uint256


# @dev Emitted once per `settleBatch`, with the totals of what settled.
event BatchSettled:
    token: indexed(address)
    merchant: indexed(address)
    payout: address
    settled: uint256
    skipped: uint256
    gross: uint256
    fee: uint256


# @dev Emitted for each payment of a batch the token skipped; `status` is
# the token's reason (1 bad signature, 2 expired, 3 nonce used,
# 4 insufficient funds, 5 blocklisted).
event PaymentSkipped:
    token: indexed(address)
    merchant: indexed(address)
    payer: indexed(address)
    nonce: uint256
    status: uint8


@deploy
def __init__(registry_: IMerchantRegistry):
    """
    @dev Sets the merchant registry and the EIP-712 domain.
    @notice Anyone may deploy it; refuses the zero address as registry.
    @param registry_ The merchant registry checkout reads terms from.
    """
    assert registry_.address != empty(address), "checkout: zero registry"
    eip712_domain_separator.__init__("carpay checkout", "1")
    registry = registry_


# -- invoices -----------------------------------------------------------------


@external
@nonreentrant
def payInvoice(invoice: Invoice, signature: Bytes[65]):
    """
    @dev Pays `invoice` from the caller: `amount` minus the fee to the
         merchant's payout and the fee to the treasury, with two
         `transferFrom`s (the caller approves or permits checkout first).
         Emits `InvoicePaid`.
    @notice Any payer may call, or only the invoice's `payer` when it names
            one. Refused for an expired, already paid or zero invoice, a
            signature that is not the merchant's and an inactive merchant.
    @param invoice The invoice the merchant signed.
    @param signature The merchant's signature of the invoice's EIP-712
           digest: `r ‖ s ‖ v`, or what its ERC-1271 wallet accepts.
    """
    payout: address = empty(address)
    fee: uint256 = 0
    treasury: address = empty(address)
    invoice_hash: bytes32 = empty(bytes32)
    payout, fee, treasury, invoice_hash = self._accept_invoice(invoice, signature, msg.sender)
    token: IERC20 = IERC20(invoice.token)
    assert extcall token.transferFrom(
        msg.sender, payout, invoice.amount - fee, default_return_value=True
    ), "checkout: transfer failed"
    if fee != 0:
        assert extcall token.transferFrom(
            msg.sender, treasury, fee, default_return_value=True
        ), "checkout: transfer failed"


@external
@nonreentrant
def payInvoiceWithAuthorization(
    invoice: Invoice,
    signature: Bytes[65],
    payer: address,
    valid_after: uint256,
    valid_before: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Pays `invoice` from `payer` without a transaction of theirs:
         pulls `amount` with the token's `receiveWithAuthorization`, whose
         nonce must be the invoice's struct hash (`invoiceHash`), then
         pays the merchant's payout and the treasury. Emits `InvoicePaid`.
    @notice Anyone (the relayer) may call. Refused as `payInvoice` is
            (with `payer` in place of the caller), and by the token when
            the authorization is not `payer`'s for this invoice.
    @param invoice The invoice the merchant signed.
    @param signature The merchant's signature of the invoice's digest.
    @param payer The 20-byte address that signed the authorization.
    @param valid_after The authorization is valid after this timestamp.
    @param valid_before The authorization is valid before this timestamp.
    @param v The payer's secp256k1 1-byte signature parameter `v`.
    @param r The payer's secp256k1 32-byte signature parameter `r`.
    @param s The payer's secp256k1 32-byte signature parameter `s`.
    """
    payout: address = empty(address)
    fee: uint256 = 0
    treasury: address = empty(address)
    invoice_hash: bytes32 = empty(bytes32)
    payout, fee, treasury, invoice_hash = self._accept_invoice(invoice, signature, payer)
    extcall ICurrencyToken(invoice.token).receiveWithAuthorization(
        payer, self, invoice.amount, valid_after, valid_before, invoice_hash, v, r, s
    )
    self._pay_out(invoice.token, payout, invoice.amount - fee, treasury, fee)


@external
@nonreentrant
def refund(invoice: Invoice, payer: address, refunded: uint256, amount: uint256):
    """
    @dev Refunds `amount` of a paid invoice to its payer, from the
         merchant's own balance (`transferFrom`: the merchant approves
         checkout first); the platform keeps its fee. `payer` and
         `refunded` (the total refunded so far) are the payment record,
         checked against its stored hash. Emits `Refunded`.
    @notice Only the invoice's merchant. Refused for an unpaid invoice, a
            record that does not match, a zero amount and a total refund
            above the invoice's amount.
    @param invoice The paid invoice.
    @param payer The 20-byte address that paid it (`InvoicePaid.payer`).
    @param refunded The amount refunded before this call.
    @param amount The amount to refund now.
    """
    assert msg.sender == invoice.merchant, "checkout: caller is not the merchant"
    invoice_hash: bytes32 = self._invoice_hash(invoice)
    record: bytes32 = self.payments[invoice.merchant][invoice.invoice_id]
    assert record != empty(bytes32), "checkout: invoice not paid"
    assert record == keccak256(abi_encode(invoice_hash, payer, refunded)), (
        "checkout: payment record mismatch"
    )
    assert amount != 0, "checkout: zero amount"
    total: uint256 = refunded + amount
    assert total <= invoice.amount, "checkout: refund exceeds payment"
    self.payments[invoice.merchant][invoice.invoice_id] = keccak256(
        abi_encode(invoice_hash, payer, total)
    )
    log Refunded(
        invoice_id=invoice.invoice_id,
        payer=payer,
        merchant=invoice.merchant,
        token=invoice.token,
        amount=amount,
        refunded=total,
    )
    assert extcall IERC20(invoice.token).transferFrom(
        msg.sender, payer, amount, default_return_value=True
    ), "checkout: transfer failed"


# -- holds --------------------------------------------------------------------


@external
@nonreentrant
def placeHold(hold: Hold):
    """
    @dev Places `hold`: moves `amount` from the caller to checkout with
         `transferFrom` (the caller approves or permits checkout first).
         Emits `HoldPlaced`.
    @notice Only the hold's payer. Refused for a zero amount, a deadline
            not in the future, an inactive merchant and a hold id already
            used.
    @param hold The hold; its id is `holdId(hold)`.
    """
    assert msg.sender == hold.payer, "checkout: caller is not the payer"
    self._open_hold(hold)
    assert extcall IERC20(hold.token).transferFrom(
        msg.sender, self, hold.amount, default_return_value=True
    ), "checkout: transfer failed"


@external
@nonreentrant
def placeHoldWithAuthorization(
    hold: Hold, valid_after: uint256, valid_before: uint256, v: uint8, r: bytes32, s: bytes32
):
    """
    @dev Places `hold` without a transaction of the payer's: pulls
         `amount` with the token's `receiveWithAuthorization`, whose nonce
         must be the hold's id. Emits `HoldPlaced`.
    @notice Anyone (the relayer) may call. Refused as `placeHold` is, and
            by the token when the authorization is not the payer's for
            this hold.
    @param hold The hold; its id is `holdId(hold)`.
    @param valid_after The authorization is valid after this timestamp.
    @param valid_before The authorization is valid before this timestamp.
    @param v The payer's secp256k1 1-byte signature parameter `v`.
    @param r The payer's secp256k1 32-byte signature parameter `r`.
    @param s The payer's secp256k1 32-byte signature parameter `s`.
    """
    hold_id: bytes32 = self._open_hold(hold)
    extcall ICurrencyToken(hold.token).receiveWithAuthorization(
        hold.payer, self, hold.amount, valid_after, valid_before, hold_id, v, r, s
    )


@external
@nonreentrant
def capture(hold: Hold, amount: uint256, final: bool):
    """
    @dev Captures `amount` of an open hold: the fee to the treasury, the
         rest to the merchant's payout. The hold closes when `final` is
         set or nothing remains, and what remains goes back to the payer.
         Emits `HoldCaptured`.
    @notice Only the hold's merchant, until the deadline. Refused for a
            hold that is not open, a zero amount, an amount above what
            remains and an inactive merchant.
    @param hold The hold.
    @param amount The amount to capture.
    @param final True to close the hold and return the rest.
    """
    assert msg.sender == hold.merchant, "checkout: caller is not the merchant"
    hold_id: bytes32 = self._hold_id(hold)
    remaining: uint256 = self._open_remaining(hold_id)
    assert block.timestamp <= hold.deadline, "checkout: hold expired"
    assert amount != 0, "checkout: zero amount"
    assert amount <= remaining, "checkout: capture exceeds hold"
    payout: address = empty(address)
    fee_bps: uint16 = 0
    active: bool = False
    payout, fee_bps, active = self._terms(hold.merchant)
    fee: uint256 = amount * convert(fee_bps, uint256) // _BPS
    left: uint256 = unsafe_sub(remaining, amount)
    returned: uint256 = 0
    if final or left == 0:
        self._holds[hold_id] = _CLOSED
        returned = left
        left = 0
    else:
        self._holds[hold_id] = _OPEN | left
    log HoldCaptured(
        hold_id=hold_id,
        payer=hold.payer,
        merchant=hold.merchant,
        gross=amount,
        fee=fee,
        net=unsafe_sub(amount, fee),
        remaining=left,
        returned=returned,
    )
    treasury: address = empty(address)
    if fee != 0:
        treasury = staticcall registry.treasury()
    self._pay_out(hold.token, payout, unsafe_sub(amount, fee), treasury, fee)
    if returned != 0:
        self._transfer(hold.token, hold.payer, returned)


@external
@nonreentrant
def void(hold: Hold):
    """
    @dev Closes an open hold and returns all that remains to the payer.
         Emits `HoldVoided`.
    @notice Only the hold's merchant (at any time, even when inactive).
            Refused for a hold that is not open.
    @param hold The hold.
    """
    assert msg.sender == hold.merchant, "checkout: caller is not the merchant"
    hold_id: bytes32 = self._hold_id(hold)
    remaining: uint256 = self._open_remaining(hold_id)
    self._holds[hold_id] = _CLOSED
    log HoldVoided(hold_id=hold_id, payer=hold.payer, merchant=hold.merchant, returned=remaining)
    self._transfer(hold.token, hold.payer, remaining)


@external
@nonreentrant
def reclaim(hold: Hold):
    """
    @dev Closes an expired hold and returns all that remains to the payer.
         Emits `HoldReclaimed`.
    @notice Anyone may call (the money only goes back to the payer), once
            the deadline has passed. Refused for a hold that is not open
            or not yet expired.
    @param hold The hold.
    """
    hold_id: bytes32 = self._hold_id(hold)
    remaining: uint256 = self._open_remaining(hold_id)
    assert block.timestamp > hold.deadline, "checkout: hold not expired"
    self._holds[hold_id] = _CLOSED
    log HoldReclaimed(
        hold_id=hold_id, payer=hold.payer, merchant=hold.merchant, returned=remaining
    )
    self._transfer(hold.token, hold.payer, remaining)


# -- batch settlement ---------------------------------------------------------


@external
@nonreentrant
def settleBatch(
    token: ICurrencyToken,
    merchant: address,
    payments: DynArray[ICurrencyToken.Payment, MAX_BATCH],
):
    """
    @dev Settles payer-signed `PaymentAuthorization`s to `merchant`'s
         payout through `token.settlePayments`, with each payment's fee
         from the merchant's tier going to the treasury. A payment the
         token refuses is skipped with a `PaymentSkipped` saying why; one
         `BatchSettled` gives the totals.
    @notice Anyone (the relayer) may call: the payers signed the payout as
            payee and the fees come from the registry. Refused for an
            empty batch and an inactive merchant, and by the token when
            checkout is not its settler.
    @param token The currency token the payments are in.
    @param merchant The 20-byte address of the merchant being paid.
    @param payments The payers' signed authorizations, payee the payout.
    """
    assert len(payments) != 0, "checkout: empty batch"
    payout: address = empty(address)
    fee_bps: uint16 = 0
    active: bool = False
    payout, fee_bps, active = self._terms(merchant)
    bps: uint256 = convert(fee_bps, uint256)
    # Totals assume every payment settles; the rare skipped ones come off.
    count: uint256 = len(payments)
    gross: uint256 = 0
    fee: uint256 = 0
    fees: DynArray[uint256, MAX_BATCH] = []
    for i: uint256 in range(count, bound=MAX_BATCH):
        value: uint256 = payments[i].value
        # No overflow: the token refuses a batch whose values exceed the supply.
        payment_fee: uint256 = value * bps // _BPS
        fees.append(payment_fee)
        gross = unsafe_add(gross, value)
        fee = unsafe_add(fee, payment_fee)
    statuses: DynArray[uint256, MAX_BATCH] = extcall token.settlePayments(
        payout, staticcall registry.treasury(), payments, fees
    )
    settled: uint256 = count
    i: uint256 = 0
    for status: uint256 in statuses:
        if status != 0:
            settled = unsafe_sub(settled, 1)
            gross = unsafe_sub(gross, payments[i].value)
            fee = unsafe_sub(fee, fees[i])
            log PaymentSkipped(
                token=token.address,
                merchant=merchant,
                payer=payments[i].payer,
                nonce=payments[i].nonce,
                status=convert(status, uint8),
            )
        i = unsafe_add(i, 1)
    log BatchSettled(
        token=token.address,
        merchant=merchant,
        payout=payout,
        settled=settled,
        skipped=unsafe_sub(count, settled),
        gross=gross,
        fee=fee,
    )


# -- views --------------------------------------------------------------------


@external
@view
def invoiceHash(invoice: Invoice) -> bytes32:
    """
    @dev The invoice's EIP-712 struct hash: the nonce of the payer's
         `ReceiveWithAuthorization` for `payInvoiceWithAuthorization`.
    @notice Anyone may call.
    @param invoice The invoice.
    @return bytes32 The 32-byte struct hash.
    """
    return self._invoice_hash(invoice)


@external
@view
def invoiceDigest(invoice: Invoice) -> bytes32:
    """
    @dev The EIP-712 digest of the invoice in checkout's domain: what the
         merchant signs.
    @notice Anyone may call.
    @param invoice The invoice.
    @return bytes32 The 32-byte digest.
    """
    return eip712_domain_separator._hash_typed_data_v4(self._invoice_hash(invoice))


@external
@view
def holdId(hold: Hold) -> bytes32:
    """
    @dev The hold's id, its EIP-712 struct hash: the nonce of the payer's
         `ReceiveWithAuthorization` for `placeHoldWithAuthorization`.
    @notice Anyone may call.
    @param hold The hold.
    @return bytes32 The 32-byte hold id.
    """
    return self._hold_id(hold)


@external
@view
def holdState(hold_id: bytes32) -> (uint8, uint256):
    """
    @dev Where a hold stands.
    @notice Anyone may call.
    @param hold_id The 32-byte hold id.
    @return uint8 0 never placed, 1 open, 2 closed.
    @return uint256 The amount still held (0 unless open).
    """
    word: uint256 = self._holds[hold_id]
    if word == 0:
        return HOLD_NONE, 0
    if word == _CLOSED:
        return HOLD_CLOSED, 0
    return HOLD_OPEN, word ^ _OPEN


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev The EIP-712 domain separator merchants sign invoices in.
    @notice Anyone may call.
    @return bytes32 The 32-byte domain separator.
    """
    return eip712_domain_separator._domain_separator_v4()


# -- internals ----------------------------------------------------------------


@internal
def _accept_invoice(
    invoice: Invoice, signature: Bytes[65], payer: address
) -> (address, uint256, address, bytes32):
    """
    @dev Checks an invoice payment by `payer`, records it and emits the
         receipt; returns (payout, fee, treasury, invoice hash).
    """
    assert block.timestamp <= invoice.expiry, "checkout: invoice expired"
    assert invoice.payer == empty(address) or invoice.payer == payer, (
        "checkout: not the invoice's payer"
    )
    assert invoice.amount != 0, "checkout: zero amount"
    assert self.payments[invoice.merchant][invoice.invoice_id] == empty(bytes32), (
        "checkout: invoice already paid"
    )
    invoice_hash: bytes32 = self._invoice_hash(invoice)
    assert self._is_merchant_signature(
        invoice.merchant, eip712_domain_separator._hash_typed_data_v4(invoice_hash), signature
    ), "checkout: invalid merchant signature"
    payout: address = empty(address)
    fee_bps: uint16 = 0
    active: bool = False
    payout, fee_bps, active = self._terms(invoice.merchant)
    fee: uint256 = invoice.amount * convert(fee_bps, uint256) // _BPS
    treasury: address = empty(address)
    if fee != 0:
        treasury = staticcall registry.treasury()
    self.payments[invoice.merchant][invoice.invoice_id] = keccak256(
        abi_encode(invoice_hash, payer, empty(uint256))
    )
    log InvoicePaid(
        invoice_id=invoice.invoice_id,
        payer=payer,
        merchant=invoice.merchant,
        token=invoice.token,
        gross=invoice.amount,
        fee=fee,
        net=unsafe_sub(invoice.amount, fee),
    )
    return payout, fee, treasury, invoice_hash


@internal
def _open_hold(hold: Hold) -> bytes32:
    """
    @dev Checks and records a new hold, emits `HoldPlaced`; returns its id.
    """
    assert hold.amount != 0, "checkout: zero amount"
    assert hold.amount < _OPEN, "checkout: amount too large"
    assert hold.deadline > block.timestamp, "checkout: deadline passed"
    payout: address = empty(address)
    fee_bps: uint16 = 0
    active: bool = False
    payout, fee_bps, active = self._terms(hold.merchant)
    hold_id: bytes32 = self._hold_id(hold)
    assert self._holds[hold_id] == 0, "checkout: hold exists"
    self._holds[hold_id] = _OPEN | hold.amount
    log HoldPlaced(
        hold_id=hold_id,
        payer=hold.payer,
        merchant=hold.merchant,
        token=hold.token,
        amount=hold.amount,
        deadline=hold.deadline,
    )
    return hold_id


@internal
@view
def _open_remaining(hold_id: bytes32) -> uint256:
    """
    @dev What an open hold still holds; reverts if it is not open.
    """
    word: uint256 = self._holds[hold_id]
    assert word >= _OPEN, "checkout: hold not open"
    return word ^ _OPEN


@internal
@view
def _terms(merchant: address) -> (address, uint16, bool):
    """
    @dev A merchant's payout, fee tier and active flag; reverts if it is
         not active (unknown merchants are inactive).
    """
    payout: address = empty(address)
    fee_bps: uint16 = 0
    category: uint8 = 0
    active: bool = False
    payout, fee_bps, category, active = staticcall registry.merchantTerms(merchant)
    assert active, "checkout: merchant inactive"
    return payout, fee_bps, active


@internal
def _pay_out(token: address, payout: address, net: uint256, treasury: address, fee: uint256):
    """
    @dev Pays the net to the payout and the fee (if any) to the treasury
         from checkout's balance.
    """
    self._transfer(token, payout, net)
    if fee != 0:
        self._transfer(token, treasury, fee)


@internal
def _transfer(token: address, to: address, amount: uint256):
    """
    @dev Sends `amount` of `token` from checkout, for tokens that return a
         bool and those that return nothing.
    """
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), (
        "checkout: transfer failed"
    )


@internal
@view
def _is_merchant_signature(merchant: address, digest: bytes32, signature: Bytes[65]) -> bool:
    """
    @dev ECDSA first (no `EXTCODESIZE` for the common case of a merchant
         key), then ERC-1271 when the merchant is a contract.
    """
    if len(signature) == 65:
        r: uint256 = extract32(signature, 0, output_type=uint256)
        s: uint256 = extract32(signature, 32, output_type=uint256)
        v: uint256 = convert(slice(signature, 64, 1), uint256)
        if s <= _MALLEABILITY_THRESHOLD:
            signer: address = ecrecover(digest, v, r, s)
            if signer != empty(address) and signer == merchant:
                return True
    return merchant.is_contract and signature_checker._is_valid_ERC1271_signature_now(
        merchant, digest, signature
    )


@internal
@view
def _invoice_hash(invoice: Invoice) -> bytes32:
    return keccak256(
        abi_encode(
            INVOICE_TYPEHASH,
            invoice.merchant,
            invoice.amount,
            invoice.token,
            invoice.invoice_id,
            invoice.expiry,
            invoice.payer,
        )
    )


@internal
@view
def _hold_id(hold: Hold) -> bytes32:
    return keccak256(
        abi_encode(
            HOLD_TYPEHASH,
            hold.payer,
            hold.merchant,
            hold.token,
            hold.amount,
            hold.deadline,
            hold.salt,
        )
    )
