# pragma version ~=0.4.3
"""
@title Vehicle Escrow: Car Against Money, in One Transaction
@custom:contract-name vehicle_escrow
@license GNU Affero General Public License v3.0 only
@notice Many escrows of vehicle sales, each with an id. The seller, owner
        of a `vehicle_registry` title, opens one (`createEscrow`) naming
        the buyer, the currency token, the price, a deadline and an
        arbiter. The buyer funds the price (`fund`, the token's
        `transferFrom` after `approve` or `permit`); the seller deposits
        the title (`depositTitle`, the registry's `transferFrom` after
        `approve` or EIP-4494 `permit`). With both in, `settle` swaps them
        in one transaction: an outstanding lien is paid off to its lender
        first, at the payoff the lender signed (EIP-712 `LienPayoff`), and
        released; then the platform's fee (a fixed share of the price,
        capped at what the lien leaves) goes to the treasury of
        `merchant_registry`, the rest to the seller, the title to the
        buyer. A price below the signed payoff is refused at the deposit.
        Before the deadline only the buyer settles (it is their
        acceptance of the car); after it either party does. Before the
        deadline either party may raise a dispute, which leaves the
        escrow to the arbiter. The arbiter may resolve an escrow at any
        time, either way: the sale completes (as `settle` does), or every
        deposit goes back to whoever made it. Whatever is in also goes
        back when either party calls the deal off while the other side is
        not in yet (`cancel`), or after the deadline if a side is missing
        (`reclaim`). No path leaves a party with both the car and the money.
        Titles with a lien: this contract must be a registrar of the
        vehicle registry. It then moves a liened title by releasing the
        lien, transferring the title and recording the same lien again in
        one transaction, so the registry shows the lien for as long as the
        lender is unpaid; it releases a lien for good only after paying
        the lender.
        External functions:
        - `createEscrow` (a title's owner), `fund` (the buyer),
          `depositTitle` (the seller), `settle`, `dispute`, `cancel`,
          `reclaim` (the parties), `resolve` (the arbiter);
        - `escrow`, `escrowCount`, `lienPayoffHash`, `feeBps`, `vehicles`,
          `merchants`, `DOMAIN_SEPARATOR`, `eip712Domain` (views).
"""


from ethereum.ercs import IERC20


# @dev EIP-712 domain (name "carpay vehicle escrow", version "1") that
# lenders sign payoffs in, recomputed when the chain id changes.
from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator


# @dev ERC-1271 checks for lenders that are contracts.
from snekmate.utils import signature_checker


exports: eip712_domain_separator.eip712Domain


# @dev What the escrow reads and calls on the vehicle registry.
interface IVehicleRegistry:
    def ownerOf(token_id: uint256) -> address: view
    def lienOf(title: uint256) -> (address, uint256): view
    def transferFrom(owner: address, to: address, token_id: uint256): payable
    def releaseLien(title: uint256): nonpayable
    def recordLien(title: uint256, lender: address, amount: uint256): nonpayable


# @dev What the escrow reads from the merchant registry.
interface IMerchantRegistry:
    def treasury() -> address: view


# @dev An escrow as `escrow` returns it.
struct Escrow:
    title: uint256
    seller: address
    buyer: address
    token: address
    arbiter: address
    price: uint256
    deadline: uint256
    fee_bps: uint16
    lender: address
    payoff: uint256
    state: uint8


# @dev The EIP-712 type hash of a lender's payoff statement.
LIEN_PAYOFF_TYPEHASH: public(constant(bytes32)) = keccak256(
    "LienPayoff(uint256 title,address lender,uint256 payoff,uint256 escrowId,uint256 deadline)"
)


# @dev The highest price (2**96 - 1), so that it packs with the buyer; the
# registry caps lien payoffs at the same value.
MAX_PRICE: public(constant(uint256)) = (1 << 96) - 1


# @dev The highest platform fee: 10% (1,000 basis points).
MAX_FEE_BPS: public(constant(uint16)) = 1_000


# @dev The bits of an escrow's `state`: the price is in, the title is in,
# a dispute was raised, the sale completed, the deposits went back.
FUNDED: public(constant(uint8)) = 1
DEPOSITED: public(constant(uint8)) = 2
DISPUTED: public(constant(uint8)) = 4
SETTLED: public(constant(uint8)) = 8
UNWOUND: public(constant(uint8)) = 16


# @dev The denominator of the fee: basis points.
_BPS: constant(uint256) = 10_000


# @dev Bit layout of an escrow's `terms` word: the seller in bits 0-159,
# the deadline in bits 160-207, the fee in bits 208-223, the state in bits
# 224-231. Of its `sale` word: the buyer in bits 0-159, the price in bits
# 160-255. Of its `lien` word: the lender in bits 0-159, the signed payoff
# in bits 160-255.
_DEADLINE_SHIFT: constant(uint256) = 160
_FEE_SHIFT: constant(uint256) = 208
_STATE_SHIFT: constant(uint256) = 224
_AMOUNT_SHIFT: constant(uint256) = 160
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1
_UINT48_MASK: constant(uint256) = (1 << 48) - 1
_UINT16_MASK: constant(uint256) = (1 << 16) - 1
_CLOSED: constant(uint8) = SETTLED | UNWOUND


# @dev The largest `s` of a signature that is not malleable (EIP-2).
_MALLEABILITY_THRESHOLD: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev An escrow as stored: five words, a sixth once a liened title is in.
struct StoredEscrow:
    terms: uint256
    sale: uint256
    title: uint256
    token: address
    arbiter: address


# @dev The vehicle registry whose titles are sold.
vehicles: public(immutable(IVehicleRegistry))


# @dev The merchant registry whose `treasury` receives the platform fee.
merchants: public(immutable(IMerchantRegistry))


# @dev The platform fee in basis points of the price, fixed at deployment.
feeBps: public(immutable(uint16))


# @dev How many escrows were created; ids run from 1.
escrowCount: public(uint256)


# @dev Each escrow (see the bit layout above).
_escrows: HashMap[uint256, StoredEscrow]


# @dev The lien each escrow pays off at settlement: the lender and the
# payoff they signed (zero while no liened title is in).
_liens: HashMap[uint256, uint256]


# @dev Emitted when a seller opens an escrow.
event EscrowCreated:
    escrow_id: indexed(uint256)
    title: indexed(uint256)
    seller: indexed(address)
    buyer: address
    token: address
    arbiter: address
    price: uint256
    deadline: uint256
    fee_bps: uint16


# @dev Emitted when the buyer pays the price into an escrow.
event EscrowFunded:
    escrow_id: indexed(uint256)
    buyer: indexed(address)
    amount: uint256


# @dev Emitted when the seller deposits the title; `lender` and `payoff`
# are the lien to pay off at settlement (zero without a lien).
event TitleDeposited:
    escrow_id: indexed(uint256)
    title: indexed(uint256)
    lender: indexed(address)
    payoff: uint256


# @dev Emitted when a sale completes: the lender got `payoff`, the
# treasury `fee`, the seller `proceeds`, the buyer the title.
event EscrowSettled:
    escrow_id: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    lender: address
    payoff: uint256
    fee: uint256
    proceeds: uint256


# @dev Emitted when a party leaves an escrow to its arbiter.
event EscrowDisputed:
    escrow_id: indexed(uint256)
    by: indexed(address)


# @dev Emitted when the arbiter resolves an escrow (with `EscrowSettled`
# or `EscrowUnwound`).
event EscrowResolved:
    escrow_id: indexed(uint256)
    arbiter: indexed(address)
    to_buyer: bool


# @dev Emitted when a party calls the deal off (with `EscrowUnwound`).
event EscrowCancelled:
    escrow_id: indexed(uint256)
    by: indexed(address)


# @dev Emitted when the deposits go back: `refund` to the buyer, the title
# to the seller if `title_returned`.
event EscrowUnwound:
    escrow_id: indexed(uint256)
    refund: uint256
    title_returned: bool


@deploy
def __init__(vehicles_: IVehicleRegistry, merchants_: IMerchantRegistry, fee_bps_: uint16):
    """
    @dev Binds the escrow to a vehicle registry and a merchant registry
         and fixes the platform fee. For titles with a lien, the vehicle
         registry's owner must make this contract a registrar.
    @notice Anyone may deploy it; refuses zero addresses and a fee above
            `MAX_FEE_BPS`.
    @param vehicles_ The vehicle registry (titles and liens).
    @param merchants_ The merchant registry (the platform's treasury).
    @param fee_bps_ The platform fee in basis points of the price.
    """
    assert vehicles_.address != empty(address), "vehicle_escrow: zero address"
    assert merchants_.address != empty(address), "vehicle_escrow: zero address"
    assert fee_bps_ <= MAX_FEE_BPS, "vehicle_escrow: fee too high"
    eip712_domain_separator.__init__("carpay vehicle escrow", "1")
    vehicles = vehicles_
    merchants = merchants_
    feeBps = fee_bps_


@external
def createEscrow(
    title: uint256, buyer: address, token: address, price: uint256, deadline: uint256, arbiter: address
) -> uint256:
    """
    @dev Opens an escrow of the sale of `title` to `buyer` at `price`;
         nothing moves yet. The fee share is `feeBps` at creation. Emits
         `EscrowCreated`.
    @notice Only the title's current owner (the seller). Refuses the zero
            address or the seller as buyer, the zero address as token, the
            zero address, the seller or the buyer as arbiter, a zero price,
            a price above `MAX_PRICE` and a deadline not in the future.
    @param title The title id in the vehicle registry.
    @param buyer The 20-byte address of the buyer.
    @param token The currency token of the price.
    @param price The price, in the token's smallest unit.
    @param deadline The last timestamp at which the price and the title
           may come in (and the buyer alone may settle).
    @param arbiter The 20-byte address that may resolve the escrow.
    @return uint256 The escrow's id.
    """
    assert staticcall vehicles.ownerOf(title) == msg.sender, (
        "vehicle_escrow: caller is not the title's owner"
    )
    assert buyer != empty(address) and buyer != msg.sender, "vehicle_escrow: invalid buyer"
    assert token != empty(address), "vehicle_escrow: zero token"
    assert arbiter != empty(address) and arbiter != msg.sender and arbiter != buyer, (
        "vehicle_escrow: invalid arbiter"
    )
    assert price != 0, "vehicle_escrow: zero price"
    assert price <= MAX_PRICE, "vehicle_escrow: price too large"
    assert deadline > block.timestamp, "vehicle_escrow: deadline passed"
    assert deadline <= _UINT48_MASK, "vehicle_escrow: deadline too far"
    escrow_id: uint256 = self.escrowCount + 1
    self.escrowCount = escrow_id
    self._escrows[escrow_id] = StoredEscrow(
        terms=(
            convert(msg.sender, uint256)
            | (deadline << _DEADLINE_SHIFT)
            | (convert(feeBps, uint256) << _FEE_SHIFT)
        ),
        sale=convert(buyer, uint256) | (price << _AMOUNT_SHIFT),
        title=title,
        token=token,
        arbiter=arbiter,
    )
    log EscrowCreated(
        escrow_id=escrow_id,
        title=title,
        seller=msg.sender,
        buyer=buyer,
        token=token,
        arbiter=arbiter,
        price=price,
        deadline=deadline,
        fee_bps=feeBps,
    )
    return escrow_id


@external
@nonreentrant
def fund(escrow_id: uint256):
    """
    @dev Pays the price into the escrow with the token's `transferFrom`.
         Emits `EscrowFunded`.
    @notice Only the escrow's buyer, who has approved this contract for
            the price (`approve` or `permit`). Refuses an escrow that is
            closed or already funded, and after the deadline; the token
            refuses a short balance or allowance.
    @param escrow_id The escrow's id.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    buyer: address = convert(stored.sale & _ADDRESS_MASK, address)
    assert msg.sender == buyer, "vehicle_escrow: caller is not the buyer"
    assert state & FUNDED == 0, "vehicle_escrow: already funded"
    self._require_before_deadline(stored.terms)
    price: uint256 = stored.sale >> _AMOUNT_SHIFT
    self._set_state(escrow_id, stored.terms, state | FUNDED)
    log EscrowFunded(escrow_id=escrow_id, buyer=buyer, amount=price)
    assert extcall IERC20(stored.token).transferFrom(buyer, self, price, default_return_value=True), (
        "vehicle_escrow: transfer failed"
    )


@external
@nonreentrant
def depositTitle(
    escrow_id: uint256, payoff: uint256 = 0, valid_before: uint256 = 0, signature: Bytes[65] = b""
):
    """
    @dev Moves the title into the escrow with the registry's
         `transferFrom`. A title with an open lien needs its lender's
         EIP-712 `LienPayoff(title, lender, payoff, escrowId, deadline)`:
         the escrow keeps the lien recorded and pays `payoff` to the lender
         at settlement. Emits `TitleDeposited`.
    @notice Only the escrow's seller, who has approved this contract for
            the title (`approve`, `setApprovalForAll` or `permit`). Refuses
            an escrow that is closed or already holds the title, after the
            deadline, and for a liened title: a signature that is not the
            lender's, a statement past its deadline and a payoff above the
            price. Without a lien the last three parameters are ignored.
    @param escrow_id The escrow's id.
    @param payoff The payoff the lender signed, in the price's token.
    @param valid_before The last timestamp at which the lender's statement
           may be used.
    @param signature The lender's signature of the statement's EIP-712
           digest: `r ‖ s ‖ v`, or what its ERC-1271 wallet accepts.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    seller: address = convert(stored.terms & _ADDRESS_MASK, address)
    assert msg.sender == seller, "vehicle_escrow: caller is not the seller"
    assert state & DEPOSITED == 0, "vehicle_escrow: title already deposited"
    self._require_before_deadline(stored.terms)
    lender: address = empty(address)
    registered: uint256 = 0
    lender, registered = staticcall vehicles.lienOf(stored.title)
    signed: uint256 = 0
    if lender != empty(address):
        assert block.timestamp <= valid_before, "vehicle_escrow: payoff statement expired"
        digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
            self._lien_payoff_hash(stored.title, lender, payoff, escrow_id, valid_before)
        )
        assert self._is_lender_signature(lender, digest, signature), (
            "vehicle_escrow: invalid lender signature"
        )
        assert payoff <= stored.sale >> _AMOUNT_SHIFT, "vehicle_escrow: price below payoff"
        signed = payoff
        self._liens[escrow_id] = convert(lender, uint256) | (payoff << _AMOUNT_SHIFT)
    self._set_state(escrow_id, stored.terms, state | DEPOSITED)
    log TitleDeposited(escrow_id=escrow_id, title=stored.title, lender=lender, payoff=signed)
    self._move_title(stored.title, seller, self, lender, registered)


@external
@nonreentrant
def settle(escrow_id: uint256):
    """
    @dev Completes the sale: the lien's payoff to its lender (and the lien
         released), the fee to the treasury, the rest to the seller, the
         title to the buyer. Emits `EscrowSettled`.
    @notice Before the deadline only the buyer; after it the buyer or the
            seller. Refuses an escrow that is closed, disputed or missing
            the price or the title, and a title whose lien is not the one
            its lender signed for.
    @param escrow_id The escrow's id.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    buyer: address = convert(stored.sale & _ADDRESS_MASK, address)
    if block.timestamp <= self._deadline(stored.terms):
        assert msg.sender == buyer, "vehicle_escrow: caller is not the buyer"
    else:
        assert msg.sender == buyer or msg.sender == convert(stored.terms & _ADDRESS_MASK, address), (
            "vehicle_escrow: caller is not a party"
        )
    assert state & DISPUTED == 0, "vehicle_escrow: disputed"
    self._settle(escrow_id, stored, state)


@external
def dispute(escrow_id: uint256):
    """
    @dev Leaves the escrow to its arbiter: no party may settle, cancel or
         reclaim it any more. Emits `EscrowDisputed`.
    @notice Only the buyer or the seller, before the deadline, once both
            the price and the title are in. Refuses an escrow that is
            closed or already disputed.
    @param escrow_id The escrow's id.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    self._require_party(stored)
    assert state & (FUNDED | DEPOSITED) == FUNDED | DEPOSITED, "vehicle_escrow: not both in"
    assert state & DISPUTED == 0, "vehicle_escrow: disputed"
    self._require_before_deadline(stored.terms)
    self._set_state(escrow_id, stored.terms, state | DISPUTED)
    log EscrowDisputed(escrow_id=escrow_id, by=msg.sender)


@external
@nonreentrant
def resolve(escrow_id: uint256, to_buyer: bool):
    """
    @dev Resolves the escrow either way: `to_buyer` completes the sale as
         `settle` does; otherwise every deposit goes back (the price to the
         buyer, the title to the seller). Emits `EscrowResolved` and
         `EscrowSettled` or `EscrowUnwound`.
    @notice Only the escrow's arbiter, at any time, disputed or not.
            Refuses an escrow that is closed, and `to_buyer` unless both
            the price and the title are in (and as `settle` refuses a lien
            nobody signed for).
    @param escrow_id The escrow's id.
    @param to_buyer True to complete the sale, False to unwind it.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    assert msg.sender == stored.arbiter, "vehicle_escrow: caller is not the arbiter"
    log EscrowResolved(escrow_id=escrow_id, arbiter=msg.sender, to_buyer=to_buyer)
    if to_buyer:
        self._settle(escrow_id, stored, state)
    else:
        self._unwind(escrow_id, stored, state)


@external
@nonreentrant
def cancel(escrow_id: uint256):
    """
    @dev Calls the deal off: whatever is in goes back (the price to the
         buyer, the title to the seller). Emits `EscrowCancelled` and
         `EscrowUnwound`.
    @notice The seller while the price is not in; the buyer while the
            title is not in. Refuses an escrow that is closed.
    @param escrow_id The escrow's id.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    if msg.sender == convert(stored.terms & _ADDRESS_MASK, address):
        assert state & FUNDED == 0, "vehicle_escrow: buyer has funded"
    elif msg.sender == convert(stored.sale & _ADDRESS_MASK, address):
        assert state & DEPOSITED == 0, "vehicle_escrow: seller has deposited"
    else:
        raise "vehicle_escrow: caller is not a party"
    log EscrowCancelled(escrow_id=escrow_id, by=msg.sender)
    self._unwind(escrow_id, stored, state)


@external
@nonreentrant
def reclaim(escrow_id: uint256):
    """
    @dev After the deadline, with the price or the title missing, sends
         whatever is in back (the price to the buyer, the title to the
         seller). Emits `EscrowUnwound`.
    @notice Only the buyer or the seller. Refuses an escrow that is
            closed, before the deadline, and when both sides are in (it
            is then settled, or resolved if disputed).
    @param escrow_id The escrow's id.
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    state: uint8 = self._open_state(stored.terms)
    self._require_party(stored)
    assert block.timestamp > self._deadline(stored.terms), (
        "vehicle_escrow: deadline not passed"
    )
    assert state & (FUNDED | DEPOSITED) != FUNDED | DEPOSITED, "vehicle_escrow: both in"
    self._unwind(escrow_id, stored, state)


@external
@view
def escrow(escrow_id: uint256) -> Escrow:
    """
    @dev An escrow's terms, deposits and state.
    @notice Anyone may call; refuses an unknown id.
    @param escrow_id The escrow's id.
    @return Escrow The title, seller, buyer, token, arbiter, price,
            deadline, fee share, the lien to pay off (lender and signed
            payoff, zero until a liened title is in) and the state bits
            (`FUNDED`, `DEPOSITED`, `DISPUTED`, `SETTLED`, `UNWOUND`).
    """
    stored: StoredEscrow = self._escrows[escrow_id]
    assert stored.terms != 0, "vehicle_escrow: unknown escrow"
    lien: uint256 = self._liens[escrow_id]
    return Escrow(
        title=stored.title,
        seller=convert(stored.terms & _ADDRESS_MASK, address),
        buyer=convert(stored.sale & _ADDRESS_MASK, address),
        token=stored.token,
        arbiter=stored.arbiter,
        price=stored.sale >> _AMOUNT_SHIFT,
        deadline=self._deadline(stored.terms),
        fee_bps=convert((stored.terms >> _FEE_SHIFT) & _UINT16_MASK, uint16),
        lender=convert(lien & _ADDRESS_MASK, address),
        payoff=lien >> _AMOUNT_SHIFT,
        state=convert(stored.terms >> _STATE_SHIFT, uint8),
    )


@external
@view
def lienPayoffHash(
    title: uint256, lender: address, payoff: uint256, escrow_id: uint256, valid_before: uint256
) -> bytes32:
    """
    @dev The EIP-712 digest a lender signs to accept `payoff` for the
         release of their lien on `title` through escrow `escrow_id`.
    @notice Anyone may call.
    @param title The title id.
    @param lender The 20-byte address of the lienholder.
    @param payoff The payoff, in the escrow's token.
    @param escrow_id The escrow's id.
    @param valid_before The last timestamp the statement may be used.
    @return bytes32 The 32-byte digest.
    """
    return eip712_domain_separator._hash_typed_data_v4(
        self._lien_payoff_hash(title, lender, payoff, escrow_id, valid_before)
    )


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev The EIP-712 domain separator lenders sign payoffs in.
    @notice Anyone may call.
    @return bytes32 The 32-byte domain separator.
    """
    return eip712_domain_separator._domain_separator_v4()


# -- internals ----------------------------------------------------------------


@internal
def _settle(escrow_id: uint256, stored: StoredEscrow, state: uint8):
    """
    @dev Completes the sale of an open escrow with both sides in: lender,
         treasury, seller, then the title to the buyer.
    """
    assert state & (FUNDED | DEPOSITED) == FUNDED | DEPOSITED, "vehicle_escrow: not both in"
    lien: uint256 = self._liens[escrow_id]
    signed_lender: address = convert(lien & _ADDRESS_MASK, address)
    lender: address = empty(address)
    registered: uint256 = 0
    lender, registered = staticcall vehicles.lienOf(stored.title)
    # A lien the lender released meanwhile needs no payoff; one recorded
    # by someone else meanwhile was never signed for.
    assert lender == empty(address) or lender == signed_lender, "vehicle_escrow: lien not signed for"
    payoff: uint256 = 0
    if lender != empty(address):
        payoff = lien >> _AMOUNT_SHIFT
    price: uint256 = stored.sale >> _AMOUNT_SHIFT
    # No underflow: the signed payoff is at most the price (`depositTitle`).
    rest: uint256 = unsafe_sub(price, payoff)
    fee: uint256 = min(price * ((stored.terms >> _FEE_SHIFT) & _UINT16_MASK) // _BPS, rest)
    proceeds: uint256 = unsafe_sub(rest, fee)
    seller: address = convert(stored.terms & _ADDRESS_MASK, address)
    buyer: address = convert(stored.sale & _ADDRESS_MASK, address)
    self._set_state(escrow_id, stored.terms, state | SETTLED)
    log EscrowSettled(
        escrow_id=escrow_id,
        buyer=buyer,
        seller=seller,
        lender=lender,
        payoff=payoff,
        fee=fee,
        proceeds=proceeds,
    )
    if payoff != 0:
        self._transfer(stored.token, lender, payoff)
    if fee != 0:
        self._transfer(stored.token, staticcall merchants.treasury(), fee)
    if proceeds != 0:
        self._transfer(stored.token, seller, proceeds)
    if lender != empty(address):
        extcall vehicles.releaseLien(stored.title)
    extcall vehicles.transferFrom(self, buyer, stored.title)


@internal
def _unwind(escrow_id: uint256, stored: StoredEscrow, state: uint8):
    """
    @dev Closes an open escrow sending back what is in: the price to the
         buyer, the title (with its lien, if any) to the seller.
    """
    refund: uint256 = 0
    if state & FUNDED != 0:
        refund = stored.sale >> _AMOUNT_SHIFT
    returned: bool = state & DEPOSITED != 0
    self._set_state(escrow_id, stored.terms, state | UNWOUND)
    log EscrowUnwound(escrow_id=escrow_id, refund=refund, title_returned=returned)
    if refund != 0:
        self._transfer(stored.token, convert(stored.sale & _ADDRESS_MASK, address), refund)
    if returned:
        lender: address = empty(address)
        registered: uint256 = 0
        lender, registered = staticcall vehicles.lienOf(stored.title)
        self._move_title(
            stored.title, self, convert(stored.terms & _ADDRESS_MASK, address), lender, registered
        )


@internal
def _move_title(title: uint256, owner: address, to: address, lender: address, payoff: uint256):
    """
    @dev Transfers a title; one with an open lien (`lender`, `payoff`) is
         released, transferred and liened again, so the lien stays.
    """
    if lender == empty(address):
        extcall vehicles.transferFrom(owner, to, title)
        return
    extcall vehicles.releaseLien(title)
    extcall vehicles.transferFrom(owner, to, title)
    extcall vehicles.recordLien(title, lender, payoff)


@internal
def _transfer(token: address, to: address, amount: uint256):
    """
    @dev Sends `amount` of `token` from the escrow, for tokens that return
         a bool and those that return nothing.
    """
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), (
        "vehicle_escrow: transfer failed"
    )


@internal
def _set_state(escrow_id: uint256, terms: uint256, state: uint8):
    """
    @dev Writes an escrow's state bits into its `terms` word.
    """
    self._escrows[escrow_id].terms = (terms & ~(255 << _STATE_SHIFT)) | (
        convert(state, uint256) << _STATE_SHIFT
    )


@internal
@pure
def _open_state(terms: uint256) -> uint8:
    """
    @dev The state bits of an escrow; reverts if it is unknown or closed.
    """
    assert terms != 0, "vehicle_escrow: unknown escrow"
    state: uint8 = convert(terms >> _STATE_SHIFT, uint8)
    assert state & _CLOSED == 0, "vehicle_escrow: escrow closed"
    return state


@internal
@view
def _require_before_deadline(terms: uint256):
    """
    @dev Refuses once the escrow's deadline has passed.
    """
    assert block.timestamp <= self._deadline(terms), "vehicle_escrow: deadline passed"


@internal
@pure
def _deadline(terms: uint256) -> uint256:
    """
    @dev The deadline held in an escrow's `terms` word.
    """
    return (terms >> _DEADLINE_SHIFT) & _UINT48_MASK


@internal
@view
def _require_party(stored: StoredEscrow):
    """
    @dev Refuses a caller that is neither the seller nor the buyer.
    """
    assert msg.sender == convert(stored.terms & _ADDRESS_MASK, address) or msg.sender == convert(
        stored.sale & _ADDRESS_MASK, address
    ), "vehicle_escrow: caller is not a party"


@internal
@view
def _is_lender_signature(lender: address, digest: bytes32, signature: Bytes[65]) -> bool:
    """
    @dev ECDSA first (no `EXTCODESIZE` for the common case of a lender
         key), then ERC-1271 when the lender is a contract.
    """
    if len(signature) == 65:
        r: uint256 = extract32(signature, 0, output_type=uint256)
        s: uint256 = extract32(signature, 32, output_type=uint256)
        v: uint256 = convert(slice(signature, 64, 1), uint256)
        if s <= _MALLEABILITY_THRESHOLD:
            signer: address = ecrecover(digest, v, r, s)
            if signer != empty(address) and signer == lender:
                return True
    return lender.is_contract and signature_checker._is_valid_ERC1271_signature_now(
        lender, digest, signature
    )


@internal
@pure
def _lien_payoff_hash(
    title: uint256, lender: address, payoff: uint256, escrow_id: uint256, valid_before: uint256
) -> bytes32:
    """
    @dev The EIP-712 struct hash of a `LienPayoff`.
    """
    return keccak256(abi_encode(LIEN_PAYOFF_TYPEHASH, title, lender, payoff, escrow_id, valid_before))

