# pragma version ~=0.4.3
"""
@title Fee-on-transfer token for tests
@custom:contract-name fee_token
@license GNU Affero General Public License v3.0 only
@notice An ERC-20 whose transfers deliver 1% less than they move: tests
        show that contracts holding premiums refuse it. External
        functions: `mint` (anyone), `approve`, `transfer`, `transferFrom`,
        `balanceOf`, `allowance`.
"""


# @dev Balances.
balanceOf: public(HashMap[address, uint256])


# @dev Allowances.
allowance: public(HashMap[address, HashMap[address, uint256]])


@external
def mint(to: address, amount: uint256):
    """
    @dev Credits `amount` to `to`.
    @notice Anyone may call (a test token).
    @param to The 20-byte recipient.
    @param amount The amount.
    """
    self.balanceOf[to] += amount


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Sets the caller's allowance to `spender`.
    @notice Anyone may call.
    @param spender The 20-byte spender.
    @param amount The allowance.
    @return bool True.
    """
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from the caller; `to` receives 1% less.
    @notice Anyone may call.
    @param to The 20-byte recipient.
    @param amount The amount taken from the caller.
    @return bool True.
    """
    self.balanceOf[msg.sender] -= amount
    self.balanceOf[to] += amount - amount // 100
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from `owner` within the caller's allowance; `to`
         receives 1% less.
    @notice Anyone with an allowance.
    @param owner The 20-byte owner.
    @param to The 20-byte recipient.
    @param amount The amount taken from the owner.
    @return bool True.
    """
    self.allowance[owner][msg.sender] -= amount
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount - amount // 100
    return True
