"""vehicle_escrow.vy: escrows of vehicle sales; every function, refusal and event, on both
nodes, and the gas of each step."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import keccak

from carpay.chain import compile_contract
from carpay.errors import TransactionReverted
from carpay.testing.signing import Domain, sign_permit
from tests.contracts.checkout_fixtures import (
    CONTRACTS,
    ZERO,
    advance_past,
    events,
    latest_timestamp,
    reverts,
)
from tests.contracts.escrow_fixtures import (
    ARBITER,
    BUYER,
    DEPOSITED,
    DISPUTED,
    FEE_BPS,
    FUNDED,
    FUNDS,
    PAYOFF,
    PRICE,
    SELLER,
    SETTLED,
    UNWOUND,
    deploy_sales,
    mint_title,
)
from tests.contracts.vehicle_fixtures import LENDER, OWNER, REGISTRAR, STRANGER, TREASURY, VINS

FEE = PRICE * FEE_BPS // 10_000
NOT_BUYER = "vehicle_escrow: caller is not the buyer"
NOT_SELLER = "vehicle_escrow: caller is not the seller"
NOT_PARTY = "vehicle_escrow: caller is not a party"
NOT_ARBITER = "vehicle_escrow: caller is not the arbiter"
CLOSED = "vehicle_escrow: escrow closed"
LATE = "vehicle_escrow: deadline passed"
#: Seconds from the last block to a deadline that a test lets pass.
SOON = 8  # seconds: create, fund, deposit and the step tested fit in it on a busy machine


@pytest.fixture
def s(chain, accounts):
    return deploy_sales(chain, accounts)


@pytest.fixture
def title(s):
    """The title of VINS[0], owned by the seller."""
    return mint_title(s)


@pytest.fixture
def liened(s, title):
    """The seller's title with LENDER's lien (registered payoff 15,000.00)."""
    s.record_lien(title, 15_000 * 10**6)
    return title


@pytest.fixture
def eid(s, title):
    """An escrow of the seller's title at PRICE, nothing in yet."""
    return s.create(title)


@pytest.fixture
def both_in(s, eid):
    """The escrow with the price and the title in."""
    s.fund(eid)
    s.deposit(eid)
    return eid


@pytest.fixture
def soon(s, title):
    """An escrow of the seller's title whose deadline passes seconds from now, both sides in.

    The embedded node has no clock to move: its blocks follow the wall clock, so a deadline
    that passes must be close."""
    eid = s.create(title, deadline=latest_timestamp(s.chain) + SOON)
    s.fund(eid)
    s.deposit(eid)
    return eid


def escrow_of(s, eid) -> dict:
    fields = [
        "title",
        "seller",
        "buyer",
        "token",
        "arbiter",
        "price",
        "deadline",
        "fee_bps",
        "lender",
        "payoff",
        "state",
    ]
    return dict(zip(fields, s.f.escrow(eid).call(), strict=True))


def deadline_of(s, eid) -> int:
    return s.f.escrow(eid).call()[6]


# -- deployment -----------------------------------------------------------------------------


def test_deploy_binds_registries_and_fee(s):
    f = s.f
    assert f.vehicles().call() == s.registry.address
    assert f.merchants().call() == s.merchants.address
    assert f.feeBps().call() == FEE_BPS
    assert f.escrowCount().call() == 0
    assert f.MAX_PRICE().call() == 2**96 - 1
    assert f.MAX_FEE_BPS().call() == 1_000
    assert [f.FUNDED().call(), f.DEPOSITED().call(), f.DISPUTED().call()] == [1, 2, 4]
    assert [f.SETTLED().call(), f.UNWOUND().call()] == [8, 16]
    domain = f.eip712Domain().call()
    assert domain[1:5] == ["carpay vehicle escrow", "1", s.chain.chain_id, s.escrow.address]
    type_hash = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    separator = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [type_hash, keccak(text=domain[1]), keccak(text="1"), domain[3], s.escrow.address],
        )
    )
    assert f.DOMAIN_SEPARATOR().call() == separator


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("zero", "m", 250), "vehicle_escrow: zero address"),
        (("v", "zero", 250), "vehicle_escrow: zero address"),
        (("v", "m", 1_001), "vehicle_escrow: fee too high"),
    ],
)
def test_deploy_refusals(chain, accounts, s, args, reason):
    named = {"zero": ZERO, "v": s.registry.address, "m": s.merchants.address}
    values = [named.get(a, a) for a in args]
    with pytest.raises(TransactionReverted) as exc:
        chain.deploy("vehicle_escrow", *values, sender=accounts[OWNER])
    assert exc.value.reason == reason


# -- creation -------------------------------------------------------------------------------


def test_the_titles_owner_creates_an_escrow(chain, s, title):
    deadline = latest_timestamp(chain) + 7200
    fn = s.f.createEscrow(
        title, s[BUYER].address, s.token.address, PRICE, deadline, s[ARBITER].address
    )
    receipt = chain.transact(s[SELLER], fn)
    assert s.f.escrowCount().call() == 1
    assert events(chain, receipt, s.escrow, "EscrowCreated") == [
        {
            "escrow_id": 1,
            "title": title,
            "seller": s[SELLER].address,
            "buyer": s[BUYER].address,
            "token": s.token.address,
            "arbiter": s[ARBITER].address,
            "price": PRICE,
            "deadline": deadline,
            "fee_bps": FEE_BPS,
        }
    ]
    assert escrow_of(s, 1) == {
        "title": title,
        "seller": s[SELLER].address,
        "buyer": s[BUYER].address,
        "token": s.token.address,
        "arbiter": s[ARBITER].address,
        "price": PRICE,
        "deadline": deadline,
        "fee_bps": FEE_BPS,
        "lender": ZERO,
        "payoff": 0,
        "state": 0,
    }
    # Nothing moved, and ids go on.
    assert s.owner_of(title) == s[SELLER].address
    assert s.create(title) == 2


def test_unknown_escrows_are_refused(chain, s):
    with pytest.raises(Exception, match="vehicle_escrow: unknown escrow"):
        s.f.escrow(1).call()
    for fn in (s.f.fund(1), s.f.depositTitle(1), s.f.settle(1), s.f.dispute(1)):
        assert reverts(chain, s[BUYER], fn) == "vehicle_escrow: unknown escrow"
    for fn in (s.f.resolve(1, True), s.f.cancel(1), s.f.reclaim(1)):
        assert reverts(chain, s[BUYER], fn) == "vehicle_escrow: unknown escrow"


@pytest.mark.parametrize("caller", [BUYER, STRANGER, REGISTRAR])
def test_only_the_titles_owner_creates(chain, s, title, caller):
    fn = s.f.createEscrow(
        title, s[BUYER].address, s.token.address, PRICE, 2**40, s[ARBITER].address
    )
    assert reverts(chain, s[caller], fn) == "vehicle_escrow: caller is not the title's owner"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"buyer": ZERO}, "vehicle_escrow: invalid buyer"),
        ({"buyer": "seller"}, "vehicle_escrow: invalid buyer"),
        ({"token": ZERO}, "vehicle_escrow: zero token"),
        ({"arbiter": ZERO}, "vehicle_escrow: invalid arbiter"),
        ({"arbiter": "seller"}, "vehicle_escrow: invalid arbiter"),
        ({"arbiter": "buyer"}, "vehicle_escrow: invalid arbiter"),
        ({"price": 0}, "vehicle_escrow: zero price"),
        ({"price": 2**96}, "vehicle_escrow: price too large"),
        ({"deadline": "now"}, "vehicle_escrow: deadline passed"),
        ({"deadline": 2**48}, "vehicle_escrow: deadline too far"),
    ],
)
def test_create_refusals(chain, s, title, change, reason):
    named = {"seller": s[SELLER].address, "buyer": s[BUYER].address, "now": 0}
    terms = {
        "buyer": s[BUYER].address,
        "token": s.token.address,
        "price": PRICE,
        "deadline": latest_timestamp(chain) + 3600,
        "arbiter": s[ARBITER].address,
    }
    terms.update({k: named.get(v, v) if isinstance(v, str) else v for k, v in change.items()})
    if change.get("deadline") == "now":
        terms["deadline"] = latest_timestamp(chain)
    fn = s.f.createEscrow(title, *terms.values())
    assert reverts(chain, s[SELLER], fn) == reason


# -- funding --------------------------------------------------------------------------------


def test_the_buyer_funds(chain, s, eid):
    receipt = s.fund(eid)
    assert events(chain, receipt, s.escrow, "EscrowFunded") == [
        {"escrow_id": eid, "buyer": s[BUYER].address, "amount": PRICE}
    ]
    assert s.balance(s.escrow) == PRICE
    assert s.balance(s[BUYER]) == FUNDS - PRICE
    assert s.state(eid) == FUNDED


def test_the_buyer_funds_after_a_permit(chain, s, eid):
    f = s.token.functions
    chain.transact(s[BUYER], f.approve(s.escrow.address, 0))
    deadline = latest_timestamp(chain) + 600
    sig = sign_permit(
        s[BUYER], Domain.of(s.token), spender=s.escrow.address, value=PRICE, nonce=0,
        deadline=deadline,
    )  # fmt: skip
    # Anyone relays the permit; the buyer funds.
    permit = f.permit(s[BUYER].address, s.escrow.address, PRICE, deadline, *sig)
    chain.transact(s[STRANGER], permit)
    s.fund(eid)
    assert s.balance(s.escrow) == PRICE


@pytest.mark.parametrize("caller", [SELLER, STRANGER, ARBITER])
def test_only_the_buyer_funds(chain, s, eid, caller):
    assert reverts(chain, s[caller], s.f.fund(eid)) == NOT_BUYER


def test_fund_refusals(chain, s, eid, title):
    s.fund(eid)
    assert reverts(chain, s[BUYER], s.f.fund(eid)) == "vehicle_escrow: already funded"
    late = s.create(title, price=FUNDS + 1, deadline=latest_timestamp(chain) + SOON)
    assert (
        reverts(chain, s[BUYER], s.f.fund(late))
        == "currency_token: transfer amount exceeds balance"
    )
    advance_past(chain, deadline_of(s, late), s[STRANGER])
    assert reverts(chain, s[BUYER], s.f.fund(late)) == LATE
    chain.transact(s[BUYER], s.f.cancel(eid))
    assert reverts(chain, s[BUYER], s.f.fund(eid)) == CLOSED


# -- depositing the title -------------------------------------------------------------------


def test_the_seller_deposits_a_title_without_a_lien(chain, s, eid, title):
    receipt = s.deposit(eid)
    assert events(chain, receipt, s.escrow, "TitleDeposited") == [
        {"escrow_id": eid, "title": title, "lender": ZERO, "payoff": 0}
    ]
    assert s.owner_of(title) == s.escrow.address
    assert s.state(eid) == DEPOSITED


def test_the_seller_deposits_a_liened_title_with_the_lenders_payoff(chain, s, liened):
    eid = s.create(liened)
    lien = s.sign_payoff(liened, eid)
    receipt = s.deposit(eid, *lien)
    assert events(chain, receipt, s.escrow, "TitleDeposited") == [
        {"escrow_id": eid, "title": liened, "lender": s[LENDER].address, "payoff": PAYOFF}
    ]
    assert s.owner_of(liened) == s.escrow.address
    # The lien stays recorded, at the registered payoff, while the lender is unpaid.
    assert s.lien_of(liened) == [s[LENDER].address, 15_000 * 10**6]
    assert escrow_of(s, eid)["lender"] == s[LENDER].address
    assert escrow_of(s, eid)["payoff"] == PAYOFF
    digest = s.f.lienPayoffHash(liened, s[LENDER].address, PAYOFF, eid, lien[1]).call()
    assert s[LENDER].unsafe_sign_hash(digest).signature == lien[2]


def test_a_contract_lender_signs_through_erc1271(chain, s, title):
    wallet = compile_contract(CONTRACTS / "erc1271_wallet.vy")
    address = chain.deploy(wallet, s[LENDER].address, sender=s[LENDER])
    s.record_lien(title, PAYOFF, lender=address)
    eid = s.create(title)
    s.deposit(eid, *s.sign_payoff(title, eid, lender=address))
    assert escrow_of(s, eid)["lender"] == address


@pytest.mark.parametrize("caller", [BUYER, STRANGER, ARBITER])
def test_only_the_seller_deposits(chain, s, eid, caller):
    assert reverts(chain, s[caller], s.f.depositTitle(eid)) == NOT_SELLER


def test_deposit_refusals(chain, s, eid, title):
    s.deposit(eid)
    assert (
        reverts(chain, s[SELLER], s.f.depositTitle(eid))
        == "vehicle_escrow: title already deposited"
    )
    other = mint_title(s, VINS[1])
    late = s.create(other, deadline=latest_timestamp(chain) + SOON)
    chain.transact(s[SELLER], s.registry.functions.setApprovalForAll(s.escrow.address, False))
    assert reverts(chain, s[SELLER], s.f.depositTitle(late)) == (
        "erc721: caller is not token owner or approved"
    )
    advance_past(chain, deadline_of(s, late), s[STRANGER])
    assert reverts(chain, s[SELLER], s.f.depositTitle(late)) == LATE
    chain.transact(s[SELLER], s.f.cancel(eid))
    assert reverts(chain, s[SELLER], s.f.depositTitle(eid)) == CLOSED


def test_liened_deposit_refusals(chain, s, liened):
    eid = s.create(liened)
    payoff, valid_before, sig = s.sign_payoff(liened, eid)
    bad = "vehicle_escrow: invalid lender signature"
    tries = [
        ((), "vehicle_escrow: payoff statement expired"),  # no statement at all
        ((payoff + 1, valid_before, sig), bad),  # not what the lender signed
        (s.sign_payoff(liened, eid, signer=s[STRANGER], lender=s[LENDER].address), bad),
        (s.sign_payoff(liened, eid + 1), bad),  # for another escrow
        (s.sign_payoff(liened, eid, valid_before=latest_timestamp(chain) - 1), None),
        (s.sign_payoff(liened, eid, PRICE + 1), "vehicle_escrow: price below payoff"),
    ]
    for args, reason in tries:
        if reason is None:  # expired by the time it is mined
            reason = "vehicle_escrow: payoff statement expired"
        assert reverts(chain, s[SELLER], s.f.depositTitle(eid, *args)) == reason
    # The escrow must be a registrar to move a liened title.
    chain.transact(s[OWNER], s.registry.functions.setRegistrar(s.escrow.address, False))
    assert reverts(chain, s[SELLER], s.f.depositTitle(eid, payoff, valid_before, sig)) == (
        "vehicle_registry: caller is not the lienholder or a registrar"
    )
    assert s.owner_of(liened) == s[SELLER].address


def test_a_payoff_equal_to_the_price_is_accepted(chain, s, liened):
    eid = s.create(liened, price=PAYOFF)
    s.deposit(eid, *s.sign_payoff(liened, eid, PAYOFF))
    assert s.owner_of(liened) == s.escrow.address


# -- settlement -----------------------------------------------------------------------------


def test_the_buyer_settles_a_sale_without_a_lien(chain, s, both_in, title):
    receipt = chain.transact(s[BUYER], s.f.settle(both_in))
    assert events(chain, receipt, s.escrow, "EscrowSettled") == [
        {
            "escrow_id": both_in,
            "buyer": s[BUYER].address,
            "seller": s[SELLER].address,
            "lender": ZERO,
            "payoff": 0,
            "fee": FEE,
            "proceeds": PRICE - FEE,
        }
    ]
    assert s.owner_of(title) == s[BUYER].address
    assert s.balance(s[TREASURY]) == FEE
    assert s.balance(s[SELLER]) == FUNDS + PRICE - FEE
    assert s.balance(s.escrow) == 0
    assert s.state(both_in) == FUNDED | DEPOSITED | SETTLED
    assert reverts(chain, s[BUYER], s.f.settle(both_in)) == CLOSED


def test_settlement_pays_off_the_lien_at_the_signed_payoff(chain, s, liened):
    eid = s.create(liened)
    s.deposit(eid, *s.sign_payoff(liened, eid))
    s.fund(eid)
    receipt = chain.transact(s[BUYER], s.f.settle(eid))
    lender = s[LENDER].address
    assert events(chain, receipt, s.escrow, "EscrowSettled") == [
        {
            "escrow_id": eid,
            "buyer": s[BUYER].address,
            "seller": s[SELLER].address,
            "lender": lender,
            "payoff": PAYOFF,
            "fee": FEE,
            "proceeds": PRICE - PAYOFF - FEE,
        }
    ]
    assert events(chain, receipt, s.registry, "LienReleased") == [
        {"title": liened, "lender": lender, "by": s.escrow.address}
    ]
    assert s.balance(lender) == PAYOFF
    assert s.balance(s[TREASURY]) == FEE
    assert s.balance(s[SELLER]) == FUNDS + PRICE - PAYOFF - FEE
    assert s.owner_of(liened) == s[BUYER].address
    assert s.lien_of(liened) == [ZERO, 0]


def test_the_fee_is_capped_by_what_the_lien_leaves(chain, s, liened):
    price = PAYOFF + 100
    eid = s.create(liened, price=price)
    s.deposit(eid, *s.sign_payoff(liened, eid, PAYOFF))
    s.fund(eid)
    receipt = chain.transact(s[BUYER], s.f.settle(eid))
    settled = events(chain, receipt, s.escrow, "EscrowSettled")[0]
    assert (settled["payoff"], settled["fee"], settled["proceeds"]) == (PAYOFF, 100, 0)
    assert s.balance(s[SELLER]) == FUNDS


def test_a_lien_the_lender_released_meanwhile_is_not_paid(chain, s, liened):
    eid = s.create(liened)
    s.deposit(eid, *s.sign_payoff(liened, eid))
    s.fund(eid)
    chain.transact(s[LENDER], s.registry.functions.releaseLien(liened))
    receipt = chain.transact(s[BUYER], s.f.settle(eid))
    settled = events(chain, receipt, s.escrow, "EscrowSettled")[0]
    assert (settled["lender"], settled["payoff"], settled["proceeds"]) == (ZERO, 0, PRICE - FEE)
    assert s.balance(s[LENDER]) == 0
    assert s.owner_of(liened) == s[BUYER].address


def test_a_lien_nobody_signed_for_blocks_settlement_but_not_unwinding(chain, s, both_in, title):
    s.record_lien(title, 5_000, lender=s[STRANGER].address)
    for caller, fn in ((BUYER, s.f.settle(both_in)), (ARBITER, s.f.resolve(both_in, True))):
        assert reverts(chain, s[caller], fn) == "vehicle_escrow: lien not signed for"
    chain.transact(s[ARBITER], s.f.resolve(both_in, False))
    # The title goes back with the lien it now carries.
    assert s.owner_of(title) == s[SELLER].address
    assert s.lien_of(title) == [s[STRANGER].address, 5_000]
    assert s.balance(s[BUYER]) == FUNDS


def test_before_the_deadline_only_the_buyer_settles(chain, s, both_in):
    for caller in (SELLER, STRANGER, ARBITER):
        assert reverts(chain, s[caller], s.f.settle(both_in)) == NOT_BUYER


def test_after_the_deadline_either_party_settles(chain, s, soon, title):
    advance_past(chain, deadline_of(s, soon), s[STRANGER])
    for caller in (STRANGER, ARBITER):
        assert reverts(chain, s[caller], s.f.settle(soon)) == NOT_PARTY
    chain.transact(s[SELLER], s.f.settle(soon))
    assert s.owner_of(title) == s[BUYER].address


def test_settle_refuses_an_escrow_missing_a_side_or_disputed(chain, s, eid):
    not_both = "vehicle_escrow: not both in"
    assert reverts(chain, s[BUYER], s.f.settle(eid)) == not_both
    s.fund(eid)
    assert reverts(chain, s[BUYER], s.f.settle(eid)) == not_both
    s.deposit(eid)
    chain.transact(s[SELLER], s.f.dispute(eid))
    assert reverts(chain, s[BUYER], s.f.settle(eid)) == "vehicle_escrow: disputed"


# -- disputes and the arbiter ---------------------------------------------------------------


@pytest.mark.parametrize("caller", [SELLER, BUYER])
def test_a_party_raises_a_dispute(chain, s, soon, caller):
    receipt = chain.transact(s[caller], s.f.dispute(soon))
    assert events(chain, receipt, s.escrow, "EscrowDisputed") == [
        {"escrow_id": soon, "by": s[caller].address}
    ]
    assert s.state(soon) == FUNDED | DEPOSITED | DISPUTED
    assert reverts(chain, s[BUYER], s.f.dispute(soon)) == "vehicle_escrow: disputed"
    # Neither party can get out on its own now.
    assert reverts(chain, s[SELLER], s.f.cancel(soon)) == "vehicle_escrow: buyer has funded"
    assert reverts(chain, s[BUYER], s.f.cancel(soon)) == "vehicle_escrow: seller has deposited"
    advance_past(chain, deadline_of(s, soon), s[STRANGER])
    assert reverts(chain, s[SELLER], s.f.settle(soon)) == "vehicle_escrow: disputed"
    assert reverts(chain, s[SELLER], s.f.reclaim(soon)) == "vehicle_escrow: both in"


def test_dispute_refusals(chain, s, title):
    eid = s.create(title, deadline=latest_timestamp(chain) + SOON)
    for caller in (STRANGER, ARBITER):
        assert reverts(chain, s[caller], s.f.dispute(eid)) == NOT_PARTY
    assert reverts(chain, s[BUYER], s.f.dispute(eid)) == "vehicle_escrow: not both in"
    s.fund(eid)
    assert reverts(chain, s[BUYER], s.f.dispute(eid)) == "vehicle_escrow: not both in"
    s.deposit(eid)
    advance_past(chain, deadline_of(s, eid), s[STRANGER])
    assert reverts(chain, s[BUYER], s.f.dispute(eid)) == LATE
    chain.transact(s[BUYER], s.f.settle(eid))
    assert reverts(chain, s[BUYER], s.f.dispute(eid)) == CLOSED


def test_the_arbiter_resolves_to_the_buyer(chain, s, liened):
    eid = s.create(liened)
    s.deposit(eid, *s.sign_payoff(liened, eid))
    s.fund(eid)
    chain.transact(s[BUYER], s.f.dispute(eid))
    receipt = chain.transact(s[ARBITER], s.f.resolve(eid, True))
    assert events(chain, receipt, s.escrow, "EscrowResolved") == [
        {"escrow_id": eid, "arbiter": s[ARBITER].address, "to_buyer": True}
    ]
    assert events(chain, receipt, s.escrow, "EscrowSettled")[0]["payoff"] == PAYOFF
    assert s.owner_of(liened) == s[BUYER].address
    assert s.lien_of(liened) == [ZERO, 0]
    assert s.balance(s[SELLER]) == FUNDS + PRICE - PAYOFF - FEE
    assert s.state(eid) == FUNDED | DEPOSITED | DISPUTED | SETTLED


def test_the_arbiter_resolves_to_the_seller_and_the_lien_stays(chain, s, liened):
    eid = s.create(liened)
    s.deposit(eid, *s.sign_payoff(liened, eid))
    s.fund(eid)
    receipt = chain.transact(s[ARBITER], s.f.resolve(eid, False))
    assert events(chain, receipt, s.escrow, "EscrowResolved") == [
        {"escrow_id": eid, "arbiter": s[ARBITER].address, "to_buyer": False}
    ]
    assert events(chain, receipt, s.escrow, "EscrowUnwound") == [
        {"escrow_id": eid, "refund": PRICE, "title_returned": True}
    ]
    assert s.owner_of(liened) == s[SELLER].address
    assert s.lien_of(liened) == [s[LENDER].address, 15_000 * 10**6]
    assert s.balance(s[BUYER]) == FUNDS
    assert s.balance(s.escrow) == 0
    assert s.state(eid) == FUNDED | DEPOSITED | UNWOUND


def test_the_arbiter_unwinds_a_half_filled_escrow_but_cannot_complete_it(chain, s, eid):
    s.fund(eid)
    assert reverts(chain, s[ARBITER], s.f.resolve(eid, True)) == "vehicle_escrow: not both in"
    receipt = chain.transact(s[ARBITER], s.f.resolve(eid, False))
    assert events(chain, receipt, s.escrow, "EscrowUnwound") == [
        {"escrow_id": eid, "refund": PRICE, "title_returned": False}
    ]
    assert s.balance(s[BUYER]) == FUNDS
    assert reverts(chain, s[ARBITER], s.f.resolve(eid, False)) == CLOSED


@pytest.mark.parametrize("caller", [SELLER, BUYER, STRANGER, LENDER])
def test_only_the_arbiter_resolves(chain, s, both_in, caller):
    for to_buyer in (True, False):
        assert reverts(chain, s[caller], s.f.resolve(both_in, to_buyer)) == NOT_ARBITER


# -- calling off and reclaiming -------------------------------------------------------------


def test_the_seller_cancels_before_the_buyer_funds(chain, s, eid, title):
    s.deposit(eid)
    receipt = chain.transact(s[SELLER], s.f.cancel(eid))
    assert events(chain, receipt, s.escrow, "EscrowCancelled") == [
        {"escrow_id": eid, "by": s[SELLER].address}
    ]
    assert events(chain, receipt, s.escrow, "EscrowUnwound") == [
        {"escrow_id": eid, "refund": 0, "title_returned": True}
    ]
    assert s.owner_of(title) == s[SELLER].address
    assert reverts(chain, s[SELLER], s.f.cancel(eid)) == CLOSED


def test_the_buyer_cancels_before_the_seller_deposits(chain, s, eid):
    s.fund(eid)
    receipt = chain.transact(s[BUYER], s.f.cancel(eid))
    assert events(chain, receipt, s.escrow, "EscrowUnwound") == [
        {"escrow_id": eid, "refund": PRICE, "title_returned": False}
    ]
    assert s.balance(s[BUYER]) == FUNDS
    assert s.state(eid) == FUNDED | UNWOUND


def test_cancel_refusals(chain, s, eid):
    for caller in (STRANGER, ARBITER):
        assert reverts(chain, s[caller], s.f.cancel(eid)) == NOT_PARTY
    s.fund(eid)
    assert reverts(chain, s[SELLER], s.f.cancel(eid)) == "vehicle_escrow: buyer has funded"


@pytest.mark.parametrize("caller", [SELLER, BUYER])
def test_after_the_deadline_a_party_reclaims_what_is_in(chain, s, liened, caller):
    deadline = latest_timestamp(chain) + SOON + 2
    funded_only = s.create(liened, deadline=deadline)
    s.fund(funded_only)
    deposited_only = s.create(liened, deadline=deadline)
    empty = s.create(liened, deadline=deadline)
    s.deposit(deposited_only, *s.sign_payoff(liened, deposited_only))
    for eid in (funded_only, deposited_only, empty):
        assert reverts(chain, s[caller], s.f.reclaim(eid)) == "vehicle_escrow: deadline not passed"
    advance_past(chain, deadline_of(s, empty), s[STRANGER])
    for eid in (funded_only, deposited_only, empty):
        for other in (STRANGER, ARBITER):
            assert reverts(chain, s[other], s.f.reclaim(eid)) == NOT_PARTY
    unwound = []
    for eid in (funded_only, deposited_only, empty):
        receipt = chain.transact(s[caller], s.f.reclaim(eid))
        unwound += events(chain, receipt, s.escrow, "EscrowUnwound")
        assert reverts(chain, s[caller], s.f.reclaim(eid)) == CLOSED
    assert unwound == [
        {"escrow_id": funded_only, "refund": PRICE, "title_returned": False},
        {"escrow_id": deposited_only, "refund": 0, "title_returned": True},
        {"escrow_id": empty, "refund": 0, "title_returned": False},
    ]
    assert s.balance(s[BUYER]) == FUNDS
    assert s.owner_of(liened) == s[SELLER].address
    assert s.lien_of(liened) == [s[LENDER].address, 15_000 * 10**6]


def test_reclaim_refuses_when_both_are_in(chain, s, soon):
    advance_past(chain, deadline_of(s, soon), s[STRANGER])
    assert reverts(chain, s[BUYER], s.f.reclaim(soon)) == "vehicle_escrow: both in"


# -- re-entrancy ----------------------------------------------------------------------------


def test_a_token_that_calls_back_cannot_re_enter(chain, s, title):
    token = chain.contract(
        compile_contract(CONTRACTS / "reentrant_token.vy"),
        chain.deploy(compile_contract(CONTRACTS / "reentrant_token.vy"), sender=s[OWNER]),
    )
    eid = s.create(title, token=token.address)
    chain.transact(s[OWNER], token.functions.mint(s[BUYER].address, PRICE))
    s.fund(eid)
    # While the escrow refunds the buyer, the token tries to cancel (and so refund) again.
    payload = s.f.cancel(eid)._encode_transaction_data()
    chain.transact(s[OWNER], token.functions.arm(s.escrow.address, bytes.fromhex(payload[2:])))
    chain.transact(s[BUYER], s.f.cancel(eid))
    assert token.functions.attempts().call() == 1
    assert not token.functions.reentered().call()
    assert token.functions.balanceOf(s[BUYER].address).call() == PRICE
    assert token.functions.balanceOf(s.escrow.address).call() == 0


# -- gas ------------------------------------------------------------------------------------


def test_gas_per_operation(chain, s, liened, record_property):
    used = {}
    plain = mint_title(s, VINS[1])
    eid = s.create(plain)
    used["create"] = chain.w3.eth.get_transaction_receipt(
        chain.w3.eth.get_block("latest")["transactions"][0]
    )["gasUsed"]
    used["fund"] = s.fund(eid)["gasUsed"]
    used["deposit title"] = s.deposit(eid)["gasUsed"]
    used["settle"] = chain.transact(s[BUYER], s.f.settle(eid))["gasUsed"]
    eid = s.create(liened)
    s.fund(eid)
    used["deposit liened title"] = s.deposit(eid, *s.sign_payoff(liened, eid))["gasUsed"]
    used["settle with lien"] = chain.transact(s[BUYER], s.f.settle(eid))["gasUsed"]
    for name, gas in used.items():
        record_property(f"gas {name}", gas)
    print(used)
    assert used["create"] < 180_000
    assert used["settle with lien"] < 200_000
