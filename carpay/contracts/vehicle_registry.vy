# pragma version ~=0.4.3
"""
@title Vehicle Registry: Titles, Liens and Service History
@custom:contract-name vehicle_registry
@license GNU Affero General Public License v3.0 only
@notice One ERC-721 title per vehicle, keyed by its VIN (ISO 3779): the
        title id is `uint256(keccak256(VIN))`, so anyone can derive it
        off-chain, and a VIN can be titled once only. Only registrars
        (OEMs and registration authorities, named by the platform owner)
        mint titles and record liens. A title with an open lien cannot be
        transferred until the lienholder or a registrar releases it;
        `lienOf` gives the lender and the payoff, so an escrow can pay off
        the loan before a sale. Authorized repair shops (named by the owner
        or a registrar) anchor service records (the hash of the repair
        document and the odometer reading, timestamped by the block)
        against a vehicle; a reading below the last one is refused.
        The full VIN check (the check digit of North-American VINs) is done
        off-chain (`carpay.services.vin`); this contract refuses VINs that
        are not 17 characters of `0-9` and `A-Z` without `I`, `O`, `Q`.
        External functions:
        - titles: `mintTitle`, `titleOf`, `vinOf`, `titleExists`;
        - ERC-721 (snekmate's `erc721`): `transferFrom`, `safeTransferFrom`
          (both refused while a lien is open), `approve`, `getApproved`,
          `setApprovalForAll`, `isApprovedForAll`, `balanceOf`, `ownerOf`,
          `tokenURI`, `totalSupply`, `tokenByIndex`, `tokenOfOwnerByIndex`,
          `name`, `symbol`, `supportsInterface`, EIP-4494 `permit`,
          `nonces`, `DOMAIN_SEPARATOR`, `eip712Domain`;
        - liens: `recordLien`, `setLienPayoff`, `releaseLien`, `lienOf`;
        - service history: `recordService`, `serviceCount`,
          `serviceRecord`, `odometerOf`;
        - roles: `setRegistrar`, `isRegistrar`, `setRepairShop`,
          `isRepairShop`, and `owner`, `pending_owner`,
          `transfer_ownership`, `accept_ownership`, `renounce_ownership`
          (from `ownable_2step`).
"""


# @dev The ERC-721 interface, built into the Vyper compiler.
from ethereum.ercs import IERC721
implements: IERC721


# @dev The owner is the platform; ownership moves in two steps.
from snekmate.auth import ownable
initializes: ownable

from snekmate.auth import ownable_2step
initializes: ownable_2step[ownable := ownable]


# @dev The ERC-721 token: titles. Its own minting (`safe_mint`,
# `set_minter`), `burn` and ownership functions are not exported: titles
# are minted by registrars only, never burned, and ownership is
# `ownable_2step`'s. Its transfers are wrapped below with the lien check.
from snekmate.tokens import erc721
initializes: erc721[ownable := ownable]


exports: (
    erc721.supportsInterface,
    erc721.balanceOf,
    erc721.ownerOf,
    erc721.approve,
    erc721.getApproved,
    erc721.setApprovalForAll,
    erc721.isApprovedForAll,
    erc721.tokenURI,
    erc721.totalSupply,
    erc721.tokenByIndex,
    erc721.tokenOfOwnerByIndex,
    erc721.name,
    erc721.symbol,
    erc721.permit,
    erc721.nonces,
    erc721.DOMAIN_SEPARATOR,
    erc721.eip712Domain,
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
    ownable_2step.renounce_ownership,
)


# @dev The length of a VIN (ISO 3779).
VIN_LENGTH: public(constant(uint256)) = 17


# @dev The highest odometer reading a service record takes (2**48 - 1).
MAX_ODOMETER: public(constant(uint256)) = (1 << 48) - 1


# @dev The highest lien payoff (2**96 - 1), so that it packs with the lender.
MAX_PAYOFF: public(constant(uint256)) = (1 << 96) - 1


# @dev Bit layout of a service record's second word: the repair shop in
# bits 0-159, the odometer reading in bits 160-207, the timestamp in bits
# 208-255 (the first word is the document hash). Of a lien's word: the
# lender in bits 0-159, the payoff in bits 160-255. Of a vehicle's service
# head: the number of records in bits 0-127, the last odometer reading in
# bits 128-255.
_ODOMETER_SHIFT: constant(uint256) = 160
_TIMESTAMP_SHIFT: constant(uint256) = 208
_PAYOFF_SHIFT: constant(uint256) = 160
_HEAD_ODOMETER_SHIFT: constant(uint256) = 128
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1
_UINT48_MASK: constant(uint256) = (1 << 48) - 1
_UINT128_MASK: constant(uint256) = (1 << 128) - 1


# @dev The characters a VIN may hold, as a bitmap indexed by ASCII code:
# `0`-`9` and `A`-`Z` except `I`, `O` and `Q`.
_VIN_CHARSET: constant(uint256) = (
    (((1 << 10) - 1) << 48)
    | ((((1 << 26) - 1) << 65) & ~((1 << 73) | (1 << 79) | (1 << 81)))
)


# @dev Whether an address may mint titles and record liens.
isRegistrar: public(HashMap[address, bool])


# @dev Whether an address may anchor service records.
isRepairShop: public(HashMap[address, bool])


# @dev The VIN of each title, left-aligned in a word (17 bytes).
_vins: HashMap[uint256, bytes32]


# @dev The open lien on each title, packed (see `_PAYOFF_SHIFT`): the
# lender (no lender, no lien) and the payoff in the smallest unit of the
# loan's currency (0 when not stated). One word, so a transfer's lien check
# is one `SLOAD`.
_liens: HashMap[uint256, uint256]


# @dev Each title's service head: how many records it has and the last
# (highest) odometer reading, packed (see `_HEAD_ODOMETER_SHIFT`).
_service_heads: HashMap[uint256, uint256]


# @dev Each title's service records by index: the document hash and the
# packed (shop, odometer, timestamp) word (see `_ODOMETER_SHIFT`).
_service_documents: HashMap[uint256, HashMap[uint256, bytes32]]
_service_words: HashMap[uint256, HashMap[uint256, uint256]]


# @dev Emitted when the owner grants or revokes the registrar role.
event RegistrarChanged:
    account: indexed(address)
    enabled: bool


# @dev Emitted when the owner or a registrar authorizes or revokes a
# repair shop.
event RepairShopChanged:
    shop: indexed(address)
    enabled: bool
    by: indexed(address)


# @dev Emitted when a registrar mints a title (with the ERC-721 `Transfer`).
event TitleMinted:
    title: indexed(uint256)
    owner: indexed(address)
    registrar: indexed(address)
    vin: String[17]


# @dev Emitted when a registrar records a lien on a title.
event LienRecorded:
    title: indexed(uint256)
    lender: indexed(address)
    registrar: indexed(address)
    amount: uint256


# @dev Emitted when the payoff of an open lien changes.
event LienPayoffChanged:
    title: indexed(uint256)
    lender: indexed(address)
    previous: uint256
    amount: uint256


# @dev Emitted when the lienholder or a registrar releases a lien.
event LienReleased:
    title: indexed(uint256)
    lender: indexed(address)
    by: indexed(address)


# @dev Emitted for every service record anchored against a vehicle.
event ServiceRecorded:
    title: indexed(uint256)
    shop: indexed(address)
    document_hash: indexed(bytes32)
    index: uint256
    odometer: uint256
    timestamp: uint256


@deploy
def __init__(
    name_: String[25], symbol_: String[5], base_uri_: String[80], name_eip712_: String[50], version_eip712_: String[20]
):
    """
    @dev Makes the deployer the owner; no registrar or repair shop yet.
    @notice Anyone may deploy it.
    @param name_ The collection's name (e.g. "carpay vehicle titles").
    @param symbol_ The collection's symbol (e.g. "TITLE").
    @param base_uri_ The base of `tokenURI` (the title id is appended).
    @param name_eip712_ The EIP-712 domain name of EIP-4494 `permit`.
    @param version_eip712_ The EIP-712 domain version.
    """
    ownable.__init__()
    ownable_2step.__init__()
    erc721.__init__(name_, symbol_, base_uri_, name_eip712_, version_eip712_)


# -- roles --------------------------------------------------------------------


@external
def setRegistrar(account: address, enabled: bool):
    """
    @dev Grants or revokes the registrar role (mint titles, record and
         release liens, authorize repair shops). Emits `RegistrarChanged`.
    @notice Only the owner; refuses the zero address.
    @param account The 20-byte address of the OEM or registration authority.
    @param enabled True to grant the role, False to revoke it.
    """
    ownable._check_owner()
    assert account != empty(address), "vehicle_registry: zero address"
    self.isRegistrar[account] = enabled
    log RegistrarChanged(account=account, enabled=enabled)


@external
def setRepairShop(shop: address, enabled: bool):
    """
    @dev Authorizes or revokes a repair shop that anchors service records.
         Emits `RepairShopChanged`.
    @notice Only the owner or a registrar; refuses the zero address.
    @param shop The 20-byte address the repair shop signs with.
    @param enabled True to authorize the shop, False to revoke it.
    """
    assert msg.sender == ownable.owner or self.isRegistrar[msg.sender], (
        "vehicle_registry: caller is not the owner or a registrar"
    )
    assert shop != empty(address), "vehicle_registry: zero address"
    self.isRepairShop[shop] = enabled
    log RepairShopChanged(shop=shop, enabled=enabled, by=msg.sender)


# -- titles -------------------------------------------------------------------


@external
@nonreentrant
def mintTitle(owner: address, vin: String[17]) -> uint256:
    """
    @dev Mints the title of the vehicle `vin` to `owner`; its id is
         `uint256(keccak256(vin))`. Emits `TitleMinted` and the ERC-721
         `Transfer`. A contract `owner` must accept ERC-721 tokens.
    @notice Only a registrar. Refuses a VIN that is not 17 characters of
            `0-9`, `A-Z` without `I`, `O`, `Q`, a VIN already titled, and
            the zero address as owner.
    @param owner The 20-byte address of the vehicle's first owner.
    @param vin The vehicle identification number, upper case.
    @return uint256 The title id.
    """
    assert self.isRegistrar[msg.sender], "vehicle_registry: caller is not a registrar"
    word: bytes32 = self._vin_word(vin)
    title: uint256 = convert(keccak256(vin), uint256)
    assert self._vins[title] == empty(bytes32), "vehicle_registry: VIN already titled"
    assert owner != empty(address), "vehicle_registry: zero address"
    self._vins[title] = word
    log TitleMinted(title=title, owner=owner, registrar=msg.sender, vin=vin)
    erc721._safe_mint(owner, title, b"")
    return title


@external
@view
def titleOf(vin: String[17]) -> uint256:
    """
    @dev The title id of the vehicle `vin`.
    @notice Anyone may call; refuses a VIN that has no title.
    @param vin The vehicle identification number.
    @return uint256 The title id, `uint256(keccak256(vin))`.
    """
    title: uint256 = convert(keccak256(vin), uint256)
    assert self._vins[title] != empty(bytes32), "vehicle_registry: unknown VIN"
    return title


@external
@view
def vinOf(title: uint256) -> String[17]:
    """
    @dev The VIN a title was minted for.
    @notice Anyone may call; refuses an unknown title.
    @param title The title id.
    @return String The 17-character VIN.
    """
    return convert(slice(self._known(title), 0, VIN_LENGTH), String[17])


@external
@view
def titleExists(title: uint256) -> bool:
    """
    @dev Whether `title` has been minted (titles are never burned).
    @notice Anyone may call.
    @param title The title id.
    @return bool True if the title exists.
    """
    return self._vins[title] != empty(bytes32)


@external
@payable
@nonreentrant
def transferFrom(owner: address, to: address, token_id: uint256):
    """
    @dev Transfers title `token_id` from `owner` to `to` (ERC-721).
    @notice The title's owner or an approved account. Refused while a lien
            is open on the title, and as snekmate's `erc721` refuses (a
            wrong owner, the zero address as recipient, an unknown title).
    @param owner The 20-byte address of the current owner.
    @param to The 20-byte address of the new owner.
    @param token_id The title id.
    """
    self._require_no_lien(token_id)
    assert erc721._is_approved_or_owner(msg.sender, token_id), (
        "erc721: caller is not token owner or approved"
    )
    erc721._transfer(owner, to, token_id)


@external
@payable
@nonreentrant
def safeTransferFrom(owner: address, to: address, token_id: uint256, data: Bytes[1_024] = b""):
    """
    @dev Transfers title `token_id` from `owner` to `to` (ERC-721); a
         contract recipient must accept it (`onERC721Received`).
    @notice The title's owner or an approved account. Refused while a lien
            is open on the title, and as `transferFrom` is.
    @param owner The 20-byte address of the current owner.
    @param to The 20-byte address of the new owner.
    @param token_id The title id.
    @param data Up to 1,024 bytes passed on to a contract recipient.
    """
    self._require_no_lien(token_id)
    assert erc721._is_approved_or_owner(msg.sender, token_id), (
        "erc721: caller is not token owner or approved"
    )
    erc721._safe_transfer(owner, to, token_id, data)


# -- liens --------------------------------------------------------------------


@external
def recordLien(title: uint256, lender: address, amount: uint256):
    """
    @dev Records that `lender` holds a lien on `title` with payoff
         `amount`; the title cannot be transferred until the lien is
         released. Emits `LienRecorded`.
    @notice Only a registrar. Refuses an unknown title, the zero address as
            lender, a payoff above `MAX_PAYOFF` and a title that already
            has an open lien.
    @param title The title id.
    @param lender The 20-byte address of the lienholder.
    @param amount The payoff amount in the loan currency's smallest unit
           (0 if not stated), at most `MAX_PAYOFF`.
    """
    assert self.isRegistrar[msg.sender], "vehicle_registry: caller is not a registrar"
    self._known(title)
    assert lender != empty(address), "vehicle_registry: zero address"
    assert self._liens[title] == 0, "vehicle_registry: lien already open"
    self._liens[title] = self._pack_lien(lender, amount)
    log LienRecorded(title=title, lender=lender, registrar=msg.sender, amount=amount)


@external
def setLienPayoff(title: uint256, amount: uint256):
    """
    @dev Changes the payoff of the open lien on `title` (the loan is paid
         down, or interest accrues). Emits `LienPayoffChanged`.
    @notice Only the lienholder or a registrar. Refuses a title without an
            open lien and a payoff above `MAX_PAYOFF`.
    @param title The title id.
    @param amount The new payoff amount.
    """
    lender: address = self._open_lien(title)
    previous: uint256 = self._liens[title] >> _PAYOFF_SHIFT
    self._liens[title] = self._pack_lien(lender, amount)
    log LienPayoffChanged(title=title, lender=lender, previous=previous, amount=amount)


@external
def releaseLien(title: uint256):
    """
    @dev Releases the open lien on `title`; the title can move again.
         Emits `LienReleased`.
    @notice Only the lienholder or a registrar. Refuses a title without an
            open lien.
    @param title The title id.
    """
    lender: address = self._open_lien(title)
    self._liens[title] = 0
    log LienReleased(title=title, lender=lender, by=msg.sender)


@external
@view
def lienOf(title: uint256) -> (address, uint256):
    """
    @dev The open lien on `title`: who holds it and its payoff.
    @notice Anyone may call; a title without a lien (or an unknown one)
            gives the zero address and 0.
    @param title The title id.
    @return address The 20-byte lienholder (zero if no lien).
    @return uint256 The payoff amount.
    """
    word: uint256 = self._liens[title]
    return convert(word & _ADDRESS_MASK, address), word >> _PAYOFF_SHIFT


# -- service history ----------------------------------------------------------


@external
def recordService(title: uint256, document_hash: bytes32, odometer: uint256) -> uint256:
    """
    @dev Anchors a service record against the vehicle: the hash of the
         repair document, the odometer reading and the block's timestamp.
         Emits `ServiceRecorded`.
    @notice Only an authorized repair shop. Refuses an unknown title, a
            zero document hash, a reading above `MAX_ODOMETER` and a
            reading below the vehicle's last one (odometers only go up; an
            equal reading is accepted).
    @param title The title id.
    @param document_hash The 32-byte hash of the repair document.
    @param odometer The odometer reading, in kilometres.
    @return uint256 The record's index in the vehicle's history.
    """
    assert self.isRepairShop[msg.sender], "vehicle_registry: caller is not a repair shop"
    self._known(title)
    assert document_hash != empty(bytes32), "vehicle_registry: zero document hash"
    assert odometer <= MAX_ODOMETER, "vehicle_registry: odometer out of range"
    head: uint256 = self._service_heads[title]
    assert odometer >= head >> _HEAD_ODOMETER_SHIFT, "vehicle_registry: odometer rollback"
    index: uint256 = head & _UINT128_MASK
    # No overflow: a record costs gas, 2**128 of them are out of reach.
    self._service_heads[title] = unsafe_add(index, 1) | (odometer << _HEAD_ODOMETER_SHIFT)
    self._service_documents[title][index] = document_hash
    self._service_words[title][index] = (
        convert(msg.sender, uint256)
        | (odometer << _ODOMETER_SHIFT)
        | ((block.timestamp & _UINT48_MASK) << _TIMESTAMP_SHIFT)
    )
    log ServiceRecorded(
        title=title,
        shop=msg.sender,
        document_hash=document_hash,
        index=index,
        odometer=odometer,
        timestamp=block.timestamp,
    )
    return index


@external
@view
def serviceRecord(title: uint256, index: uint256) -> (bytes32, uint256, uint256, address):
    """
    @dev One record of a vehicle's service history.
    @notice Anyone may call; refuses an index beyond the history.
    @param title The title id.
    @param index The record's index (0 the oldest).
    @return bytes32 The 32-byte hash of the repair document.
    @return uint256 The odometer reading.
    @return uint256 The timestamp of the block that anchored it.
    @return address The 20-byte address of the repair shop.
    """
    assert index < self._service_heads[title] & _UINT128_MASK, (
        "vehicle_registry: no such service record"
    )
    word: uint256 = self._service_words[title][index]
    return (
        self._service_documents[title][index],
        (word >> _ODOMETER_SHIFT) & _UINT48_MASK,
        word >> _TIMESTAMP_SHIFT,
        convert(word & _ADDRESS_MASK, address),
    )


@external
@view
def serviceCount(title: uint256) -> uint256:
    """
    @dev How many service records the vehicle has.
    @notice Anyone may call; 0 for an unknown title.
    @param title The title id.
    @return uint256 The number of records.
    """
    return self._service_heads[title] & _UINT128_MASK


@external
@view
def odometerOf(title: uint256) -> uint256:
    """
    @dev The vehicle's last (highest) recorded odometer reading: the least
         the next record may carry.
    @notice Anyone may call; 0 for a title without records.
    @param title The title id.
    @return uint256 The odometer reading, in kilometres.
    """
    return self._service_heads[title] >> _HEAD_ODOMETER_SHIFT


# -- internals ----------------------------------------------------------------


@internal
@view
def _known(title: uint256) -> bytes32:
    """
    @dev The VIN word of `title`; reverts for an unknown title.
    """
    word: bytes32 = self._vins[title]
    assert word != empty(bytes32), "vehicle_registry: unknown title"
    return word


@internal
@view
def _open_lien(title: uint256) -> address:
    """
    @dev The lender of the open lien on `title`, if the caller is its
         lienholder or a registrar; reverts otherwise.
    """
    lender: address = convert(self._liens[title] & _ADDRESS_MASK, address)
    assert lender != empty(address), "vehicle_registry: no open lien"
    assert msg.sender == lender or self.isRegistrar[msg.sender], (
        "vehicle_registry: caller is not the lienholder or a registrar"
    )
    return lender


@internal
@pure
def _pack_lien(lender: address, amount: uint256) -> uint256:
    """
    @dev A lien's word; reverts for a payoff above `MAX_PAYOFF`.
    """
    assert amount <= MAX_PAYOFF, "vehicle_registry: payoff too large"
    return convert(lender, uint256) | (amount << _PAYOFF_SHIFT)


@internal
@view
def _require_no_lien(title: uint256):
    """
    @dev Refuses to move a title with an open lien.
    """
    assert self._liens[title] == 0, "vehicle_registry: title has an open lien"


@internal
@pure
def _vin_word(vin: String[17]) -> bytes32:
    """
    @dev The VIN left-aligned in a word; reverts unless it is 17
         characters of the VIN alphabet.
    """
    assert len(vin) == VIN_LENGTH, "vehicle_registry: malformed VIN"
    word: bytes32 = convert(convert(vin, Bytes[17]), bytes32)
    chars: uint256 = convert(word, uint256)
    for i: uint256 in range(VIN_LENGTH):
        c: uint256 = (chars >> (248 - 8 * i)) & 255
        assert (_VIN_CHARSET >> c) & 1 == 1, "vehicle_registry: malformed VIN"
    return word
