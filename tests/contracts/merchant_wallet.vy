# pragma version ~=0.4.3
"""
@title ERC-1271 merchant wallet for the checkout tests
@custom:contract-name merchant_wallet
@license GNU Affero General Public License v3.0 only
@notice A contract merchant: accepts an ECDSA signature of its owner key
        through `isValidSignature`, and forwards the owner's calls
        (`execute`) so that it can refund, capture and void.
"""


# @dev The key whose signatures the wallet accepts.
owner: public(address)


@deploy
def __init__(owner_: address):
    """
    @dev Sets the signing key.
    @notice Anyone may deploy it.
    @param owner_ The 20-byte address of the key.
    """
    self.owner = owner_


@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[65]) -> bytes4:
    """
    @dev ERC-1271: the magic value when `signature` is the owner's.
    @notice Anyone may call.
    @param digest The 32-byte digest.
    @param signature The owner's signature `r ‖ s ‖ v`.
    @return bytes4 0x1626ba7e if valid, else 0xffffffff.
    """
    if len(signature) == 65:
        r: uint256 = extract32(signature, 0, output_type=uint256)
        s: uint256 = extract32(signature, 32, output_type=uint256)
        v: uint256 = convert(slice(signature, 64, 1), uint256)
        if ecrecover(digest, v, r, s) == self.owner:
            return 0x1626BA7E
    return 0xFFFFFFFF


@external
def execute(target: address, data: Bytes[2048]):
    """
    @dev Calls `target` with `data` as the wallet.
    @notice Only the owner.
    @param target The 20-byte address to call.
    @param data The calldata.
    """
    assert msg.sender == self.owner, "merchant_wallet: caller is not the owner"
    raw_call(target, data)
