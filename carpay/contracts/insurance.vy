# pragma version ~=0.4.3
"""
@title Vehicle Insurance: Offers, Auto-Renewal, Cancellation, Claims
@custom:contract-name insurance
@license GNU Affero General Public License v3.0 only
@notice Policies that insurers offer for a vehicle. An insurer is an
        active merchant of category 1 (`insurer`) in `merchant_registry`;
        a vehicle is a title of `vehicle_registry`. An offer names the
        vehicle, the currency token, the premium, the term, the grace
        period, the refund rule and the last moment it may be accepted.
        A policy starts only when the vehicle's owner accepts the offer
        (`accept`, or anyone submitting the owner's EIP-712
        `PolicyAcceptance` with `acceptWithSignature`): the first premium
        is pulled from the owner, who becomes the policyholder, and the
        acceptance fixes the most a renewal may pull (`maxPremium`). An
        owner's signatures carry their next nonce: any direct `accept` of
        theirs, or `useNonce`, voids the ones not yet submitted, so an
        old signature never raises a maximum the owner lowered since.
        Auto-renewal: once a term has ended, anyone (a keeper) may
        `renew` the policy during its grace period: the current premium
        is pulled from the holder (within their allowance to this
        contract) and never above the accepted maximum; a higher premium
        needs the holder's new acceptance (`accept` again, or a new
        signature). The next term starts where the last one ended; as the
        grace period is at most the term, a renewal never pays for a term
        that is already over. A
        policy not renewed by the end of its grace period lapses
        (`lapse`, by anyone; `isCovered` is false from then on even
        before the call). Renewal is refused while the holder no longer
        owns the vehicle: a policy does not pass to a buyer.
        Premiums are held here and earned by the insurer as time passes;
        the earned part is credited to the insurer (`collect`, by anyone,
        and at every renewal, cancellation and lapse) and paid out by
        `withdrawEarnings` to the insurer's payout, less the platform fee
        of its fee tier to the treasury. The holder may cancel at any
        time: the refund is the unearned part of the current term's
        premium times the insurer's refund rule (`refund_bps`, fixed in
        the offer; 10,000 is fully pro rata), the rest goes to the
        insurer. A holder's refund never depends on the insurer's funds.
        Claims are paid by the insurer from its own balance to the holder
        (`payClaim`) and recorded against the policy and the vehicle; a
        claim reference is paid once per policy.
        Premiums must arrive whole: a token that delivers less than it
        was asked to move (a fee on transfer) is refused, so what is held
        always covers what is owed.
        External functions:
        - `offerPolicy`, `withdrawOffer`, `setPremium`, `payClaim` (the
          insurer), `withdrawEarnings` (an insurer);
        - `accept` (the vehicle's owner, then the holder),
          `acceptWithSignature` (anyone, with the owner's signature),
          `useNonce` (an owner), `cancel` (the holder);
        - `renew`, `lapse`, `collect` (anyone);
        - `policy`, `isCovered`, `paidThrough`, `collectable`,
          `cancellationRefund`, `policyCount`, `earnings`, `claimsPaid`,
          `claimCount`, `claimReferenceUsed`, `nonces`, `acceptanceHash`, `DOMAIN_SEPARATOR`,
          `eip712Domain`, `merchants`, `vehicles` (views).
"""


from ethereum.ercs import IERC20


# @dev EIP-712 domain (name "carpay insurance", version "1") that owners
# sign acceptances in, recomputed when the chain id changes.
from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator


# @dev ERC-1271 checks for owners that are contracts.
from snekmate.utils import signature_checker


exports: eip712_domain_separator.eip712Domain


# @dev What this contract reads from the merchant registry.
interface IMerchantRegistry:
    def merchantTerms(merchant: address) -> (address, uint16, uint8, bool): view
    def treasury() -> address: view


# @dev What this contract reads from the vehicle registry.
interface IVehicleRegistry:
    def ownerOf(token_id: uint256) -> address: view
    def titleExists(title: uint256) -> bool: view


# @dev The merchant category of insurers.
INSURER_CATEGORY: public(constant(uint8)) = 1


# @dev The largest premium (2**96 - 1), so that it packs with an address.
MAX_PREMIUM: public(constant(uint256)) = (1 << 96) - 1


# @dev The longest term and grace period: 2**32 - 1 seconds.
MAX_PERIOD: public(constant(uint256)) = (1 << 32) - 1


# @dev The refund rule of a fully pro-rata refund: 10,000 basis points.
MAX_REFUND_BPS: public(constant(uint16)) = 10_000


# @dev The EIP-712 type hash of an owner's acceptance.
POLICY_ACCEPTANCE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "PolicyAcceptance(uint256 policyId,address holder,uint256 maxPremium,uint256 nonce,uint256 deadline)"
)


# @dev `policy` statuses. A policy past its grace period stays ACTIVE in
# storage until `lapse` is called; `policy` and `isCovered` report it as
# lapsed at once.
STATUS_NONE: public(constant(uint8)) = 0
STATUS_OFFERED: public(constant(uint8)) = 1
STATUS_ACTIVE: public(constant(uint8)) = 2
STATUS_LAPSED: public(constant(uint8)) = 3
STATUS_CANCELLED: public(constant(uint8)) = 4
STATUS_WITHDRAWN: public(constant(uint8)) = 5


# @dev The denominator of fees and refund rules: basis points.
_BPS: constant(uint256) = 10_000


# @dev Bit layout of a policy's `terms` word: the insurer in bits 0-159,
# the refund rule in bits 160-175, the status in bits 176-183, the term in
# bits 184-215, the grace period in bits 216-247. Of its `holder` word:
# the holder in bits 0-159, the accepted maximum premium in bits 160-255.
# Of its `money` word: the token in bits 0-159, the premium (of the offer,
# then of the next renewal) in bits 160-255. Of its `period` word: the
# start of the current term in bits 0-63 (while offered: the last moment
# the offer may be accepted), the premium paid for the current term in
# bits 64-159, the part of it already credited to the insurer in bits
# 160-255.
_REFUND_SHIFT: constant(uint256) = 160
_STATUS_SHIFT: constant(uint256) = 176
_TERM_SHIFT: constant(uint256) = 184
_GRACE_SHIFT: constant(uint256) = 216
_AMOUNT_SHIFT: constant(uint256) = 160
_PAID_SHIFT: constant(uint256) = 64
_CREDITED_SHIFT: constant(uint256) = 160
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1
_UINT96_MASK: constant(uint256) = (1 << 96) - 1
_UINT64_MASK: constant(uint256) = (1 << 64) - 1
_UINT32_MASK: constant(uint256) = (1 << 32) - 1


# @dev The largest `s` of a signature that is not malleable (EIP-2).
_MALLEABILITY_THRESHOLD: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev A policy as stored: five words (see the bit layout above).
struct StoredPolicy:
    terms: uint256
    holder: uint256
    money: uint256
    title: uint256
    period: uint256


# @dev A policy as `policy` returns it.
struct Policy:
    insurer: address
    title: uint256
    token: address
    premium: uint256
    term: uint256
    grace: uint256
    refund_bps: uint16
    holder: address
    max_premium: uint256
    start: uint256
    paid_through: uint256
    status: uint8


# @dev The merchant registry that says who is an active insurer, where its
# earnings are paid and what the platform's fee is.
merchants: public(immutable(IMerchantRegistry))


# @dev The vehicle registry whose vehicles are insured.
vehicles: public(immutable(IVehicleRegistry))


# @dev How many policies were ever offered; policy ids run from 1.
policyCount: public(uint256)


# @dev What each insurer has earned and not withdrawn, per token.
earnings: public(HashMap[address, HashMap[address, uint256]])


# @dev The total of the claims paid under each policy.
claimsPaid: public(HashMap[uint256, uint256])


# @dev How many claims were paid for each vehicle (title id), under any
# policy.
claimCount: public(HashMap[uint256, uint256])


# @dev The next nonce of each owner's signed acceptances.
nonces: public(HashMap[address, uint256])


# @dev The claim references already paid under each policy.
claimReferenceUsed: public(HashMap[uint256, HashMap[bytes32, bool]])


# @dev Every policy, by id.
_policies: HashMap[uint256, StoredPolicy]


# @dev Emitted when an insurer offers a policy.
event PolicyOffered:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    insurer: indexed(address)
    token: address
    premium: uint256
    term: uint256
    grace: uint256
    refund_bps: uint16
    offer_expiry: uint256


# @dev Emitted when an owner's nonce is used up without a signature: the
# acceptances they signed with it are void.
event NonceUsed:
    owner: indexed(address)
    nonce: uint256


# @dev Emitted when an insurer withdraws an offer nobody accepted.
event OfferWithdrawn:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    insurer: indexed(address)


# @dev Emitted when the vehicle's owner accepts an offer: the policy is in
# force from `start` to `paid_through`, the first `premium` paid.
event PolicyAccepted:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    holder: indexed(address)
    premium: uint256
    max_premium: uint256
    start: uint256
    paid_through: uint256


# @dev Emitted when the holder sets the most a renewal may pull.
event MaxPremiumAccepted:
    policy_id: indexed(uint256)
    holder: indexed(address)
    max_premium: uint256


# @dev Emitted when the insurer sets the premium of the next renewals.
event PremiumChanged:
    policy_id: indexed(uint256)
    previous: uint256
    premium: uint256


# @dev Emitted when a policy renews: `premium` pulled from the holder for
# the term from `start` to `paid_through`.
event PolicyRenewed:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    holder: indexed(address)
    keeper: address
    premium: uint256
    start: uint256
    paid_through: uint256


# @dev Emitted when a policy lapses at the end of its grace period.
event PolicyLapsed:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    holder: indexed(address)
    paid_through: uint256


# @dev Emitted when the holder cancels; `refund` went back to them.
event PolicyCancelled:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    holder: indexed(address)
    refund: uint256


# @dev Emitted when premium is credited to the insurer as earned.
event PremiumEarned:
    policy_id: indexed(uint256)
    insurer: indexed(address)
    token: indexed(address)
    amount: uint256


# @dev Emitted when an insurer withdraws its earnings: `amount` in total,
# of which `fee` went to the treasury and the rest to `payout`.
event EarningsWithdrawn:
    insurer: indexed(address)
    token: indexed(address)
    payout: indexed(address)
    amount: uint256
    fee: uint256


# @dev Emitted when the insurer pays a claim to the holder.
event ClaimPaid:
    policy_id: indexed(uint256)
    title: indexed(uint256)
    holder: indexed(address)
    insurer: address
    token: address
    amount: uint256
    reference: bytes32


@deploy
def __init__(merchants_: IMerchantRegistry, vehicles_: IVehicleRegistry):
    """
    @dev Binds the contract to a merchant registry and a vehicle registry.
    @notice Anyone may deploy it; refuses zero addresses.
    @param merchants_ The merchant registry (insurers, payouts, fees).
    @param vehicles_ The vehicle registry (titles and their owners).
    """
    assert merchants_.address != empty(address), "insurance: zero address"
    assert vehicles_.address != empty(address), "insurance: zero address"
    eip712_domain_separator.__init__("carpay insurance", "1")
    merchants = merchants_
    vehicles = vehicles_


@external
def offerPolicy(
    title: uint256,
    token: address,
    premium: uint256,
    term: uint256,
    grace: uint256,
    refund_bps: uint16,
    offer_expiry: uint256,
) -> uint256:
    """
    @dev Offers a policy for the vehicle `title`; nothing moves until its
         owner accepts. Emits `PolicyOffered`.
    @notice Only an active merchant of category 1 (insurer). Refuses an
            unknown vehicle, a token that is not a contract, a zero
            premium, a premium above `MAX_PREMIUM`, a zero term, a term
            above `MAX_PERIOD`, a zero grace period, a grace period longer
            than the term (a renewal would pay for a term already over), a
            refund rule above 10,000 and an offer expiry not in the future.
    @param title The vehicle's title id in the vehicle registry.
    @param token The currency token of the premium.
    @param premium The premium of a term, in the token's smallest unit.
    @param term The length of a term, in seconds.
    @param grace How long after a term ends a renewal may still pull the
           premium, in seconds.
    @param refund_bps The share of the unearned premium a cancelling
           holder gets back, in basis points.
    @param offer_expiry The last timestamp at which the offer may be
           accepted.
    @return uint256 The policy's id.
    """
    self._require_active_insurer(msg.sender)
    assert staticcall vehicles.titleExists(title), "insurance: unknown vehicle"
    assert token.is_contract, "insurance: token is not a contract"
    self._require_premium(premium)
    assert term != 0, "insurance: zero term"
    assert term <= MAX_PERIOD, "insurance: period too long"
    assert grace != 0, "insurance: zero grace period"
    assert grace <= term, "insurance: grace period longer than the term"
    assert refund_bps <= MAX_REFUND_BPS, "insurance: refund rule above 100%"
    assert offer_expiry > block.timestamp, "insurance: offer expiry passed"
    assert offer_expiry <= _UINT64_MASK, "insurance: offer expiry too far"
    policy_id: uint256 = self.policyCount + 1
    self.policyCount = policy_id
    self._policies[policy_id] = StoredPolicy(
        terms=(
            convert(msg.sender, uint256)
            | (convert(refund_bps, uint256) << _REFUND_SHIFT)
            | (convert(STATUS_OFFERED, uint256) << _STATUS_SHIFT)
            | (term << _TERM_SHIFT)
            | (grace << _GRACE_SHIFT)
        ),
        holder=0,
        money=convert(token, uint256) | (premium << _AMOUNT_SHIFT),
        title=title,
        period=offer_expiry,
    )
    log PolicyOffered(
        policy_id=policy_id,
        title=title,
        insurer=msg.sender,
        token=token,
        premium=premium,
        term=term,
        grace=grace,
        refund_bps=refund_bps,
        offer_expiry=offer_expiry,
    )
    return policy_id


@external
def withdrawOffer(policy_id: uint256):
    """
    @dev Withdraws an offer nobody has accepted. Emits `OfferWithdrawn`.
    @notice Only the insurer that made it (even if no longer active).
            Refuses a policy that is not an open offer.
    @param policy_id The policy's id.
    """
    stored: StoredPolicy = self._policies[policy_id]
    assert self._status(stored.terms) == STATUS_OFFERED, "insurance: not an open offer"
    insurer: address = self._insurer(stored.terms)
    assert msg.sender == insurer, "insurance: caller is not the insurer"
    self._set_status(policy_id, stored.terms, STATUS_WITHDRAWN)
    log OfferWithdrawn(policy_id=policy_id, title=stored.title, insurer=insurer)


@external
@nonreentrant
def accept(policy_id: uint256, max_premium: uint256):
    """
    @dev Starts an offered policy, or sets the most the renewals of an
         active one may pull. Starting it pulls the first premium from the
         caller, who becomes the holder, with the token's `transferFrom`;
         the term starts now. Emits `PolicyAccepted`, or
         `MaxPremiumAccepted` for an active policy.
    @notice For an offer: only the vehicle's current owner, who has
            approved this contract for the premium; refuses an offer past
            its expiry, an insurer no longer active and a maximum below
            the premium. For an active policy: only its holder; any
            maximum (one below the premium stops renewals). Refuses a
            maximum above `MAX_PREMIUM` and a policy that is neither. Uses
            up the caller's next signature nonce.
    @param policy_id The policy's id.
    @param max_premium The most a renewal may pull.
    """
    # The caller's signed acceptances not yet submitted are void: none of
    # them may later undo what this one sets.
    self.nonces[msg.sender] += 1
    self._accept(policy_id, msg.sender, max_premium)


@external
def useNonce() -> uint256:
    """
    @dev Uses up the caller's next nonce: the acceptances they signed with
         it, not yet submitted, are void. Emits `NonceUsed`.
    @notice Any owner.
    @return uint256 The nonce used.
    """
    nonce: uint256 = self.nonces[msg.sender]
    self.nonces[msg.sender] = nonce + 1
    log NonceUsed(owner=msg.sender, nonce=nonce)
    return nonce


@external
@nonreentrant
def acceptWithSignature(
    policy_id: uint256, holder: address, max_premium: uint256, deadline: uint256, signature: Bytes[65]
):
    """
    @dev `accept` on behalf of `holder`, who signed the EIP-712
         `PolicyAcceptance(policyId, holder, maxPremium, nonce, deadline)`
         with their next nonce; the nonce is then used. Emits what
         `accept` emits.
    @notice Anyone may submit it (a relayer pays the gas). Refuses a
            signature past its deadline or not `holder`'s (ECDSA, or
            ERC-1271 for a contract), and whatever `accept` refuses.
    @param policy_id The policy's id.
    @param holder The 20-byte address of the owner who accepts.
    @param max_premium The most a renewal may pull.
    @param deadline The last timestamp at which the signature may be used.
    @param signature `r ‖ s ‖ v`, or what the holder's ERC-1271 wallet
           accepts.
    """
    assert block.timestamp <= deadline, "insurance: signature expired"
    nonce: uint256 = self.nonces[holder]
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
        self._acceptance_hash(policy_id, holder, max_premium, nonce, deadline)
    )
    assert self._is_signature_of(holder, digest, signature), "insurance: invalid signature"
    self.nonces[holder] = nonce + 1
    self._accept(policy_id, holder, max_premium)


@external
def setPremium(policy_id: uint256, premium: uint256):
    """
    @dev Sets the premium of the policy's next renewals; a premium above
         the holder's accepted maximum waits for a new acceptance. Emits
         `PremiumChanged`.
    @notice Only the policy's insurer, while the policy is active. Refuses
            a zero premium and one above `MAX_PREMIUM`.
    @param policy_id The policy's id.
    @param premium The new premium of a term.
    """
    stored: StoredPolicy = self._policies[policy_id]
    self._require_active(stored)
    assert msg.sender == self._insurer(stored.terms), "insurance: caller is not the insurer"
    self._require_premium(premium)
    self._policies[policy_id].money = (stored.money & _ADDRESS_MASK) | (premium << _AMOUNT_SHIFT)
    log PremiumChanged(policy_id=policy_id, previous=stored.money >> _AMOUNT_SHIFT, premium=premium)


@external
@nonreentrant
def renew(policy_id: uint256):
    """
    @dev Renews a policy whose term has ended: pulls the premium from the
         holder with the token's `transferFrom`, credits the ended term's
         premium to the insurer and starts the next term where the last
         one ended. Emits `PremiumEarned` and `PolicyRenewed`.
    @notice Anyone may call (a keeper). Refuses a policy that is not
            active, a term that has not ended, a grace period that is over
            (`lapse` it), a holder that no longer owns the vehicle, a
            premium above the holder's accepted maximum and an insurer no
            longer active; the token refuses a short balance or allowance.
    @param policy_id The policy's id.
    """
    stored: StoredPolicy = self._policies[policy_id]
    self._require_active(stored)
    paid_through: uint256 = self._paid_through(stored)
    assert block.timestamp >= paid_through, "insurance: term not over"
    assert block.timestamp < paid_through + self._grace(stored.terms), "insurance: grace period over"
    holder: address = convert(stored.holder & _ADDRESS_MASK, address)
    assert staticcall vehicles.ownerOf(stored.title) == holder, (
        "insurance: holder no longer owns the vehicle"
    )
    premium: uint256 = stored.money >> _AMOUNT_SHIFT
    assert premium <= stored.holder >> _AMOUNT_SHIFT, "insurance: premium above the accepted maximum"
    insurer: address = self._insurer(stored.terms)
    self._require_active_insurer(insurer)
    token: address = convert(stored.money & _ADDRESS_MASK, address)
    self._credit(policy_id, insurer, token, self._held(stored.period))
    self._policies[policy_id].period = paid_through | (premium << _PAID_SHIFT)
    log PolicyRenewed(
        policy_id=policy_id,
        title=stored.title,
        holder=holder,
        keeper=msg.sender,
        premium=premium,
        start=paid_through,
        paid_through=paid_through + self._term(stored.terms),
    )
    self._pull(token, holder, premium)


@external
def lapse(policy_id: uint256):
    """
    @dev Ends a policy not renewed by the end of its grace period and
         credits what is left of its premium to the insurer. Emits
         `PremiumEarned` (if anything was left) and `PolicyLapsed`.
    @notice Anyone may call. Refuses a policy that is not active and one
            whose grace period is not over.
    @param policy_id The policy's id.
    """
    stored: StoredPolicy = self._policies[policy_id]
    self._require_active(stored)
    paid_through: uint256 = self._paid_through(stored)
    assert block.timestamp >= paid_through + self._grace(stored.terms), (
        "insurance: grace period not over"
    )
    self._credit(
        policy_id,
        self._insurer(stored.terms),
        convert(stored.money & _ADDRESS_MASK, address),
        self._held(stored.period),
    )
    self._close(policy_id, stored, STATUS_LAPSED)
    log PolicyLapsed(
        policy_id=policy_id,
        title=stored.title,
        holder=convert(stored.holder & _ADDRESS_MASK, address),
        paid_through=paid_through,
    )


@external
@nonreentrant
def cancel(policy_id: uint256):
    """
    @dev Ends the policy now: the holder gets the refund the insurer's
         rule gives on the unearned part of the current term's premium
         (`cancellationRefund`), the insurer is credited the rest. Emits
         `PremiumEarned` (if the insurer gets anything) and
         `PolicyCancelled`.
    @notice Only the policy's holder, while the policy is active (in its
            grace period too; not after it).
    @param policy_id The policy's id.
    """
    stored: StoredPolicy = self._policies[policy_id]
    self._require_active(stored)
    holder: address = convert(stored.holder & _ADDRESS_MASK, address)
    assert msg.sender == holder, "insurance: caller is not the holder"
    assert block.timestamp < self._paid_through(stored) + self._grace(stored.terms), (
        "insurance: policy lapsed"
    )
    refund: uint256 = self._refund(stored)
    token: address = convert(stored.money & _ADDRESS_MASK, address)
    self._credit(policy_id, self._insurer(stored.terms), token, self._held(stored.period) - refund)
    self._close(policy_id, stored, STATUS_CANCELLED)
    log PolicyCancelled(policy_id=policy_id, title=stored.title, holder=holder, refund=refund)
    if refund != 0:
        assert extcall IERC20(token).transfer(holder, refund, default_return_value=True), (
            "insurance: transfer failed"
        )


@external
def collect(policy_id: uint256) -> uint256:
    """
    @dev Credits the insurer with the part of the current term's premium
         earned so far (the premium times the share of the term that has
         passed) and not yet credited. Emits `PremiumEarned` if anything
         was credited.
    @notice Anyone may call. Refuses a policy that is not active.
    @param policy_id The policy's id.
    @return uint256 What was credited.
    """
    stored: StoredPolicy = self._policies[policy_id]
    self._require_active(stored)
    amount: uint256 = self._collectable(stored)
    self._credit(
        policy_id,
        self._insurer(stored.terms),
        convert(stored.money & _ADDRESS_MASK, address),
        amount,
    )
    # No overflow: what is credited never exceeds what was paid (< 2**96).
    self._policies[policy_id].period = unsafe_add(stored.period, amount << _CREDITED_SHIFT)
    return amount


@external
@nonreentrant
def withdrawEarnings(token: address) -> uint256:
    """
    @dev Pays the caller's earnings in `token` out: the platform fee of
         its fee tier (at the time of the withdrawal) to the treasury, the
         rest to its payout address. Emits `EarningsWithdrawn`.
    @notice Only a registered merchant (an insurer, active or not) with
            earnings in `token`.
    @param token The currency token.
    @return uint256 What was paid out, fee included.
    """
    amount: uint256 = self.earnings[msg.sender][token]
    assert amount != 0, "insurance: no earnings"
    payout: address = empty(address)
    fee_bps: uint16 = 0
    category: uint8 = 0
    active: bool = False
    payout, fee_bps, category, active = staticcall merchants.merchantTerms(msg.sender)
    assert payout != empty(address), "insurance: caller is not a merchant"
    self.earnings[msg.sender][token] = 0
    # No overflow: earnings are sums of premiums below 2**96 each.
    fee: uint256 = unsafe_div(amount * convert(fee_bps, uint256), _BPS)
    log EarningsWithdrawn(insurer=msg.sender, token=token, payout=payout, amount=amount, fee=fee)
    assert extcall IERC20(token).transfer(payout, amount - fee, default_return_value=True), (
        "insurance: transfer failed"
    )
    if fee != 0:
        treasury: address = staticcall merchants.treasury()
        assert extcall IERC20(token).transfer(treasury, fee, default_return_value=True), (
            "insurance: transfer failed"
        )
    return amount


@external
@nonreentrant
def payClaim(policy_id: uint256, amount: uint256, reference: bytes32):
    """
    @dev Pays a claim under the policy from the insurer to the holder with
         the token's `transferFrom`, and records it against the policy
         and the vehicle. Emits `ClaimPaid`.
    @notice Only the policy's insurer, who has approved this contract for
            the amount; for any policy that was ever accepted (a claim
            may come after the policy ended). Refuses a zero amount and a
            reference already paid under the policy (a retry pays once).
    @param policy_id The policy's id.
    @param amount The amount paid, in the policy's token.
    @param reference The insurer's reference of the claim (e.g. the hash
           of the claim file).
    """
    stored: StoredPolicy = self._policies[policy_id]
    status: uint8 = self._status(stored.terms)
    assert status >= STATUS_ACTIVE and status <= STATUS_CANCELLED, "insurance: policy never started"
    insurer: address = self._insurer(stored.terms)
    assert msg.sender == insurer, "insurance: caller is not the insurer"
    assert amount != 0, "insurance: zero amount"
    assert not self.claimReferenceUsed[policy_id][reference], "insurance: claim already paid"
    self.claimReferenceUsed[policy_id][reference] = True
    holder: address = convert(stored.holder & _ADDRESS_MASK, address)
    token: address = convert(stored.money & _ADDRESS_MASK, address)
    self.claimsPaid[policy_id] += amount
    self.claimCount[stored.title] += 1
    log ClaimPaid(
        policy_id=policy_id,
        title=stored.title,
        holder=holder,
        insurer=insurer,
        token=token,
        amount=amount,
        reference=reference,
    )
    assert extcall IERC20(token).transferFrom(insurer, holder, amount, default_return_value=True), (
        "insurance: transfer failed"
    )


@external
@view
def policy(policy_id: uint256) -> Policy:
    """
    @dev A policy's terms, holder, current term and status.
    @notice Anyone may call; an unknown id gives zeros (status 0). While
            offered, `start` is the offer's expiry and `paid_through` 0;
            an active policy past its grace period reads as lapsed.
    @param policy_id The policy's id.
    @return Policy The insurer, title, token, premium (of the next
            renewal), term, grace period, refund rule, holder, accepted
            maximum, start and end of the current term, and status (0
            none, 1 offered, 2 active, 3 lapsed, 4 cancelled, 5 withdrawn).
    """
    stored: StoredPolicy = self._policies[policy_id]
    status: uint8 = self._status(stored.terms)
    paid_through: uint256 = 0
    if status != STATUS_OFFERED and status != STATUS_WITHDRAWN and status != STATUS_NONE:
        paid_through = self._paid_through(stored)
    if status == STATUS_ACTIVE and block.timestamp >= paid_through + self._grace(stored.terms):
        status = STATUS_LAPSED
    return Policy(
        insurer=self._insurer(stored.terms),
        title=stored.title,
        token=convert(stored.money & _ADDRESS_MASK, address),
        premium=stored.money >> _AMOUNT_SHIFT,
        term=self._term(stored.terms),
        grace=self._grace(stored.terms),
        refund_bps=convert((stored.terms >> _REFUND_SHIFT) & 65535, uint16),
        holder=convert(stored.holder & _ADDRESS_MASK, address),
        max_premium=stored.holder >> _AMOUNT_SHIFT,
        start=stored.period & _UINT64_MASK,
        paid_through=paid_through,
        status=status,
    )


@external
@view
def isCovered(policy_id: uint256) -> bool:
    """
    @dev Whether the policy is in force now: active, and its current term
         or its grace period not over.
    @notice Anyone may call.
    @param policy_id The policy's id.
    @return bool True if the policy covers the vehicle now.
    """
    stored: StoredPolicy = self._policies[policy_id]
    if self._status(stored.terms) != STATUS_ACTIVE:
        return False
    return block.timestamp < self._paid_through(stored) + self._grace(stored.terms)


@external
@view
def paidThrough(policy_id: uint256) -> uint256:
    """
    @dev The end of the policy's current term (0 if it never started).
    @notice Anyone may call.
    @param policy_id The policy's id.
    @return uint256 The timestamp at which the current term ends.
    """
    stored: StoredPolicy = self._policies[policy_id]
    status: uint8 = self._status(stored.terms)
    if status < STATUS_ACTIVE or status > STATUS_CANCELLED:
        return 0
    return self._paid_through(stored)


@external
@view
def collectable(policy_id: uint256) -> uint256:
    """
    @dev What `collect` would credit to the insurer now.
    @notice Anyone may call; 0 for a policy that is not active.
    @param policy_id The policy's id.
    @return uint256 The earned premium not yet credited.
    """
    stored: StoredPolicy = self._policies[policy_id]
    if self._status(stored.terms) != STATUS_ACTIVE:
        return 0
    return self._collectable(stored)


@external
@view
def cancellationRefund(policy_id: uint256) -> uint256:
    """
    @dev What the holder would get back by cancelling now.
    @notice Anyone may call; 0 for a policy that is not active.
    @param policy_id The policy's id.
    @return uint256 The refund.
    """
    stored: StoredPolicy = self._policies[policy_id]
    if self._status(stored.terms) != STATUS_ACTIVE:
        return 0
    return self._refund(stored)


@external
@view
def acceptanceHash(
    policy_id: uint256, holder: address, max_premium: uint256, nonce: uint256, deadline: uint256
) -> bytes32:
    """
    @dev The EIP-712 digest an owner signs to accept a policy.
    @notice Anyone may call.
    @param policy_id The policy's id.
    @param holder The 20-byte address of the owner.
    @param max_premium The most a renewal may pull.
    @param nonce The owner's nonce (`nonces(holder)`).
    @param deadline The last timestamp at which the signature may be used.
    @return bytes32 The 32-byte digest.
    """
    return eip712_domain_separator._hash_typed_data_v4(
        self._acceptance_hash(policy_id, holder, max_premium, nonce, deadline)
    )


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev The EIP-712 domain separator owners sign acceptances in.
    @notice Anyone may call.
    @return bytes32 The 32-byte domain separator.
    """
    return eip712_domain_separator._domain_separator_v4()


# -- internals ----------------------------------------------------------------


@internal
def _accept(policy_id: uint256, holder: address, max_premium: uint256):
    """
    @dev Starts an offered policy for `holder` or sets an active policy's
         accepted maximum (see `accept`).
    """
    stored: StoredPolicy = self._policies[policy_id]
    status: uint8 = self._status(stored.terms)
    assert max_premium <= MAX_PREMIUM, "insurance: maximum premium too large"
    if status == STATUS_ACTIVE:
        assert holder == convert(stored.holder & _ADDRESS_MASK, address), (
            "insurance: caller is not the holder"
        )
        self._policies[policy_id].holder = convert(holder, uint256) | (max_premium << _AMOUNT_SHIFT)
        log MaxPremiumAccepted(policy_id=policy_id, holder=holder, max_premium=max_premium)
        return
    assert status == STATUS_OFFERED, "insurance: not an open offer"
    assert block.timestamp <= stored.period, "insurance: offer expired"
    assert staticcall vehicles.ownerOf(stored.title) == holder, (
        "insurance: caller is not the vehicle's owner"
    )
    self._require_active_insurer(self._insurer(stored.terms))
    premium: uint256 = stored.money >> _AMOUNT_SHIFT
    assert max_premium >= premium, "insurance: maximum below the premium"
    paid_through: uint256 = block.timestamp + self._term(stored.terms)
    self._policies[policy_id] = StoredPolicy(
        terms=(stored.terms & ~(255 << _STATUS_SHIFT))
        | (convert(STATUS_ACTIVE, uint256) << _STATUS_SHIFT),
        holder=convert(holder, uint256) | (max_premium << _AMOUNT_SHIFT),
        money=stored.money,
        title=stored.title,
        period=block.timestamp | (premium << _PAID_SHIFT),
    )
    log PolicyAccepted(
        policy_id=policy_id,
        title=stored.title,
        holder=holder,
        premium=premium,
        max_premium=max_premium,
        start=block.timestamp,
        paid_through=paid_through,
    )
    self._pull(convert(stored.money & _ADDRESS_MASK, address), holder, premium)


@internal
def _pull(token: address, holder: address, amount: uint256):
    """
    @dev Moves `amount` from `holder` to this contract with the token's
         `transferFrom`, and refuses a token that delivers less.
    """
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(holder, self, amount, default_return_value=True), (
        "insurance: transfer failed"
    )
    assert staticcall IERC20(token).balanceOf(self) == before + amount, (
        "insurance: token delivered less than the premium"
    )


@internal
def _credit(policy_id: uint256, insurer: address, token: address, amount: uint256):
    """
    @dev Adds `amount` to the insurer's earnings in `token`.
    """
    if amount == 0:
        return
    self.earnings[insurer][token] += amount
    log PremiumEarned(policy_id=policy_id, insurer=insurer, token=token, amount=amount)


@internal
def _close(policy_id: uint256, stored: StoredPolicy, status: uint8):
    """
    @dev Sets the final status; nothing of the premium stays held.
    """
    self._set_status(policy_id, stored.terms, status)
    paid: uint256 = (stored.period >> _PAID_SHIFT) & _UINT96_MASK
    self._policies[policy_id].period = (stored.period & _ADDRESS_MASK) | (paid << _CREDITED_SHIFT)


@internal
def _set_status(policy_id: uint256, terms: uint256, status: uint8):
    self._policies[policy_id].terms = (terms & ~(255 << _STATUS_SHIFT)) | (
        convert(status, uint256) << _STATUS_SHIFT
    )


@internal
@view
def _require_active_insurer(insurer: address):
    """
    @dev Refuses an address that is not an active merchant of category 1.
    """
    payout: address = empty(address)
    fee_bps: uint16 = 0
    category: uint8 = 0
    active: bool = False
    payout, fee_bps, category, active = staticcall merchants.merchantTerms(insurer)
    assert active and category == INSURER_CATEGORY, "insurance: not an active insurer"


@internal
@pure
def _require_premium(premium: uint256):
    assert premium != 0, "insurance: zero premium"
    assert premium <= MAX_PREMIUM, "insurance: premium too large"


@internal
@pure
def _require_active(stored: StoredPolicy):
    """
    @dev Refuses a policy that is not active (as stored).
    """
    status: uint8 = convert((stored.terms >> _STATUS_SHIFT) & 255, uint8)
    assert status != STATUS_NONE, "insurance: unknown policy"
    assert status == STATUS_ACTIVE, "insurance: policy not active"


@internal
@view
def _collectable(stored: StoredPolicy) -> uint256:
    """
    @dev The current term's premium earned by now and not yet credited.
    """
    return self._earned(stored) - (stored.period >> _CREDITED_SHIFT)


@internal
@view
def _earned(stored: StoredPolicy) -> uint256:
    """
    @dev The part of the current term's premium earned by now: the
         premium times the share of the term that has passed, rounded down.
    """
    start: uint256 = stored.period & _UINT64_MASK
    term: uint256 = self._term(stored.terms)
    paid: uint256 = (stored.period >> _PAID_SHIFT) & _UINT96_MASK
    if block.timestamp >= start + term:
        return paid
    # No overflow: paid < 2**96 and the elapsed time < 2**32.
    return unsafe_div(paid * (block.timestamp - start), term)


@internal
@view
def _refund(stored: StoredPolicy) -> uint256:
    """
    @dev What a cancelling holder gets back now: the unearned premium of
         the current term times the refund rule, rounded down.
    """
    paid: uint256 = (stored.period >> _PAID_SHIFT) & _UINT96_MASK
    unearned: uint256 = paid - self._earned(stored)
    refund_bps: uint256 = (stored.terms >> _REFUND_SHIFT) & 65535
    return unsafe_div(unearned * refund_bps, _BPS)


@internal
@pure
def _held(period: uint256) -> uint256:
    """
    @dev What of the current term's premium is still held here.
    """
    return ((period >> _PAID_SHIFT) & _UINT96_MASK) - (period >> _CREDITED_SHIFT)


@internal
@pure
def _paid_through(stored: StoredPolicy) -> uint256:
    return (stored.period & _UINT64_MASK) + self._term(stored.terms)


@internal
@pure
def _insurer(terms: uint256) -> address:
    return convert(terms & _ADDRESS_MASK, address)


@internal
@pure
def _status(terms: uint256) -> uint8:
    return convert((terms >> _STATUS_SHIFT) & 255, uint8)


@internal
@pure
def _term(terms: uint256) -> uint256:
    return (terms >> _TERM_SHIFT) & _UINT32_MASK


@internal
@pure
def _grace(terms: uint256) -> uint256:
    return (terms >> _GRACE_SHIFT) & _UINT32_MASK


@internal
@pure
def _acceptance_hash(
    policy_id: uint256, holder: address, max_premium: uint256, nonce: uint256, deadline: uint256
) -> bytes32:
    """
    @dev The EIP-712 struct hash of a `PolicyAcceptance`.
    """
    return keccak256(
        abi_encode(POLICY_ACCEPTANCE_TYPEHASH, policy_id, holder, max_premium, nonce, deadline)
    )


@internal
@view
def _is_signature_of(signer: address, digest: bytes32, signature: Bytes[65]) -> bool:
    """
    @dev ECDSA first (no `EXTCODESIZE` for the common case of a key), then
         ERC-1271 when the signer is a contract.
    """
    if len(signature) == 65:
        r: uint256 = extract32(signature, 0, output_type=uint256)
        s: uint256 = extract32(signature, 32, output_type=uint256)
        v: uint256 = convert(slice(signature, 64, 1), uint256)
        if s <= _MALLEABILITY_THRESHOLD:
            recovered: address = ecrecover(digest, v, r, s)
            if recovered != empty(address) and recovered == signer:
                return True
    return signer.is_contract and signature_checker._is_valid_ERC1271_signature_now(
        signer, digest, signature
    )
