# pragma version ~=0.4.3
"""
@title Reverter for revert-decoding tests
@custom:contract-name reverter
@license GNU Affero General Public License v3.0 only
@notice Fails on purpose so the Python side can prove it decodes failures:
        - `fail` (`external` function) reverts with `"reverter: no"`,
        - `panic` (`external` function) reverts with Panic(0x12),
        - `bare` (`external` function) reverts without data,
        - `touch` (`external` function) succeeds unless `should_fail`.
"""


# @dev How many times `touch` succeeded; proves a state change happened.
touches: public(uint256)


@external
def fail():
    """
    @dev Always reverts with an Error(string) reason.
    @notice Anyone may call it; it always refuses.
    """
    raise "reverter: no"


@external
def panic():
    """
    @dev Reverts with Panic(uint256) code 0x12, the data a Solidity contract
         returns on division by zero. Vyper itself never emits Panic (its
         failed checks revert without data), so the bytes are built by hand.
    @notice Anyone may call it; it always refuses.
    """
    raw_revert(concat(method_id("Panic(uint256)"), convert(18, bytes32)))


@external
def bare():
    """
    @dev Reverts without any revert data.
    @notice Anyone may call it; it always refuses.
    """
    raise


@external
def touch(should_fail: bool):
    """
    @dev Counts a call, or reverts with a reason when `should_fail`.
    @notice Anyone may call it; it refuses when asked to.
    @param should_fail Whether to revert with `"reverter: asked to fail"`.
    """
    assert not should_fail, "reverter: asked to fail"
    self.touches += 1
