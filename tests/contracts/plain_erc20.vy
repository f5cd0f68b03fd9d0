# pragma version ~=0.4.3
"""
@title Plain ERC-20 for tests and benchmarks
@custom:contract-name plain_erc20
@license GNU Affero General Public License v3.0 only
@notice A fixed-supply ERC-20 with 6 decimals, built on snekmate's
        `erc20` module. The constructor takes no arguments and mints
        `INITIAL_SUPPLY` to the deployer, so a benchmark can deploy it
        from bare bytecode. It exports only the ERC-20 standard surface:
        - `transfer`, `approve`, `transferFrom` (`external` functions),
        - `balanceOf`, `allowance`, `totalSupply`, `name`, `symbol`,
          `decimals` (`external` `view` functions).
"""


# @dev The `erc20` module needs an `ownable` to grant the minter role to.
from snekmate.auth import ownable
initializes: ownable


# @dev All token logic and storage come from snekmate's audited module.
from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]


exports: (
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
)


# @dev The amount minted to the deployer: one billion units of 6 decimals.
INITIAL_SUPPLY: constant(uint256) = 10**9 * 10**6


@deploy
def __init__():
    """
    @dev Sets up the token and mints `INITIAL_SUPPLY` to `msg.sender`.
    @notice Anyone may deploy it; the deployer holds the whole supply.
    """
    ownable.__init__()
    erc20.__init__("Plain Test Token", "PLAIN", 6, "Plain Test Token", "1")
    erc20._mint(msg.sender, INITIAL_SUPPLY)
