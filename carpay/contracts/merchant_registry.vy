# pragma version ~=0.4.3
"""
@title Merchant Registry
@custom:contract-name merchant_registry
@license GNU Affero General Public License v3.0 only
@notice The merchants the platform accepts payments for, and where the
        platform's fees go. Each merchant (the address that signs its
        invoices and captures its holds) has a category, a payout address,
        a fee tier in basis points (at most `MAX_FEE_BPS`) and an active
        flag, packed in one storage word so that `checkout` reads a
        merchant with one cold `SLOAD`. Only the owner (`ownable_2step`)
        changes anything, and every change emits an event.
        External functions:
        - `registerMerchant`, `setPayout`, `setFeeTier`, `setCategory`,
          `setActive`, `setTreasury` (owner only),
        - `merchantTerms`, `isRegistered`, `treasury` (views),
        - `owner`, `pending_owner`, `transfer_ownership`,
          `accept_ownership`, `renounce_ownership` (from `ownable_2step`).
        Categories: 0 dealer, 1 insurer, 2 fuel, 3 ev_charging, 4 repair,
        5 parking, 6 toll, 7 authority, 8 other.
"""


# @dev The owner is the platform; ownership moves in two steps.
from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]


exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    ownable_2step.renounce_ownership,
)


# @dev The highest fee tier: 1,000 basis points (10%).
MAX_FEE_BPS: public(constant(uint16)) = 1_000


# @dev The highest category number (8, `other`).
MAX_CATEGORY: public(constant(uint8)) = 8


# @dev Bit layout of a merchant's word: payout in bits 0-159, fee tier in
# bits 160-175, category in bits 176-183, active flag in bit 184. A zero
# word is an unregistered merchant (a registered one has a payout).
_FEE_SHIFT: constant(uint256) = 160
_CATEGORY_SHIFT: constant(uint256) = 176
_ACTIVE_SHIFT: constant(uint256) = 184
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1


# @dev The packed terms of each merchant, keyed by the merchant's address.
_merchants: HashMap[address, uint256]


# @dev Where the platform's fees are paid.
treasury: public(address)


# @dev Emitted when the owner registers a merchant (it starts active).
event MerchantRegistered:
    merchant: indexed(address)
    payout: indexed(address)
    category: uint8
    fee_bps: uint16


# @dev Emitted when a merchant's payout address changes.
event PayoutChanged:
    merchant: indexed(address)
    previous: address
    payout: address


# @dev Emitted when a merchant's fee tier changes.
event FeeTierChanged:
    merchant: indexed(address)
    previous: uint16
    fee_bps: uint16


# @dev Emitted when a merchant's category changes.
event CategoryChanged:
    merchant: indexed(address)
    previous: uint8
    category: uint8


# @dev Emitted when a merchant is activated or deactivated.
event ActiveChanged:
    merchant: indexed(address)
    active: bool


# @dev Emitted when the fee recipient changes.
event TreasuryChanged:
    previous: indexed(address)
    treasury: indexed(address)


@deploy
def __init__(treasury_: address):
    """
    @dev Makes the deployer the owner and sets the fee recipient.
    @notice Refuses the zero address as treasury.
    @param treasury_ The 20-byte address the platform's fees are paid to.
    """
    ownable.__init__()
    ownable_2step.__init__()
    assert treasury_ != empty(address), "merchant_registry: zero treasury"
    self.treasury = treasury_
    log TreasuryChanged(previous=empty(address), treasury=treasury_)


@external
def registerMerchant(merchant: address, category: uint8, payout: address, fee_bps: uint16):
    """
    @dev Registers `merchant`, active, with its category, payout and fee tier.
    @notice Only the owner; refuses a zero merchant or payout, a merchant
            already registered, a category above 8 and a fee tier above
            1,000 basis points.
    @param merchant The 20-byte address that signs the merchant's invoices.
    @param category The category number (0 dealer ... 8 other).
    @param payout The 20-byte address the merchant's proceeds are paid to.
    @param fee_bps The platform's fee on each payment, in basis points.
    """
    ownable._check_owner()
    assert merchant != empty(address), "merchant_registry: zero merchant"
    assert self._merchants[merchant] == 0, "merchant_registry: already registered"
    self._merchants[merchant] = self._pack(payout, fee_bps, category, True)
    log MerchantRegistered(merchant=merchant, payout=payout, category=category, fee_bps=fee_bps)


@external
def setPayout(merchant: address, payout: address):
    """
    @dev Changes where `merchant`'s proceeds are paid.
    @notice Only the owner; refuses an unknown merchant and a zero payout.
    @param merchant The 20-byte address of a registered merchant.
    @param payout The new 20-byte payout address.
    """
    ownable._check_owner()
    word: uint256 = self._registered(merchant)
    self._merchants[merchant] = self._pack(payout, self._fee(word), self._category(word), self._active(word))
    log PayoutChanged(merchant=merchant, previous=self._payout(word), payout=payout)


@external
def setFeeTier(merchant: address, fee_bps: uint16):
    """
    @dev Changes `merchant`'s fee tier.
    @notice Only the owner; refuses an unknown merchant and a tier above
            1,000 basis points.
    @param merchant The 20-byte address of a registered merchant.
    @param fee_bps The new fee tier, in basis points.
    """
    ownable._check_owner()
    word: uint256 = self._registered(merchant)
    self._merchants[merchant] = self._pack(self._payout(word), fee_bps, self._category(word), self._active(word))
    log FeeTierChanged(merchant=merchant, previous=self._fee(word), fee_bps=fee_bps)


@external
def setCategory(merchant: address, category: uint8):
    """
    @dev Changes `merchant`'s category.
    @notice Only the owner; refuses an unknown merchant and a category above 8.
    @param merchant The 20-byte address of a registered merchant.
    @param category The new category number.
    """
    ownable._check_owner()
    word: uint256 = self._registered(merchant)
    self._merchants[merchant] = self._pack(self._payout(word), self._fee(word), category, self._active(word))
    log CategoryChanged(merchant=merchant, previous=self._category(word), category=category)


@external
def setActive(merchant: address, active: bool):
    """
    @dev Activates or deactivates `merchant`; checkout refuses new payments
         and captures for an inactive merchant.
    @notice Only the owner; refuses an unknown merchant.
    @param merchant The 20-byte address of a registered merchant.
    @param active True to accept payments for the merchant again.
    """
    ownable._check_owner()
    word: uint256 = self._registered(merchant)
    self._merchants[merchant] = self._pack(self._payout(word), self._fee(word), self._category(word), active)
    log ActiveChanged(merchant=merchant, active=active)


@external
def setTreasury(treasury_: address):
    """
    @dev Changes where the platform's fees are paid.
    @notice Only the owner; refuses the zero address.
    @param treasury_ The new 20-byte fee recipient.
    """
    ownable._check_owner()
    assert treasury_ != empty(address), "merchant_registry: zero treasury"
    log TreasuryChanged(previous=self.treasury, treasury=treasury_)
    self.treasury = treasury_


@external
@view
def merchantTerms(merchant: address) -> (address, uint16, uint8, bool):
    """
    @dev The terms checkout pays `merchant` by, read from one storage word.
    @notice Anyone may call; an unknown merchant gives zeros (inactive).
    @param merchant The 20-byte address of the merchant.
    @return address The payout address.
    @return uint16 The fee tier in basis points.
    @return uint8 The category number.
    @return bool Whether the merchant is active.
    """
    word: uint256 = self._merchants[merchant]
    return self._payout(word), self._fee(word), self._category(word), self._active(word)


@external
@view
def isRegistered(merchant: address) -> bool:
    """
    @dev Whether `merchant` was ever registered (active or not).
    @notice Anyone may call.
    @param merchant The 20-byte address of the merchant.
    @return bool True if the merchant is registered.
    """
    return self._merchants[merchant] != 0


@internal
@view
def _registered(merchant: address) -> uint256:
    word: uint256 = self._merchants[merchant]
    assert word != 0, "merchant_registry: unknown merchant"
    return word


@internal
@pure
def _pack(payout: address, fee_bps: uint16, category: uint8, active: bool) -> uint256:
    assert payout != empty(address), "merchant_registry: zero payout"
    assert fee_bps <= MAX_FEE_BPS, "merchant_registry: fee above cap"
    assert category <= MAX_CATEGORY, "merchant_registry: unknown category"
    return (
        convert(payout, uint256)
        | (convert(fee_bps, uint256) << _FEE_SHIFT)
        | (convert(category, uint256) << _CATEGORY_SHIFT)
        | (convert(active, uint256) << _ACTIVE_SHIFT)
    )


@internal
@pure
def _payout(word: uint256) -> address:
    return convert(word & _ADDRESS_MASK, address)


@internal
@pure
def _fee(word: uint256) -> uint16:
    return convert((word >> _FEE_SHIFT) & convert(max_value(uint16), uint256), uint16)


@internal
@pure
def _category(word: uint256) -> uint8:
    return convert((word >> _CATEGORY_SHIFT) & convert(max_value(uint8), uint256), uint8)


@internal
@pure
def _active(word: uint256) -> bool:
    return (word >> _ACTIVE_SHIFT) & 1 == 1
