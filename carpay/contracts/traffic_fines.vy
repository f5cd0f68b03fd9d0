# pragma version ~=0.4.3
"""
@title Traffic Fines
@custom:contract-name traffic_fines
@license GNU Affero General Public License v3.0 only
@notice Fines that traffic authorities issue against a vehicle, paid by
        whoever owns the vehicle. An authority is an active merchant of
        category 7 (`authority`) in `merchant_registry`; a vehicle is a
        title of `vehicle_registry`. A fine has an amount, a late fee added
        once its due date has passed, a reason code and a currency token.
        The vehicle's owner pays it (`payFine`, after approving this
        contract on the token): the tokens go straight from the owner to
        the authority's payout, no platform fee. The issuing authority
        may waive it. The unpaid fines of a vehicle are public
        (`unpaidFines`, `outstanding`), so a buyer sees them before a sale
        completes; a fine stays with the vehicle when it changes owner.
        External functions:
        - `issueFine`, `waiveFine` (the issuing authority),
        - `payFine` (the vehicle's owner),
        - `fine`, `amountDue`, `unpaidFines`, `outstanding`, `fineCount`,
          `merchants`, `vehicles` (views).
"""


from ethereum.ercs import IERC20


# @dev What this contract reads from the merchant registry.
interface IMerchantRegistry:
    def merchantTerms(merchant: address) -> (address, uint16, uint8, bool): view


# @dev What this contract reads from the vehicle registry.
interface IVehicleRegistry:
    def ownerOf(token_id: uint256) -> address: view
    def titleExists(title: uint256) -> bool: view


# @dev The merchant category of traffic authorities.
AUTHORITY_CATEGORY: public(constant(uint8)) = 7


# @dev The most unpaid fines a vehicle can have at once.
MAX_UNPAID: public(constant(uint256)) = 64


# @dev The largest fine (2**128 - 1): no total of a vehicle's fines overflows.
MAX_AMOUNT: public(constant(uint256)) = (1 << 128) - 1


# @dev The largest late fee (2**96 - 1), so it packs with the token.
MAX_LATE_FEE: public(constant(uint256)) = (1 << 96) - 1


# @dev `fine` statuses.
STATUS_NONE: public(constant(uint8)) = 0
STATUS_UNPAID: public(constant(uint8)) = 1
STATUS_PAID: public(constant(uint8)) = 2
STATUS_WAIVED: public(constant(uint8)) = 3


# @dev Bit layout of a fine's `terms` word: authority in bits 0-159, reason
# in bits 160-175, status in bits 176-183, position in the vehicle's unpaid
# list in bits 184-191, due date in bits 192-255. Of its `money` word:
# token in bits 0-159, late fee in bits 160-255.
_REASON_SHIFT: constant(uint256) = 160
_STATUS_SHIFT: constant(uint256) = 176
_SLOT_SHIFT: constant(uint256) = 184
_DUE_SHIFT: constant(uint256) = 192
_LATE_FEE_SHIFT: constant(uint256) = 160
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1


# @dev A fine as stored: four words (see the bit layout above).
struct StoredFine:
    terms: uint256
    money: uint256
    title: uint256
    amount: uint256


# @dev A fine as `fine` returns it.
struct Fine:
    authority: address
    title: uint256
    token: address
    amount: uint256
    late_fee: uint256
    due: uint256
    reason: uint16
    status: uint8


# @dev The merchant registry that says who is an active authority and
# where its proceeds are paid.
merchants: public(immutable(IMerchantRegistry))


# @dev The vehicle registry whose titles fines are issued against.
vehicles: public(immutable(IVehicleRegistry))


# @dev How many fines were ever issued; fine ids run from 1.
fineCount: public(uint256)


# @dev Every fine, by id.
_fines: HashMap[uint256, StoredFine]


# @dev The ids of each vehicle's unpaid fines, in no particular order.
_unpaid: HashMap[uint256, DynArray[uint256, MAX_UNPAID]]


# @dev Emitted when an authority issues a fine.
event FineIssued:
    fine_id: indexed(uint256)
    title: indexed(uint256)
    authority: indexed(address)
    token: address
    amount: uint256
    late_fee: uint256
    due: uint256
    reason: uint16


# @dev Emitted when the vehicle's owner pays a fine; `late_fee` is the part
# of `paid` that was the late fee (0 if paid on time).
event FinePaid:
    fine_id: indexed(uint256)
    title: indexed(uint256)
    payer: indexed(address)
    authority: address
    payout: address
    token: address
    paid: uint256
    late_fee: uint256


# @dev Emitted when the issuing authority waives a fine.
event FineWaived:
    fine_id: indexed(uint256)
    title: indexed(uint256)
    authority: indexed(address)


@deploy
def __init__(merchants_: IMerchantRegistry, vehicles_: IVehicleRegistry):
    """
    @dev Binds the contract to a merchant registry and a vehicle registry.
    @notice Anyone may deploy it; refuses zero addresses.
    @param merchants_ The merchant registry (authorities and their payouts).
    @param vehicles_ The vehicle registry (titles and their owners).
    """
    assert merchants_.address != empty(address), "traffic_fines: zero address"
    assert vehicles_.address != empty(address), "traffic_fines: zero address"
    merchants = merchants_
    vehicles = vehicles_


@external
def issueFine(
    title: uint256, token: address, amount: uint256, late_fee: uint256, due: uint256, reason: uint16
) -> uint256:
    """
    @dev Issues a fine against the vehicle `title`. Emits `FineIssued`.
    @notice Only an active merchant of category 7 (authority). Refuses an
            unknown vehicle, the zero address as token, a zero amount, an
            amount above `MAX_AMOUNT`, a late fee above `MAX_LATE_FEE`, a due date not in the future
            and a vehicle that already has `MAX_UNPAID` unpaid fines.
    @param title The vehicle's title id in the vehicle registry.
    @param token The currency token the fine is paid in.
    @param amount The fine, in the token's smallest unit.
    @param late_fee What is added once the due date has passed.
    @param due The last timestamp at which the fine is paid without the
           late fee.
    @param reason The authority's reason code (the offence).
    @return uint256 The fine's id.
    """
    payout: address = empty(address)
    fee_bps: uint16 = 0
    category: uint8 = 0
    active: bool = False
    payout, fee_bps, category, active = staticcall merchants.merchantTerms(msg.sender)
    assert active and category == AUTHORITY_CATEGORY, "traffic_fines: caller is not an active authority"
    assert staticcall vehicles.titleExists(title), "traffic_fines: unknown vehicle"
    assert token != empty(address), "traffic_fines: zero token"
    assert amount != 0, "traffic_fines: zero amount"
    assert amount <= MAX_AMOUNT, "traffic_fines: amount too large"
    assert late_fee <= MAX_LATE_FEE, "traffic_fines: late fee too large"
    assert due > block.timestamp, "traffic_fines: due date passed"
    assert due < (1 << 64), "traffic_fines: due date too far"
    slot: uint256 = len(self._unpaid[title])
    assert slot < MAX_UNPAID, "traffic_fines: too many unpaid fines"
    fine_id: uint256 = self.fineCount + 1
    self.fineCount = fine_id
    self._fines[fine_id] = StoredFine(
        terms=(
            convert(msg.sender, uint256)
            | (convert(reason, uint256) << _REASON_SHIFT)
            | (convert(STATUS_UNPAID, uint256) << _STATUS_SHIFT)
            | (slot << _SLOT_SHIFT)
            | (due << _DUE_SHIFT)
        ),
        money=convert(token, uint256) | (late_fee << _LATE_FEE_SHIFT),
        title=title,
        amount=amount,
    )
    self._unpaid[title].append(fine_id)
    log FineIssued(
        fine_id=fine_id,
        title=title,
        authority=msg.sender,
        token=token,
        amount=amount,
        late_fee=late_fee,
        due=due,
        reason=reason,
    )
    return fine_id


@external
@nonreentrant
def payFine(fine_id: uint256):
    """
    @dev Pays an unpaid fine: pulls the amount (plus the late fee after the
         due date) from the caller with the token's `transferFrom` to the
         issuing authority's payout. Emits `FinePaid`.
    @notice Only the vehicle's current owner, who has approved this
            contract on the fine's token. Refuses a fine that is not
            unpaid; the token refuses a short balance or allowance.
    @param fine_id The fine's id.
    """
    stored: StoredFine = self._fines[fine_id]
    self._require_unpaid(stored.terms)
    assert staticcall vehicles.ownerOf(stored.title) == msg.sender, (
        "traffic_fines: caller is not the vehicle's owner"
    )
    authority: address = convert(stored.terms & _ADDRESS_MASK, address)
    payout: address = empty(address)
    fee_bps: uint16 = 0
    category: uint8 = 0
    active: bool = False
    payout, fee_bps, category, active = staticcall merchants.merchantTerms(authority)
    late_fee: uint256 = 0
    if block.timestamp > stored.terms >> _DUE_SHIFT:
        late_fee = stored.money >> _LATE_FEE_SHIFT
    # No overflow: amounts stay below 2**128 and late fees below 2**96.
    paid: uint256 = unsafe_add(stored.amount, late_fee)
    token: address = convert(stored.money & _ADDRESS_MASK, address)
    self._close(fine_id, stored, STATUS_PAID)
    log FinePaid(
        fine_id=fine_id,
        title=stored.title,
        payer=msg.sender,
        authority=authority,
        payout=payout,
        token=token,
        paid=paid,
        late_fee=late_fee,
    )
    assert extcall IERC20(token).transferFrom(msg.sender, payout, paid, default_return_value=True), (
        "traffic_fines: transfer failed"
    )


@external
def waiveFine(fine_id: uint256):
    """
    @dev Waives an unpaid fine: nothing is owed any more. Emits `FineWaived`.
    @notice Only the authority that issued it (even if no longer active).
            Refuses a fine that is not unpaid.
    @param fine_id The fine's id.
    """
    stored: StoredFine = self._fines[fine_id]
    self._require_unpaid(stored.terms)
    authority: address = convert(stored.terms & _ADDRESS_MASK, address)
    assert msg.sender == authority, "traffic_fines: caller is not the issuing authority"
    self._close(fine_id, stored, STATUS_WAIVED)
    log FineWaived(fine_id=fine_id, title=stored.title, authority=authority)


@external
@view
def fine(fine_id: uint256) -> Fine:
    """
    @dev A fine's terms and status.
    @notice Anyone may call; an unknown id gives zeros (status 0).
    @param fine_id The fine's id.
    @return Fine The authority, title, token, amount, late fee, due date,
            reason code and status (0 none, 1 unpaid, 2 paid, 3 waived).
    """
    stored: StoredFine = self._fines[fine_id]
    return Fine(
        authority=convert(stored.terms & _ADDRESS_MASK, address),
        title=stored.title,
        token=convert(stored.money & _ADDRESS_MASK, address),
        amount=stored.amount,
        late_fee=stored.money >> _LATE_FEE_SHIFT,
        due=stored.terms >> _DUE_SHIFT,
        reason=convert((stored.terms >> _REASON_SHIFT) & 65535, uint16),
        status=self._status(stored.terms),
    )


@external
@view
def amountDue(fine_id: uint256) -> uint256:
    """
    @dev What paying the fine costs now: the amount, plus the late fee
         after the due date.
    @notice Anyone may call; 0 for a fine that is not unpaid.
    @param fine_id The fine's id.
    @return uint256 The amount due now.
    """
    return self._due_now(self._fines[fine_id])


@external
@view
def unpaidFines(title: uint256) -> DynArray[uint256, MAX_UNPAID]:
    """
    @dev The ids of the vehicle's unpaid fines, in no particular order.
    @notice Anyone may call.
    @param title The vehicle's title id.
    @return DynArray The fine ids.
    """
    return self._unpaid[title]


@external
@view
def outstanding(title: uint256, token: address = empty(address)) -> uint256:
    """
    @dev The total the vehicle's unpaid fines cost now (late fees
         included), in `token`; without a token, over every token (only
         meaningful when all the vehicle's fines are in one currency).
    @notice Anyone may call.
    @param title The vehicle's title id.
    @param token The currency token to total, or the zero address for all.
    @return uint256 The total due now.
    """
    total: uint256 = 0
    for fine_id: uint256 in self._unpaid[title]:
        stored: StoredFine = self._fines[fine_id]
        if token == empty(address) or convert(stored.money & _ADDRESS_MASK, address) == token:
            # No overflow: at most 64 fines, each below 2**129.
            total = unsafe_add(total, self._due_now(stored))
    return total


# -- internals ----------------------------------------------------------------


@internal
def _close(fine_id: uint256, stored: StoredFine, status: uint8):
    """
    @dev Marks a fine paid or waived and takes it off the vehicle's unpaid
         list (the last entry moves into its place).
    """
    slot: uint256 = (stored.terms >> _SLOT_SHIFT) & 255
    last: uint256 = self._unpaid[stored.title].pop()
    if last != fine_id:
        self._unpaid[stored.title][slot] = last
        moved: uint256 = self._fines[last].terms
        self._fines[last].terms = (moved & ~(255 << _SLOT_SHIFT)) | (slot << _SLOT_SHIFT)
    self._fines[fine_id].terms = (stored.terms & ~(255 << _STATUS_SHIFT)) | (
        convert(status, uint256) << _STATUS_SHIFT
    )


@internal
@view
def _due_now(stored: StoredFine) -> uint256:
    """
    @dev What an unpaid fine costs now; 0 if it is not unpaid.
    """
    if self._status(stored.terms) != STATUS_UNPAID:
        return 0
    if block.timestamp > stored.terms >> _DUE_SHIFT:
        return unsafe_add(stored.amount, stored.money >> _LATE_FEE_SHIFT)
    return stored.amount


@internal
@pure
def _status(terms: uint256) -> uint8:
    return convert((terms >> _STATUS_SHIFT) & 255, uint8)


@internal
@pure
def _require_unpaid(terms: uint256):
    """
    @dev Refuses a fine that was never issued, is paid or is waived.
    """
    status: uint8 = self._status(terms)
    assert status != STATUS_NONE, "traffic_fines: unknown fine"
    assert status != STATUS_PAID, "traffic_fines: fine already paid"
    assert status != STATUS_WAIVED, "traffic_fines: fine waived"
