# pragma version ~=0.4.3
"""
@title Vehicle Wallet
@custom:contract-name vehicle_wallet
@license GNU Affero General Public License v3.0 only
@notice A smart account for one vehicle. Its owner is whoever holds the
        vehicle's title in `vehicle_registry` (`ownerOf`, read live), so
        control passes to the buyer on a title transfer, with nothing to
        call. The car holds a device key that spends through `checkout`
        only: it pays invoices (`pay`) and places holds (`placeHold`) of
        active merchants whose category the owner allowed, each payment at
        most the per-payment limit and each day's total (UTC day,
        `block.timestamp // 86400`) at most the daily limit the owner set
        for that token and category; the wallet approves checkout for
        exactly the amount. A hold counts in full when placed (what
        comes back does not restore the limit). The owner sets limits,
        allows categories, freezes the wallet (the device key can no
        longer spend and no signature is valid), rotates the device key
        (a stolen car) and withdraws.
        ERC-1271: `isValidSignature(hash, signature)` accepts the owner's
        signature (ECDSA, or the owner's own ERC-1271 when the owner is a
        contract) of `replaySafeHash(hash)` (EIP-712, this wallet's
        domain, so one signature cannot be replayed on another wallet of
        the same owner), and nothing while frozen. It never accepts the
        device key's: an EIP-3009 authorization or an EIP-2612 permit
        pulls tokens without passing through the wallet, so the wallet
        could not meter it against the limits; the device key pays
        through `pay` and `placeHold`, which do. The owner's signatures
        bypass the limits, as `withdraw` does.
        External functions:
        - device key: `pay`, `placeHold`;
        - owner: `setLimits`, `allowCategory`, `freeze`, `unfreeze`,
          `rotateDeviceKey`, `withdraw`;
        - ERC-1271: `isValidSignature`, `replaySafeHash`,
          `DOMAIN_SEPARATOR`, `eip712Domain`;
        - views: `owner`, `deviceKey`, `frozen`, `isCategoryAllowed`,
          `limits`, `spentToday`, `availableToday`, `vehicles`, `title`,
          `merchants`, `checkout`.
"""


from ethereum.ercs import IERC20


# @dev EIP-712 domain (name "carpay vehicle wallet", version "1") of the
# messages the owner signs for ERC-1271, recomputed when the chain id
# changes.
from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator


# @dev ERC-1271 checks of an owner that is a contract.
from snekmate.utils import signature_checker


exports: eip712_domain_separator.eip712Domain


# @dev An invoice as checkout takes it (see `checkout.vy`).
struct Invoice:
    merchant: address
    amount: uint256
    token: address
    invoice_id: bytes32
    expiry: uint256
    payer: address


# @dev A hold as checkout takes it (see `checkout.vy`).
struct Hold:
    payer: address
    merchant: address
    token: address
    amount: uint256
    deadline: uint256
    salt: bytes32


# @dev What the wallet calls on checkout.
interface ICheckout:
    def payInvoice(invoice: Invoice, signature: Bytes[65]): nonpayable
    def placeHold(hold: Hold): nonpayable
    def holdId(hold: Hold) -> bytes32: view
    def registry() -> address: view


# @dev What the wallet reads from the merchant registry.
interface IMerchantRegistry:
    def merchantTerms(merchant: address) -> (address, uint16, uint8, bool): view


# @dev What the wallet reads from the vehicle registry.
interface IVehicleRegistry:
    def ownerOf(token_id: uint256) -> address: view
    def titleExists(title: uint256) -> bool: view


# @dev How many merchant categories there are (0 dealer ... 8 other).
CATEGORY_COUNT: public(constant(uint8)) = 9


# @dev The largest daily or per-payment limit (2**128 - 1), so that both
# pack in one word and a day's total never overflows.
MAX_LIMIT: public(constant(uint256)) = (1 << 128) - 1


# @dev The EIP-712 type of what the owner signs for `isValidSignature`.
MESSAGE_TYPEHASH: public(constant(bytes32)) = keccak256("VehicleWalletMessage(bytes32 hash)")


# @dev The ERC-1271 magic value (`isValidSignature`'s selector), and the
# answer to a signature that is not valid.
_MAGIC_VALUE: constant(bytes4) = 0x1626ba7e
_INVALID: constant(bytes4) = 0xffffffff


# @dev The largest `s` of a signature that is not malleable (EIP-2).
_MALLEABILITY_THRESHOLD: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev The length of a day in seconds: spending is totalled per UTC day.
_DAY: constant(uint256) = 86_400


# @dev Bit layout of the policy word: the device key in bits 0-159, the
# frozen flag in bit 160, category `c` allowed in bit 168 + `c`. Of a
# limits word: the daily limit in bits 0-127, the per-payment limit in bits
# 128-255. Of a spend word: the amount spent in bits 0-191, its day in bits
# 192-255. So a payment reads three words and writes one.
_FROZEN_BIT: constant(uint256) = 1 << 160
_CATEGORY_SHIFT: constant(uint256) = 168
_PER_PAYMENT_SHIFT: constant(uint256) = 128
_DAY_SHIFT: constant(uint256) = 192
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1
_UINT128_MASK: constant(uint256) = (1 << 128) - 1
_UINT192_MASK: constant(uint256) = (1 << 192) - 1


# @dev The vehicle registry whose title this wallet belongs to.
vehicles: public(immutable(IVehicleRegistry))


# @dev The vehicle's title id: its holder is the wallet's owner.
title: public(immutable(uint256))


# @dev The merchant registry that gives each merchant's category and
# active flag (the one checkout reads).
merchants: public(immutable(IMerchantRegistry))


# @dev The checkout the device key pays through.
checkout: public(immutable(ICheckout))


# @dev The device key, the frozen flag and the allowed categories, packed
# (see `_FROZEN_BIT`).
_policy: uint256


# @dev Each token's limits per category, packed (see `_PER_PAYMENT_SHIFT`);
# zero (nothing may be spent) until the owner sets them.
_limits: HashMap[address, HashMap[uint8, uint256]]


# @dev What the device key spent of each token per category on the day of
# its last payment, packed with that day (see `_DAY_SHIFT`).
_spends: HashMap[address, HashMap[uint8, uint256]]


# @dev Emitted when the device key pays an invoice through checkout;
# `spent_today` is the day's total for the token and category, this
# payment included.
event InvoicePaid:
    invoice_id: indexed(bytes32)
    merchant: indexed(address)
    token: indexed(address)
    category: uint8
    amount: uint256
    spent_today: uint256


# @dev Emitted when the device key places a hold through checkout;
# `spent_today` as in `InvoicePaid`.
event HoldPlaced:
    hold_id: indexed(bytes32)
    merchant: indexed(address)
    token: indexed(address)
    category: uint8
    amount: uint256
    spent_today: uint256


# @dev Emitted when the owner sets a token's limits for a category.
event LimitsSet:
    token: indexed(address)
    category: indexed(uint8)
    daily: uint256
    per_payment: uint256
    owner: address


# @dev Emitted when the owner allows or disallows a category.
event CategoryAllowed:
    category: indexed(uint8)
    allowed: bool
    owner: address


# @dev Emitted when the owner freezes the wallet.
event Frozen:
    owner: indexed(address)


# @dev Emitted when the owner unfreezes the wallet.
event Unfrozen:
    owner: indexed(address)


# @dev Emitted when the device key changes (and at deployment, from the
# zero address); `by` is the owner, or the deployer.
event DeviceKeyRotated:
    previous: indexed(address)
    device_key: indexed(address)
    by: address


# @dev Emitted when the owner withdraws tokens.
event Withdrawn:
    token: indexed(address)
    to: indexed(address)
    amount: uint256
    owner: address


@deploy
def __init__(
    vehicles_: IVehicleRegistry,
    title_: uint256,
    merchants_: IMerchantRegistry,
    checkout_: ICheckout,
    device_key_: address,
):
    """
    @dev Binds the wallet to a vehicle, the merchant registry and checkout,
         and sets the device key. Nothing is allowed and no limit is set:
         the device key spends nothing until the owner says so.
         Emits `DeviceKeyRotated`.
    @notice Anyone may deploy it (the title's holder controls it whoever
            deployed it). Refuses zero addresses, an unknown title and a
            checkout that reads another merchant registry.
    @param vehicles_ The vehicle registry.
    @param title_ The vehicle's title id.
    @param merchants_ The merchant registry.
    @param checkout_ The checkout the device key pays through.
    @param device_key_ The 20-byte address of the car's key (zero for none).
    """
    assert vehicles_.address != empty(address), "vehicle_wallet: zero address"
    assert merchants_.address != empty(address), "vehicle_wallet: zero address"
    assert checkout_.address != empty(address), "vehicle_wallet: zero address"
    assert staticcall vehicles_.titleExists(title_), "vehicle_wallet: unknown vehicle"
    assert staticcall checkout_.registry() == merchants_.address, (
        "vehicle_wallet: checkout reads another registry"
    )
    eip712_domain_separator.__init__("carpay vehicle wallet", "1")
    vehicles = vehicles_
    title = title_
    merchants = merchants_
    checkout = checkout_
    self._policy = convert(device_key_, uint256)
    log DeviceKeyRotated(previous=empty(address), device_key=device_key_, by=msg.sender)


# -- the device key -----------------------------------------------------------


@external
@nonreentrant
def pay(invoice: Invoice, signature: Bytes[65]):
    """
    @dev Pays `invoice` from the wallet through checkout's `payInvoice`,
         after approving checkout for exactly its amount, and adds the
         amount to the day's spending. Emits `InvoicePaid` (and checkout
         its receipt).
    @notice Only the device key, while the wallet is not frozen. Refuses a
            zero amount, an inactive merchant, a category not allowed, an
            amount above the per-payment limit and a day's total above the
            daily limit (limits of the invoice's token); checkout refuses
            what it refuses (expired, paid already, a bad merchant
            signature, another payer).
    @param invoice The invoice the merchant signed.
    @param signature The merchant's signature of the invoice's digest.
    """
    category: uint8 = 0
    spent: uint256 = 0
    category, spent = self._spend(invoice.merchant, invoice.token, invoice.amount)
    log InvoicePaid(
        invoice_id=invoice.invoice_id,
        merchant=invoice.merchant,
        token=invoice.token,
        category=category,
        amount=invoice.amount,
        spent_today=spent,
    )
    self._approve_checkout(invoice.token, invoice.amount)
    extcall checkout.payInvoice(invoice, signature)


@external
@nonreentrant
def placeHold(hold: Hold):
    """
    @dev Places `hold` from the wallet through checkout's `placeHold`,
         after approving checkout for exactly its amount, and adds the
         whole amount to the day's spending (what a capture leaves comes
         back to the wallet but does not restore the limit).
         Emits `HoldPlaced` (and checkout its own).
    @notice Only the device key, while the wallet is not frozen. Refuses a
            hold whose payer is not the wallet, and as `pay` does for the
            merchant, the category and the limits; checkout refuses what
            it refuses (deadline passed, hold exists).
    @param hold The hold; its payer must be this wallet.
    """
    assert hold.payer == self, "vehicle_wallet: hold payer is not the wallet"
    category: uint8 = 0
    spent: uint256 = 0
    category, spent = self._spend(hold.merchant, hold.token, hold.amount)
    log HoldPlaced(
        hold_id=staticcall checkout.holdId(hold),
        merchant=hold.merchant,
        token=hold.token,
        category=category,
        amount=hold.amount,
        spent_today=spent,
    )
    self._approve_checkout(hold.token, hold.amount)
    extcall checkout.placeHold(hold)


# -- the owner ----------------------------------------------------------------


@external
def setLimits(token: address, category: uint8, daily: uint256, per_payment: uint256):
    """
    @dev Sets what the device key may spend of `token` at merchants of
         `category`: per UTC day and per payment. Lowering the daily limit
         below what was spent today stops payments until tomorrow.
         Emits `LimitsSet`.
    @notice Only the vehicle's owner. Refuses the zero address as token, an
            unknown category and a limit above `MAX_LIMIT`.
    @param token The currency token the limits are in.
    @param category The merchant category (0 dealer ... 8 other).
    @param daily The most spent per day, in the token's smallest unit.
    @param per_payment The most spent per payment or hold.
    """
    self._require_owner()
    assert token != empty(address), "vehicle_wallet: zero token"
    assert category < CATEGORY_COUNT, "vehicle_wallet: unknown category"
    assert daily <= MAX_LIMIT, "vehicle_wallet: limit too large"
    assert per_payment <= MAX_LIMIT, "vehicle_wallet: limit too large"
    self._limits[token][category] = daily | (per_payment << _PER_PAYMENT_SHIFT)
    log LimitsSet(
        token=token, category=category, daily=daily, per_payment=per_payment, owner=msg.sender
    )


@external
def allowCategory(category: uint8, allowed: bool):
    """
    @dev Allows or disallows the device key to pay merchants of
         `category` (the limits stay as they are). Emits `CategoryAllowed`.
    @notice Only the vehicle's owner. Refuses an unknown category.
    @param category The merchant category (0 dealer ... 8 other).
    @param allowed True to allow, False to disallow.
    """
    self._require_owner()
    assert category < CATEGORY_COUNT, "vehicle_wallet: unknown category"
    bit: uint256 = 1 << (_CATEGORY_SHIFT + convert(category, uint256))
    if allowed:
        self._policy = self._policy | bit
    else:
        self._policy = self._policy & ~bit
    log CategoryAllowed(category=category, allowed=allowed, owner=msg.sender)


@external
def freeze():
    """
    @dev Freezes the wallet: the device key can no longer pay or place
         holds, and `isValidSignature` accepts nothing (so no signed
         authorization pulls tokens). The owner's functions still work.
         Emits `Frozen`.
    @notice Only the vehicle's owner. Refuses a frozen wallet.
    """
    self._require_owner()
    policy: uint256 = self._policy
    assert policy & _FROZEN_BIT == 0, "vehicle_wallet: frozen"
    self._policy = policy | _FROZEN_BIT
    log Frozen(owner=msg.sender)


@external
def unfreeze():
    """
    @dev Lets the device key spend again, within its limits, and the
         owner's signatures count again. Emits `Unfrozen`.
    @notice Only the vehicle's owner. Refuses a wallet that is not frozen.
    """
    self._require_owner()
    policy: uint256 = self._policy
    assert policy & _FROZEN_BIT != 0, "vehicle_wallet: not frozen"
    self._policy = policy ^ _FROZEN_BIT
    log Unfrozen(owner=msg.sender)


@external
def rotateDeviceKey(device_key: address):
    """
    @dev Replaces the device key (a stolen car, a new head unit); the old
         key is refused from now on. The zero address leaves the wallet
         without a device key. Frozen stays frozen, and the day's spending
         stays counted. Emits `DeviceKeyRotated`.
    @notice Only the vehicle's owner.
    @param device_key The 20-byte address of the new key.
    """
    self._require_owner()
    policy: uint256 = self._policy
    self._policy = (policy & ~_ADDRESS_MASK) | convert(device_key, uint256)
    log DeviceKeyRotated(
        previous=convert(policy & _ADDRESS_MASK, address), device_key=device_key, by=msg.sender
    )


@external
@nonreentrant
def withdraw(token: address, to: address, amount: uint256):
    """
    @dev Sends `amount` of `token` from the wallet to `to`, whatever the
         limits, also while frozen. Emits `Withdrawn`.
    @notice Only the vehicle's owner. Refuses the zero address as
            recipient; the token refuses a short balance.
    @param token The token to send.
    @param to The 20-byte address of the recipient.
    @param amount The amount, in the token's smallest unit.
    """
    self._require_owner()
    assert to != empty(address), "vehicle_wallet: zero address"
    log Withdrawn(token=token, to=to, amount=amount, owner=msg.sender)
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), (
        "vehicle_wallet: transfer failed"
    )


# -- ERC-1271 -----------------------------------------------------------------


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev ERC-1271: whether `signature` is the wallet's signature of
         `hash`, that is the current owner's signature of
         `replaySafeHash(hash)` (ECDSA `r ‖ s ‖ v`, or what the owner's
         own ERC-1271 accepts when the owner is a contract). The device
         key's signatures never count (see the contract's notice), nor
         anyone's while the wallet is frozen; a former owner's stop
         counting when the title moves.
    @notice Anyone may call.
    @param hash The 32-byte digest that was signed (an EIP-3009
           authorization or an EIP-2612 permit of the wallet, say).
    @param signature The signature, at most 65 bytes.
    @return bytes4 The magic value `0x1626ba7e`, or `0xffffffff`.
    """
    if self._policy & _FROZEN_BIT != 0:
        return _INVALID
    owner: address = staticcall vehicles.ownerOf(title)
    digest: bytes32 = self._replay_safe_hash(hash)
    valid: bool = False
    if owner.is_contract:
        valid = signature_checker._is_valid_ERC1271_signature_now(owner, digest, signature)
    else:
        valid = self._is_owner_ecdsa(owner, digest, signature)
    if valid:
        return _MAGIC_VALUE
    return _INVALID


@external
@view
def replaySafeHash(hash: bytes32) -> bytes32:
    """
    @dev What the owner signs for the wallet to sign `hash`: the EIP-712
         digest of `VehicleWalletMessage(bytes32 hash)` in this wallet's
         domain, so a signature for one wallet is not valid for another.
    @notice Anyone may call.
    @param hash The 32-byte digest the wallet is to sign.
    @return bytes32 The 32-byte digest the owner signs.
    """
    return self._replay_safe_hash(hash)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev The EIP-712 domain separator of `replaySafeHash`.
    @notice Anyone may call.
    @return bytes32 The 32-byte domain separator.
    """
    return eip712_domain_separator._domain_separator_v4()


# -- views --------------------------------------------------------------------


@external
@view
def owner() -> address:
    """
    @dev The wallet's owner: the holder of the vehicle's title, now.
    @notice Anyone may call.
    @return address The 20-byte address of the owner.
    """
    return staticcall vehicles.ownerOf(title)


@external
@view
def deviceKey() -> address:
    """
    @dev The car's key, which pays within the limits.
    @notice Anyone may call.
    @return address The 20-byte address of the device key (zero for none).
    """
    return convert(self._policy & _ADDRESS_MASK, address)


@external
@view
def frozen() -> bool:
    """
    @dev Whether the owner froze the wallet.
    @notice Anyone may call.
    @return bool True while frozen.
    """
    return self._policy & _FROZEN_BIT != 0


@external
@view
def isCategoryAllowed(category: uint8) -> bool:
    """
    @dev Whether the device key may pay merchants of `category`.
    @notice Anyone may call; False for an unknown category.
    @param category The merchant category.
    @return bool True when allowed.
    """
    return self._allows(self._policy, category)


@external
@view
def limits(token: address, category: uint8) -> (uint256, uint256):
    """
    @dev The device key's limits for `token` at merchants of `category`.
    @notice Anyone may call.
    @param token The currency token.
    @param category The merchant category.
    @return uint256 The daily limit.
    @return uint256 The per-payment limit.
    """
    word: uint256 = self._limits[token][category]
    return word & _UINT128_MASK, word >> _PER_PAYMENT_SHIFT


@external
@view
def spentToday(token: address, category: uint8) -> uint256:
    """
    @dev What the device key spent of `token` at merchants of `category`
         today (UTC day of the current block).
    @notice Anyone may call.
    @param token The currency token.
    @param category The merchant category.
    @return uint256 The amount spent today.
    """
    return self._spent_today(self._spends[token][category])


@external
@view
def availableToday(token: address, category: uint8) -> uint256:
    """
    @dev The largest payment the device key can make now in `token` at a
         merchant of `category`: 0 while frozen or when the category is
         not allowed, else the smaller of the per-payment limit and what
         is left of the daily limit (the wallet's balance aside).
    @notice Anyone may call.
    @param token The currency token.
    @param category The merchant category.
    @return uint256 The amount available.
    """
    policy: uint256 = self._policy
    if policy & _FROZEN_BIT != 0 or not self._allows(policy, category):
        return 0
    word: uint256 = self._limits[token][category]
    daily: uint256 = word & _UINT128_MASK
    spent: uint256 = self._spent_today(self._spends[token][category])
    if spent >= daily:
        return 0
    return min(unsafe_sub(daily, spent), word >> _PER_PAYMENT_SHIFT)


# -- internals ----------------------------------------------------------------


@internal
def _spend(merchant: address, token: address, amount: uint256) -> (uint8, uint256):
    """
    @dev Checks a payment of the device key against the policy and adds
         it to the day's spending; returns the merchant's category and the
         day's new total.
    """
    policy: uint256 = self._policy
    assert msg.sender == convert(policy & _ADDRESS_MASK, address), (
        "vehicle_wallet: caller is not the device key"
    )
    assert policy & _FROZEN_BIT == 0, "vehicle_wallet: frozen"
    assert amount != 0, "vehicle_wallet: zero amount"
    payout: address = empty(address)
    fee_bps: uint16 = 0
    category: uint8 = 0
    active: bool = False
    payout, fee_bps, category, active = staticcall merchants.merchantTerms(merchant)
    assert active, "vehicle_wallet: merchant inactive"
    assert self._allows(policy, category), "vehicle_wallet: category not allowed"
    word: uint256 = self._limits[token][category]
    assert amount <= word >> _PER_PAYMENT_SHIFT, "vehicle_wallet: over per-payment limit"
    # No overflow: the amount is at most the per-payment limit (below
    # 2**128) and a day's total at most the daily limit (below 2**128).
    spent: uint256 = unsafe_add(self._spent_today(self._spends[token][category]), amount)
    assert spent <= word & _UINT128_MASK, "vehicle_wallet: over daily limit"
    self._spends[token][category] = spent | ((block.timestamp // _DAY) << _DAY_SHIFT)
    return category, spent


@internal
@view
def _spent_today(word: uint256) -> uint256:
    """
    @dev The amount in a spend word if its day is today, else 0.
    """
    if word >> _DAY_SHIFT != block.timestamp // _DAY:
        return 0
    return word & _UINT192_MASK


@internal
@pure
def _allows(policy: uint256, category: uint8) -> bool:
    """
    @dev Whether the policy word allows `category` (never one above 8).
    """
    return category < CATEGORY_COUNT and (
        policy >> (_CATEGORY_SHIFT + convert(category, uint256))
    ) & 1 != 0


@internal
def _approve_checkout(token: address, amount: uint256):
    """
    @dev Lets checkout pull exactly `amount` of `token`; checkout's pull
         uses it up, so no allowance outlives the call.
    """
    assert extcall IERC20(token).approve(checkout.address, amount, default_return_value=True), (
        "vehicle_wallet: approve failed"
    )


@internal
@view
def _require_owner():
    """
    @dev Refuses a caller that does not hold the vehicle's title now.
    """
    assert msg.sender == staticcall vehicles.ownerOf(title), (
        "vehicle_wallet: caller is not the vehicle's owner"
    )


@internal
@pure
def _is_owner_ecdsa(owner: address, digest: bytes32, signature: Bytes[65]) -> bool:
    """
    @dev Whether `signature` is `owner`'s 65-byte ECDSA signature of
         `digest` with a low `s` (EIP-2). Unlike snekmate's `ecdsa`, a
         malformed signature is an answer (False), not a revert.
    """
    if len(signature) != 65:
        return False
    s: uint256 = extract32(signature, 32, output_type=uint256)
    if s > _MALLEABILITY_THRESHOLD:
        return False
    r: uint256 = extract32(signature, 0, output_type=uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    signer: address = ecrecover(digest, v, r, s)
    return signer != empty(address) and signer == owner


@internal
@view
def _replay_safe_hash(hash: bytes32) -> bytes32:
    """
    @dev The EIP-712 digest of `VehicleWalletMessage(hash)` in this
         wallet's domain.
    """
    return eip712_domain_separator._hash_typed_data_v4(keccak256(abi_encode(MESSAGE_TYPEHASH, hash)))
