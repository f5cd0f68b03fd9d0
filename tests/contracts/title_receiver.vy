# pragma version ~=0.4.3
"""
@title ERC-721 receiver for the vehicle registry tests
@custom:contract-name title_receiver
@license GNU Affero General Public License v3.0 only
@notice A contract that takes titles with `safeTransferFrom` when `accept`
        is set and refuses them otherwise, and remembers the last call:
        - `onERC721Received` (`external` function),
        - `setAccept` (`external` function),
        - `accept`, `last_operator`, `last_from`, `last_token_id`,
          `last_data` (`external` `view` functions).
"""


# @dev Whether `onERC721Received` answers with the ERC-721 magic value.
accept: public(bool)


# @dev The arguments of the last `onERC721Received` call.
last_operator: public(address)
last_from: public(address)
last_token_id: public(uint256)
last_data: public(Bytes[1_024])


@deploy
def __init__(accept_: bool):
    """
    @dev Sets whether titles are accepted.
    @param accept_ True to accept titles.
    """
    self.accept = accept_


@external
def setAccept(accept_: bool):
    """
    @dev Changes whether titles are accepted.
    @notice Anyone may call (a test contract).
    @param accept_ True to accept titles.
    """
    self.accept = accept_


@external
def onERC721Received(operator: address, owner: address, token_id: uint256, data: Bytes[1_024]) -> bytes4:
    """
    @dev Records the call; answers the magic value only when accepting.
    @notice Called by an ERC-721 contract on a safe transfer.
    @param operator The 20-byte address that sent the transfer.
    @param owner The 20-byte previous owner.
    @param token_id The token id.
    @param data The data passed with the transfer.
    @return bytes4 The ERC-721 magic value, or zero.
    """
    self.last_operator = operator
    self.last_from = owner
    self.last_token_id = token_id
    self.last_data = data
    if self.accept:
        return method_id("onERC721Received(address,address,uint256,bytes)", output_type=bytes4)
    return empty(bytes4)
