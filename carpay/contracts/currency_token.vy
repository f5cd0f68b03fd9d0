# pragma version ~=0.4.3
"""
@title Tokenized Fiat Currency With Gasless Payments and Batch Settlement
@custom:contract-name currency_token
@license GNU Affero General Public License v3.0 only
@notice One ERC-20 per fiat currency (6 decimals), with the controls of a
        regulated tokenized currency, modelled on USDC's FiatToken v2.2:
        an owner (two-step transfer, snekmate's `ownable_2step`) who names
        a master minter, a pauser, a blocklister, a rescuer and the
        settlers; minters with individual allowances, so that a
        compromised minter can never mint more than its allowance.
        Payers sign, the platform's relayer pays the gas: EIP-2612
        `permit`, EIP-3009 `transferWithAuthorization`,
        `receiveWithAuthorization` and `cancelAuthorization`, and the
        batch settlement `settlePayments` of `PaymentAuthorization`s,
        all in one EIP-712 domain (snekmate's `eip712_domain_separator`,
        recomputed if the chain id changes, published by ERC-5267). A
        payer with code signs through ERC-1271.

        The ERC-20 core is written here instead of taken from snekmate's
        `erc20` only because the blocklist flag lives in the top bit of the
        balance word (as in FiatToken v2.2): a transfer reads one storage
        slot per party and gets the blocklist check for free, which keeps
        `settlePayments` at one cold slot per payer. The total supply stays
        below 2**255, so a balance never reaches the flag bit.

        External functions:
        - ERC-20: `transfer`, `transferFrom`, `approve`, `balanceOf`,
          `allowance`, `totalSupply`, `name`, `symbol`, `decimals`,
          and `currency` (the ISO 4217 code);
        - EIP-2612 and EIP-712: `permit`, `nonces`, `DOMAIN_SEPARATOR`,
          `eip712Domain` (ERC-5267);
        - EIP-3009: `transferWithAuthorization`,
          `receiveWithAuthorization`, `cancelAuthorization`,
          `authorizationState`;
        - settlement: `settlePayments`, `paymentNonceUsed`,
          `configureSettler`, `isSettler`;
        - supply: `configureMinter`, `removeMinter`, `minterAllowance`,
          `isMinter`, `mint`, `burn`;
        - controls: `pause`, `unpause`, `paused`, `blocklist`,
          `unBlocklist`, `isBlocklisted`, `rescueERC20`;
        - roles: `owner`, `pending_owner`, `transfer_ownership`,
          `accept_ownership`, `masterMinter`, `pauser`, `blocklister`,
          `rescuer`, `updateMasterMinter`, `updatePauser`,
          `updateBlocklister`, `updateRescuer`.
"""


# @dev The ERC-20 interfaces, built into the Vyper compiler.
from ethereum.ercs import IERC20
implements: IERC20

from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed


# @dev The owner, with a two-step ownership transfer.
from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]


# @dev The pause flag and its `Paused` / `Unpaused` events.
from snekmate.utils import pausable
initializes: pausable


# @dev The EIP-712 domain, cached and rebuilt on a chain id change.
from snekmate.utils import eip712_domain_separator
initializes: eip712_domain_separator


# @dev Stateless: the ERC-1271 call for payers with code.
from snekmate.utils import signature_checker


exports: (
    ownable.owner,
    ownable_2step.pending_owner,
    pausable.paused,
    eip712_domain_separator.eip712Domain,
)


# @dev One payment of a batch, as `settlePayments` receives it: the
# payer's `PaymentAuthorization` (its payee is the batch's `to`) and
# the payer's secp256k1 signature of it (`v`, `r`, `s`).
struct Payment:
    payer: address
    value: uint256
    nonce: uint256
    valid_before: uint256
    v: uint8
    r: bytes32
    s: bytes32


# @dev The most payments one `settlePayments` call takes. Every call pays
# for the memory of this many, so it is no larger than a batch needs.
MAX_PAYMENTS: constant(uint256) = 128


# @dev The status `settlePayments` returns for each payment.
STATUS_SETTLED: constant(uint8) = 0
STATUS_BAD_SIGNATURE: constant(uint8) = 1
STATUS_EXPIRED: constant(uint8) = 2
STATUS_NONCE_USED: constant(uint8) = 3
STATUS_INSUFFICIENT_FUNDS: constant(uint8) = 4
STATUS_BLOCKLISTED: constant(uint8) = 5


# @dev The blocklist flag: the top bit of a balance word.
_BLOCKLIST_BIT: constant(uint256) = 1 << 255


# @dev The largest `s` of a signature that is not malleable (EIP-2).
_MALLEABILITY_THRESHOLD: constant(uint256) = (
    57_896_044_618_658_097_711_785_492_504_343_953_926_418_782_139_537_452_191_302_581_570_759_080_747_168
)


# @dev The EIP-712 type hashes of what payers sign.
PERMIT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)
TRANSFER_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
RECEIVE_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
CANCEL_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "CancelAuthorization(address authorizer,bytes32 nonce)"
)
PAYMENT_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "PaymentAuthorization(address from,address to,uint256 value,uint256 nonce,uint256 validBefore)"
)


# @dev The token's decimals: amounts are in millionths of the currency.
decimals: public(constant(uint8)) = 6


# @dev The token's name (also the EIP-712 domain's name).
name: public(immutable(String[25]))


# @dev The token's symbol.
symbol: public(immutable(String[5]))


# @dev The ISO 4217 code of the fiat currency the token stands for.
currency: public(immutable(String[3]))


# @dev Per account: the balance in the low 255 bits and the blocklist
# flag in the top bit.
_balance_words: HashMap[address, uint256]


# @dev The allowance an owner gave a spender.
allowance: public(HashMap[address, HashMap[address, uint256]])


# @dev The sum of every balance, always below `_BLOCKLIST_BIT`.
totalSupply: public(uint256)


# @dev The next EIP-2612 `permit` nonce of each owner.
nonces: public(HashMap[address, uint256])


# @dev Whether an EIP-3009 nonce of an authorizer is used or canceled.
authorizationState: public(HashMap[address, HashMap[bytes32, bool]])


# @dev The used `PaymentAuthorization` nonces, as bitmaps keyed by the
# payee: word `nonce >> 8`, bit `nonce & 255`.
_payment_nonce_words: HashMap[address, HashMap[uint256, uint256]]


# @dev The address that configures and removes minters.
masterMinter: public(address)


# @dev The address that pauses and unpauses the token.
pauser: public(address)


# @dev The address that blocklists and unblocklists accounts.
blocklister: public(address)


# @dev The address that moves other tokens out of this contract.
rescuer: public(address)


# @dev Whether an address is a minter.
isMinter: public(HashMap[address, bool])


# @dev How much more each minter may mint.
minterAllowance: public(HashMap[address, uint256])


# @dev Whether an address may call `settlePayments`.
isSettler: public(HashMap[address, bool])


# @dev Emitted when `minter` mints `amount` to `to`.
event Mint:
    minter: indexed(address)
    to: indexed(address)
    amount: uint256


# @dev Emitted when `burner` burns `amount` of its own balance.
event Burn:
    burner: indexed(address)
    amount: uint256


# @dev Emitted when the master minter sets `minter`'s allowance.
event MinterConfigured:
    minter: indexed(address)
    minterAllowedAmount: uint256


# @dev Emitted when the master minter removes `oldMinter`.
event MinterRemoved:
    oldMinter: indexed(address)


# @dev Emitted when the owner names a new master minter.
event MasterMinterChanged:
    newMasterMinter: indexed(address)


# @dev Emitted when the owner names a new pauser.
event PauserChanged:
    newAddress: indexed(address)


# @dev Emitted when the owner names a new blocklister.
event BlocklisterChanged:
    newBlocklister: indexed(address)


# @dev Emitted when the owner names a new rescuer.
event RescuerChanged:
    newRescuer: indexed(address)


# @dev Emitted when the owner enables or disables a settler.
event SettlerConfigured:
    settler: indexed(address)
    enabled: bool


# @dev Emitted when `account` is blocklisted.
event Blocklisted:
    account: indexed(address)


# @dev Emitted when `account` is taken off the blocklist.
event UnBlocklisted:
    account: indexed(address)


# @dev Emitted when an EIP-3009 authorization is used.
event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)


# @dev Emitted when an EIP-3009 authorization is canceled.
event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)


@deploy
def __init__(
    name_: String[25], symbol_: String[5], currency_: String[3], eip712_version_: String[20]
):
    """
    @dev Makes the deployer the owner and gives it every role (master
         minter, pauser, blocklister, rescuer), to hand out later. The
         token's own address is blocklisted, so nothing can be sent to it
         by mistake.
    @notice Anyone may deploy it. The supply starts at zero.
    @param name_ The token's name, also the EIP-712 domain's name.
    @param symbol_ The token's symbol.
    @param currency_ The ISO 4217 code of the currency (e.g. "EUR").
    @param eip712_version_ The EIP-712 domain's version.
    """
    ownable.__init__()
    ownable_2step.__init__()
    pausable.__init__()
    eip712_domain_separator.__init__(name_, eip712_version_)
    name = name_
    symbol = symbol_
    currency = currency_
    self.masterMinter = msg.sender
    self.pauser = msg.sender
    self.blocklister = msg.sender
    self.rescuer = msg.sender
    log MasterMinterChanged(newMasterMinter=msg.sender)
    log PauserChanged(newAddress=msg.sender)
    log BlocklisterChanged(newBlocklister=msg.sender)
    log RescuerChanged(newRescuer=msg.sender)
    self._balance_words[self] = _BLOCKLIST_BIT
    log Blocklisted(account=self)


# -- ERC-20 -------------------------------------------------------------------


@external
@view
def balanceOf(account: address) -> uint256:
    """
    @dev Returns the balance of `account`.
    @notice Anyone may call it; a blocklisted account keeps its balance.
    @param account The 20-byte address of the holder.
    @return uint256 The balance in the token's smallest unit.
    """
    return self._balance_words[account] & (_BLOCKLIST_BIT - 1)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from the caller to `to`.
    @notice Refused while paused, when the caller or `to` is blocklisted,
            when `to` is the zero address, and beyond the caller's balance.
    @param to The 20-byte address of the recipient.
    @param amount The amount to move.
    @return bool Always `True`.
    """
    self._require_not_paused()
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from `owner` to `to`, spending the caller's
         allowance (an allowance of `max_value(uint256)` is never spent).
    @notice Refused while paused, when the caller, `owner` or `to` is
            blocklisted, beyond the allowance and beyond `owner`'s balance.
    @param owner The 20-byte address the tokens come from.
    @param to The 20-byte address of the recipient.
    @param amount The amount to move.
    @return bool Always `True`.
    """
    self._require_not_paused()
    self._require_not_blocklisted(msg.sender)
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "currency_token: insufficient allowance"
        self.allowance[owner][msg.sender] = unsafe_sub(allowed, amount)
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Sets the caller's allowance for `spender` to `amount`.
    @notice Refused while paused and when the caller or `spender` is
            blocklisted.
    @param spender The 20-byte address that may spend.
    @param amount The allowance.
    @return bool Always `True`.
    """
    self._require_not_paused()
    self._approve(msg.sender, spender, amount)
    return True


# -- EIP-2612 and EIP-712 -----------------------------------------------------


@external
def permit(
    owner: address,
    spender: address,
    amount: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Sets `owner`'s allowance for `spender` to `amount` with
         `owner`'s EIP-712 signature of a `Permit`, and uses up
         `owner`'s nonce.
    @notice Anyone may submit it. Refused while paused, after `deadline`,
            for a signature that is not `owner`'s (ECDSA, or ERC-1271 when
            `owner` has code) and when `owner` or `spender` is blocklisted.
    @param owner The 20-byte address of the signer.
    @param spender The 20-byte address that may spend.
    @param amount The allowance.
    @param deadline The last timestamp at which the permit is valid.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    """
    self._require_not_paused()
    assert block.timestamp <= deadline, "currency_token: permit expired"
    nonce: uint256 = self.nonces[owner]
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(PERMIT_TYPEHASH, owner, spender, amount, nonce, deadline))
    )
    assert self._is_valid_signature(owner, digest, v, r, s), "currency_token: invalid signature"
    self.nonces[owner] = unsafe_add(nonce, 1)
    self._approve(owner, spender, amount)


@external
@view
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @dev Returns the EIP-712 domain separator of the current chain.
    @notice Anyone may call it.
    @return bytes32 The 32-byte domain separator.
    """
    return eip712_domain_separator._domain_separator_v4()


# -- EIP-3009 -----------------------------------------------------------------


@external
def transferWithAuthorization(
    from_: address,
    to: address,
    amount: uint256,
    validAfter: uint256,
    validBefore: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Moves `amount` from `from_` to `to` with `from_`'s EIP-712
         signature of a `TransferWithAuthorization`, and uses up `nonce`.
    @notice Anyone may submit it. Refused while paused, before
            `validAfter`, from `validBefore` on, for a used or canceled
            nonce, for a signature that is not `from_`'s, when `from_` or
            `to` is blocklisted and beyond `from_`'s balance.
    @param from_ The 20-byte address of the payer (the signer).
    @param to The 20-byte address of the payee.
    @param amount The amount to move.
    @param validAfter The authorization is valid after this timestamp.
    @param validBefore The authorization is valid before this timestamp.
    @param nonce The payer's random 32-byte nonce.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    """
    self._use_authorization(
        TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
        from_,
        to,
        amount,
        validAfter,
        validBefore,
        nonce,
        v,
        r,
        s,
    )
    self._transfer(from_, to, amount)


@external
def receiveWithAuthorization(
    from_: address,
    to: address,
    amount: uint256,
    validAfter: uint256,
    validBefore: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Moves `amount` from `from_` to the caller with `from_`'s EIP-712
         signature of a `ReceiveWithAuthorization`, and uses up `nonce`.
         Only the payee can submit it, so a watcher of the mempool cannot
         front-run a contract that pays on receipt (e.g. checkout).
    @notice Only `to` may call it. Refused as `transferWithAuthorization`
            is, and when the caller is not `to`.
    @param from_ The 20-byte address of the payer (the signer).
    @param to The 20-byte address of the payee, who must be the caller.
    @param amount The amount to move.
    @param validAfter The authorization is valid after this timestamp.
    @param validBefore The authorization is valid before this timestamp.
    @param nonce The payer's 32-byte nonce.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    """
    assert to == msg.sender, "currency_token: caller is not the payee"
    self._use_authorization(
        RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
        from_,
        to,
        amount,
        validAfter,
        validBefore,
        nonce,
        v,
        r,
        s,
    )
    self._transfer(from_, to, amount)


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    """
    @dev Cancels `authorizer`'s unused EIP-3009 `nonce` with its EIP-712
         signature of a `CancelAuthorization`.
    @notice Anyone may submit it. Refused while paused, for a used or
            canceled nonce and for a signature that is not `authorizer`'s.
    @param authorizer The 20-byte address of the signer.
    @param nonce The 32-byte nonce to cancel.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    """
    self._require_not_paused()
    assert not self.authorizationState[authorizer][nonce], "currency_token: authorization used"
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
    )
    assert self._is_valid_signature(authorizer, digest, v, r, s), "currency_token: invalid signature"
    self.authorizationState[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)


# -- settlement ---------------------------------------------------------------


@external
def settlePayments(
    to: address,
    fee_to: address,
    payments: DynArray[Payment, MAX_PAYMENTS],
    fees: DynArray[uint256, MAX_PAYMENTS],
) -> DynArray[uint8, MAX_PAYMENTS]:
    """
    @dev Settles a batch of `PaymentAuthorization`s to one payee `to`:
         each payment whose signature, deadline, nonce, payer and funds
         are good moves `value` from its payer to `to` (`Transfer(payer,
         to, value)`) and uses up its nonce in `to`'s bitmap; the others
         are skipped. Then the settled payments' `fees` move from `to` to
         `fee_to` as one `Transfer(to, fee_to, total_fee)` (none when the
         total is zero). `to`'s balance is written once per batch.
    @notice Only a settler may call it. Refused while paused, when `fees`
            and `payments` differ in length, when a fee exceeds its
            payment, when `to` is the zero address or blocklisted, and
            when there is a fee and `fee_to` is the zero address or
            blocklisted. A bad payment is never a refusal: see `@return`.
    @param to The 20-byte address of the payee every payer signed.
    @param fee_to The 20-byte address that receives the fees.
    @param payments The payers' signed authorizations.
    @param fees The fee of each payment, paid by `to` if it is settled.
    @return DynArray One status per payment: 0 settled, 1 bad signature,
            2 expired, 3 nonce used, 4 insufficient funds, 5 blocklisted.
    """
    assert self.isSettler[msg.sender], "currency_token: caller is not a settler"
    self._require_not_paused()
    assert len(fees) == len(payments), "currency_token: fees and payments differ in length"
    assert to != empty(address), "currency_token: payee is the zero address"

    domain: bytes32 = eip712_domain_separator._domain_separator_v4()
    statuses: DynArray[uint8, MAX_PAYMENTS] = []
    received: uint256 = 0
    total_fee: uint256 = 0
    # The bitmap word of the last nonce seen, written back when the next
    # nonce falls in another word (a batch of close nonces: one word).
    word_index: uint256 = max_value(uint256)
    word: uint256 = 0
    dirty: bool = False
    i: uint256 = 0
    for payment: Payment in payments:
        fee: uint256 = fees[i]
        i = unsafe_add(i, 1)
        assert fee <= payment.value, "currency_token: fee exceeds payment"
        if block.timestamp >= payment.valid_before:
            statuses.append(STATUS_EXPIRED)
            continue
        index: uint256 = payment.nonce >> 8
        if index != word_index:
            if dirty:
                self._payment_nonce_words[to][word_index] = word
                dirty = False
            word_index = index
            word = self._payment_nonce_words[to][index]
        bit: uint256 = 1 << (payment.nonce & 255)
        if word & bit != 0:
            statuses.append(STATUS_NONCE_USED)
            continue
        digest: bytes32 = keccak256(
            concat(
                b"\x19\x01",
                domain,
                keccak256(
                    abi_encode(
                        PAYMENT_AUTHORIZATION_TYPEHASH,
                        payment.payer,
                        to,
                        payment.value,
                        payment.nonce,
                        payment.valid_before,
                    )
                ),
            )
        )
        # `_is_valid_signature`, with its ECDSA case inline: the internal call
        # costs ~100 gas per payment.
        if (
            convert(payment.s, uint256) > _MALLEABILITY_THRESHOLD
            or payment.payer == empty(address)
            or ecrecover(digest, payment.v, payment.r, payment.s) != payment.payer
        ):
            if not self._is_valid_erc1271_signature(
                payment.payer, digest, payment.v, payment.r, payment.s
            ):
                statuses.append(STATUS_BAD_SIGNATURE)
                continue
        payer_word: uint256 = self._balance_words[payment.payer]
        if payer_word >= _BLOCKLIST_BIT:
            statuses.append(STATUS_BLOCKLISTED)
            continue
        if payer_word < payment.value:
            statuses.append(STATUS_INSUFFICIENT_FUNDS)
            continue
        self._balance_words[payment.payer] = unsafe_sub(payer_word, payment.value)
        word = word | bit
        dirty = True
        # No overflow: every settled value came out of a balance, and the
        # supply is below 2**255.
        received = unsafe_add(received, payment.value)
        total_fee = unsafe_add(total_fee, fee)
        log IERC20.Transfer(sender=payment.payer, receiver=to, value=payment.value)
        statuses.append(STATUS_SETTLED)
    if dirty:
        self._payment_nonce_words[to][word_index] = word

    # Read after the loop: a payer may be the payee itself.
    to_word: uint256 = self._balance_words[to]
    assert to_word < _BLOCKLIST_BIT, "currency_token: payee blocklisted"
    # No underflow: each fee is at most its payment.
    self._balance_words[to] = unsafe_sub(unsafe_add(to_word, received), total_fee)
    if total_fee != 0:
        assert fee_to != empty(address), "currency_token: fee recipient is the zero address"
        fee_to_word: uint256 = self._balance_words[fee_to]
        assert fee_to_word < _BLOCKLIST_BIT, "currency_token: fee recipient blocklisted"
        self._balance_words[fee_to] = unsafe_add(fee_to_word, total_fee)
        log IERC20.Transfer(sender=to, receiver=fee_to, value=total_fee)
    return statuses


@external
@view
def paymentNonceUsed(payee: address, nonce: uint256) -> bool:
    """
    @dev Returns whether a `PaymentAuthorization` to `payee` with `nonce`
         was settled.
    @notice Anyone may call it.
    @param payee The 20-byte address of the payee.
    @param nonce The payment's nonce.
    @return bool Whether the nonce is used.
    """
    return (self._payment_nonce_words[payee][nonce >> 8] >> (nonce & 255)) & 1 == 1


@external
def configureSettler(settler: address, enabled: bool):
    """
    @dev Lets `settler` call `settlePayments`, or stops it.
    @notice Only the owner may call it.
    @param settler The 20-byte address of the settler (the checkout).
    @param enabled Whether it may settle.
    """
    self._require_owner()
    self.isSettler[settler] = enabled
    log SettlerConfigured(settler=settler, enabled=enabled)


# -- supply -------------------------------------------------------------------


@external
def configureMinter(minter: address, minterAllowedAmount: uint256) -> bool:
    """
    @dev Makes `minter` a minter that may mint up to
         `minterAllowedAmount` (replacing what it had left).
    @notice Only the master minter may call it; refused while paused.
    @param minter The 20-byte address of the minter.
    @param minterAllowedAmount The amount it may mint from now on.
    @return bool Always `True`.
    """
    assert msg.sender == self.masterMinter, "currency_token: caller is not the master minter"
    self._require_not_paused()
    self.isMinter[minter] = True
    self.minterAllowance[minter] = minterAllowedAmount
    log MinterConfigured(minter=minter, minterAllowedAmount=minterAllowedAmount)
    return True


@external
def removeMinter(minter: address) -> bool:
    """
    @dev Takes away `minter`'s role and its remaining allowance.
    @notice Only the master minter may call it.
    @param minter The 20-byte address of the minter.
    @return bool Always `True`.
    """
    assert msg.sender == self.masterMinter, "currency_token: caller is not the master minter"
    self.isMinter[minter] = False
    self.minterAllowance[minter] = 0
    log MinterRemoved(oldMinter=minter)
    return True


@external
def mint(to: address, amount: uint256) -> bool:
    """
    @dev Creates `amount` for `to`, spending the caller's minter allowance.
    @notice Only a minter may call it. Refused while paused, for a zero
            amount, to the zero address, beyond the caller's allowance,
            when the caller or `to` is blocklisted and when the supply
            would reach 2**255.
    @param to The 20-byte address of the recipient.
    @param amount The amount to create.
    @return bool Always `True`.
    """
    assert self.isMinter[msg.sender], "currency_token: caller is not a minter"
    self._require_not_paused()
    self._require_not_blocklisted(msg.sender)
    assert to != empty(address), "currency_token: mint to the zero address"
    assert amount != 0, "currency_token: mint amount is zero"
    allowed: uint256 = self.minterAllowance[msg.sender]
    assert amount <= allowed, "currency_token: mint amount exceeds minter allowance"
    supply: uint256 = self.totalSupply + amount
    assert supply < _BLOCKLIST_BIT, "currency_token: supply cap exceeded"
    to_word: uint256 = self._balance_words[to]
    assert to_word < _BLOCKLIST_BIT, "currency_token: recipient blocklisted"
    self.minterAllowance[msg.sender] = unsafe_sub(allowed, amount)
    self.totalSupply = supply
    self._balance_words[to] = unsafe_add(to_word, amount)
    log Mint(minter=msg.sender, to=to, amount=amount)
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)
    return True


@external
def burn(amount: uint256):
    """
    @dev Destroys `amount` of the caller's own balance.
    @notice Only a minter may call it. Refused while paused, for a zero
            amount, when the caller is blocklisted and beyond its balance.
    @param amount The amount to destroy.
    """
    assert self.isMinter[msg.sender], "currency_token: caller is not a minter"
    self._require_not_paused()
    assert amount != 0, "currency_token: burn amount is zero"
    word: uint256 = self._balance_words[msg.sender]
    assert word < _BLOCKLIST_BIT, "currency_token: account blocklisted"
    assert word >= amount, "currency_token: burn amount exceeds balance"
    self._balance_words[msg.sender] = unsafe_sub(word, amount)
    self.totalSupply = unsafe_sub(self.totalSupply, amount)
    log Burn(burner=msg.sender, amount=amount)
    log IERC20.Transfer(sender=msg.sender, receiver=empty(address), value=amount)


# -- controls -----------------------------------------------------------------


@external
def pause():
    """
    @dev Stops every movement of funds and every approval.
    @notice Only the pauser may call it; refused when already paused.
    """
    assert msg.sender == self.pauser, "currency_token: caller is not the pauser"
    self._require_not_paused()
    pausable._pause()


@external
def unpause():
    """
    @dev Lets funds move again.
    @notice Only the pauser may call it; refused when not paused.
    """
    assert msg.sender == self.pauser, "currency_token: caller is not the pauser"
    assert pausable.paused, "currency_token: not paused"
    pausable._unpause()


@external
def blocklist(account: address):
    """
    @dev Blocklists `account`: it can neither send nor receive, and keeps
         its balance.
    @notice Only the blocklister may call it.
    @param account The 20-byte address to blocklist.
    """
    assert msg.sender == self.blocklister, "currency_token: caller is not the blocklister"
    self._balance_words[account] = self._balance_words[account] | _BLOCKLIST_BIT
    log Blocklisted(account=account)


@external
def unBlocklist(account: address):
    """
    @dev Takes `account` off the blocklist.
    @notice Only the blocklister may call it.
    @param account The 20-byte address to take off the blocklist.
    """
    assert msg.sender == self.blocklister, "currency_token: caller is not the blocklister"
    self._balance_words[account] = self._balance_words[account] & (_BLOCKLIST_BIT - 1)
    log UnBlocklisted(account=account)


@external
@view
def isBlocklisted(account: address) -> bool:
    """
    @dev Returns whether `account` is blocklisted.
    @notice Anyone may call it.
    @param account The 20-byte address to check.
    @return bool Whether it is blocklisted.
    """
    return self._balance_words[account] >= _BLOCKLIST_BIT


@external
@nonreentrant
def rescueERC20(token: IERC20, to: address, amount: uint256):
    """
    @dev Moves `amount` of another ERC-20 `token` held by this contract
         (sent to it by mistake) to `to`.
    @notice Only the rescuer may call it; refused when the token's
            transfer fails.
    @param token The 20-byte address of the ERC-20 token.
    @param to The 20-byte address of the recipient.
    @param amount The amount to move.
    """
    assert msg.sender == self.rescuer, "currency_token: caller is not the rescuer"
    assert extcall token.transfer(to, amount, default_return_value=True), (
        "currency_token: rescue transfer failed"
    )


# -- roles --------------------------------------------------------------------


@external
def transfer_ownership(new_owner: address):
    """
    @dev Starts the transfer of ownership to `new_owner`, who must
         accept it; a new call replaces a pending transfer (the zero
         address cancels it).
    @notice Only the owner may call it.
    @param new_owner The 20-byte address of the new owner.
    """
    self._require_owner()
    ownable_2step.pending_owner = new_owner
    log ownable_2step.OwnershipTransferStarted(previous_owner=ownable.owner, new_owner=new_owner)


@external
def accept_ownership():
    """
    @dev Completes the transfer of ownership to the caller.
    @notice Only the pending owner may call it.
    """
    assert msg.sender == ownable_2step.pending_owner, "currency_token: caller is not the pending owner"
    ownable_2step._transfer_ownership(msg.sender)


@external
def updateMasterMinter(new_master_minter: address):
    """
    @dev Names the master minter.
    @notice Only the owner may call it; refuses the zero address.
    @param new_master_minter The 20-byte address of the new master minter.
    """
    self._require_owner()
    assert new_master_minter != empty(address), "currency_token: new role is the zero address"
    self.masterMinter = new_master_minter
    log MasterMinterChanged(newMasterMinter=new_master_minter)


@external
def updatePauser(new_pauser: address):
    """
    @dev Names the pauser.
    @notice Only the owner may call it; refuses the zero address.
    @param new_pauser The 20-byte address of the new pauser.
    """
    self._require_owner()
    assert new_pauser != empty(address), "currency_token: new role is the zero address"
    self.pauser = new_pauser
    log PauserChanged(newAddress=new_pauser)


@external
def updateBlocklister(new_blocklister: address):
    """
    @dev Names the blocklister.
    @notice Only the owner may call it; refuses the zero address.
    @param new_blocklister The 20-byte address of the new blocklister.
    """
    self._require_owner()
    assert new_blocklister != empty(address), "currency_token: new role is the zero address"
    self.blocklister = new_blocklister
    log BlocklisterChanged(newBlocklister=new_blocklister)


@external
def updateRescuer(new_rescuer: address):
    """
    @dev Names the rescuer.
    @notice Only the owner may call it; refuses the zero address.
    @param new_rescuer The 20-byte address of the new rescuer.
    """
    self._require_owner()
    assert new_rescuer != empty(address), "currency_token: new role is the zero address"
    self.rescuer = new_rescuer
    log RescuerChanged(newRescuer=new_rescuer)


# -- internals ----------------------------------------------------------------


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves `amount` from `owner` to `to`; the blocklist checks come
         with the balance reads.
    @param owner The 20-byte address the tokens come from.
    @param to The 20-byte address of the recipient.
    @param amount The amount to move.
    """
    assert to != empty(address), "currency_token: transfer to the zero address"
    owner_word: uint256 = self._balance_words[owner]
    assert owner_word < _BLOCKLIST_BIT, "currency_token: sender blocklisted"
    assert owner_word >= amount, "currency_token: transfer amount exceeds balance"
    self._balance_words[owner] = unsafe_sub(owner_word, amount)
    # Read after the write: `owner` may be `to`.
    to_word: uint256 = self._balance_words[to]
    assert to_word < _BLOCKLIST_BIT, "currency_token: recipient blocklisted"
    # No overflow: the supply is below 2**255.
    self._balance_words[to] = unsafe_add(to_word, amount)
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    """
    @dev Sets `owner`'s allowance for `spender`.
    @param owner The 20-byte address of the owner.
    @param spender The 20-byte address of the spender.
    @param amount The allowance.
    """
    self._require_not_blocklisted(owner)
    self._require_not_blocklisted(spender)
    self.allowance[owner][spender] = amount
    log IERC20.Approval(owner=owner, spender=spender, value=amount)


@internal
def _use_authorization(
    typehash: bytes32,
    from_: address,
    to: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @dev Checks an EIP-3009 transfer or receive authorization and uses up
         its nonce.
    """
    self._require_not_paused()
    assert block.timestamp > valid_after, "currency_token: authorization not yet valid"
    assert block.timestamp < valid_before, "currency_token: authorization expired"
    assert not self.authorizationState[from_][nonce], "currency_token: authorization used"
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(typehash, from_, to, amount, valid_after, valid_before, nonce))
    )
    assert self._is_valid_signature(from_, digest, v, r, s), "currency_token: invalid signature"
    self.authorizationState[from_][nonce] = True
    log AuthorizationUsed(authorizer=from_, nonce=nonce)


@internal
@view
def _is_valid_signature(signer: address, digest: bytes32, v: uint8, r: bytes32, s: bytes32) -> bool:
    """
    @dev Whether (`v`, `r`, `s`) is `signer`'s signature of `digest`: an
         ECDSA signature with a low `s` (EIP-2) that recovers `signer`,
         or else, when `signer` has code, one its ERC-1271
         `isValidSignature` accepts (given as `r ‖ s ‖ v`). ECDSA comes
         first, so an EOA payer never pays for a code-size lookup.
    @param signer The 20-byte address of the expected signer.
    @param digest The 32-byte EIP-712 digest.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    @return bool Whether the signature is valid.
    """
    if convert(s, uint256) <= _MALLEABILITY_THRESHOLD:
        recovered: address = ecrecover(digest, v, r, s)
        if recovered == signer and recovered != empty(address):
            return True
    return self._is_valid_erc1271_signature(signer, digest, v, r, s)


@internal
@view
def _is_valid_erc1271_signature(
    signer: address, digest: bytes32, v: uint8, r: bytes32, s: bytes32
) -> bool:
    """
    @dev Whether `signer` has code and its ERC-1271 `isValidSignature`
         accepts `r ‖ s ‖ v` as its signature of `digest`.
    @param signer The 20-byte address of the expected signer.
    @param digest The 32-byte EIP-712 digest.
    @param v The secp256k1 1-byte signature parameter `v`.
    @param r The secp256k1 32-byte signature parameter `r`.
    @param s The secp256k1 32-byte signature parameter `s`.
    @return bool Whether the signature is valid.
    """
    if not signer.is_contract:
        return False
    return signature_checker._is_valid_ERC1271_signature_now(
        signer, digest, concat(r, s, convert(v, bytes1))
    )


@internal
@view
def _require_owner():
    """
    @dev Refuses a caller that is not the owner.
    """
    assert msg.sender == ownable.owner, "currency_token: caller is not the owner"


@internal
@view
def _require_not_paused():
    """
    @dev Refuses while the token is paused.
    """
    assert not pausable.paused, "currency_token: paused"


@internal
@view
def _require_not_blocklisted(account: address):
    """
    @dev Refuses a blocklisted `account`.
    @param account The 20-byte address to check.
    """
    assert self._balance_words[account] < _BLOCKLIST_BIT, "currency_token: account blocklisted"
