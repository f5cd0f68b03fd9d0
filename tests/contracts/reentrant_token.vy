# pragma version ~=0.4.3
"""
@title Re-entering token for the checkout tests
@custom:contract-name reentrant_token
@license GNU Affero General Public License v3.0 only
@notice A minimal ERC-20 whose `transfer` and `transferFrom`, once armed,
        call back into a target with stored calldata and record whether
        that call succeeded. Balances are free to mint; allowances are not
        checked.
"""


# @dev Each account's balance.
balanceOf: public(HashMap[address, uint256])


# @dev The contract to call back, and with what.
_target: address
_payload: Bytes[1024]


# @dev Whether the last call back succeeded, and how many were made.
reentered: public(bool)
attempts: public(uint256)


@external
def mint(to: address, amount: uint256):
    """
    @dev Credits `amount` to `to`.
    @notice Anyone.
    @param to The 20-byte receiver.
    @param amount The amount.
    """
    self.balanceOf[to] += amount


@external
def arm(target: address, payload: Bytes[1024]):
    """
    @dev Makes the next transfers call `target` with `payload`.
    @notice Anyone.
    @param target The 20-byte contract to call back.
    @param payload The calldata of the call back.
    """
    self._target = target
    self._payload = payload


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from the caller to `to`, then calls back if armed.
    @notice Anyone.
    @param to The 20-byte receiver.
    @param amount The amount.
    @return bool True.
    """
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from `owner` to `to`, then calls back if armed.
    @notice Anyone.
    @param owner The 20-byte sender.
    @param to The 20-byte receiver.
    @param amount The amount.
    @return bool True.
    """
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    if self._target != empty(address):
        self.attempts += 1
        self.reentered = raw_call(self._target, self._payload, revert_on_failure=False)
