# pragma version ~=0.4.3
"""
@title ERC-1271 wallet for tests
@custom:contract-name erc1271_wallet
@license GNU Affero General Public License v3.0 only
@notice A contract account that signs like its owner EOA: its ERC-1271
        `isValidSignature(hash, r ‖ s ‖ v)` accepts exactly the owner's
        ECDSA signatures of `hash`. Tests use it as a payer with code
        (a vehicle wallet). External functions:
        - `isValidSignature` (`external` `view` function),
        - `owner` (`external` `view` function).
"""


# @dev The ERC-1271 magic value: `isValidSignature`'s selector.
_MAGIC_VALUE: constant(bytes4) = 0x1626ba7e


# @dev The EOA whose signatures the wallet accepts.
owner: public(immutable(address))


@deploy
def __init__(owner_: address):
    """
    @dev Sets the owner whose signatures count as the wallet's.
    @notice Anyone may deploy it.
    @param owner_ The 20-byte address of the owner EOA.
    """
    owner = owner_


@external
@view
def isValidSignature(hash: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev Returns the magic value when `signature` (`r ‖ s ‖ v`) is the
         owner's signature of `hash`, and `0xffffffff` otherwise.
    @notice Anyone may call it.
    @param hash The 32-byte digest that was signed.
    @param signature The 65-byte signature `r ‖ s ‖ v`.
    @return bytes4 The magic value, or `0xffffffff`.
    """
    if len(signature) != 65:
        return 0xffffffff
    r: bytes32 = extract32(signature, 0)
    s: bytes32 = extract32(signature, 32)
    v: uint8 = convert(slice(signature, 64, 1), uint8)
    if ecrecover(hash, v, r, s) == owner:
        return _MAGIC_VALUE
    return 0xffffffff
