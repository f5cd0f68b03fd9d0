"""insurance.vy: offers by insurers, acceptance by the vehicle's owner (a transaction or an EIP-712
signature), auto-renewal within the accepted maximum, lapse after the grace period, cancellation
with the insurer's refund rule, earned premium and its withdrawal, claims; every function,
refusal and event, on both nodes."""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data

from carpay.chain import compile_contract, contract
from carpay.errors import TransactionReverted
from tests.contracts.checkout_fixtures import ZERO, advance_past, events, latest_timestamp, reverts
from tests.contracts.insurance_fixtures import (
    ACCEPTANCE_TYPES,
    ACTIVE,
    CANCELLED,
    FEE_BPS,
    FUNDS,
    INSURER,
    INSURER_CATEGORY,
    LAPSED,
    NONE,
    OFFERED,
    PREMIUM,
    WITHDRAWN,
    deploy_insurance,
)
from tests.contracts.vehicle_fixtures import (
    ALICE,
    BOB,
    CONTRACTS,
    OWNER,
    PAYOUT,
    REGISTRAR,
    STRANGER,
    TREASURY,
    VINS,
)

NOT_INSURER = "insurance: not an active insurer"
NOT_POLICY_INSURER = "insurance: caller is not the insurer"
NOT_HOLDER = "insurance: caller is not the holder"
NOT_ACTIVE = "insurance: policy not active"
NOT_OFFER = "insurance: not an open offer"
ABOVE_MAX = "insurance: premium above the accepted maximum"
SHORT_ALLOWANCE = "currency_token: insufficient allowance"
#: A term that a test lets end: the embedded node's clock is the wall clock (or one second per
#: block), so a test waits for whatever it lets pass.
SHORT = 3
#: The term and grace period of a policy a test renews: time for the keeper within the grace
#: period (``advance_past`` mines a block a second to reach the end of the term).
TERM = 30


@pytest.fixture
def w(chain, accounts):
    """Registries, token and insurance; ALICE owns the vehicle VINS[0]."""
    world = deploy_insurance(chain, accounts)
    world.title = world.vehicles.mint(VINS[0], ALICE)
    return world


@pytest.fixture
def offered(w):
    """An offer of 600.00 for an hour's term, grace 10 minutes, fully pro-rata refunds."""
    return w.offer(w.title)


@pytest.fixture
def active(w, offered):
    """The offer accepted by ALICE with a maximum of 700.00."""
    w.accept(offered, 700 * 10**6)
    return offered


@pytest.fixture
def due(chain, w):
    """An accepted policy of a `TERM`-second term (and grace) whose term has ended."""
    policy_id = w.offer(w.title, term=TERM, grace=TERM)
    w.accept(policy_id, 700 * 10**6)
    advance_past(chain, w.f.paidThrough(policy_id).call() - 1, w[STRANGER])
    return policy_id


def block_time(chain, receipt) -> int:
    return chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]


def refund_at(paid: int, start: int, term: int, now: int, refund_bps: int) -> int:
    """The contract's rule: the unearned premium at ``now`` times the refund rule, rounded down."""
    earned = paid if now >= start + term else paid * (now - start) // term
    return (paid - earned) * refund_bps // 10_000


def test_deploy_binds_the_registries(w):
    f = w.f
    assert f.merchants().call() == w.merchants.address
    assert f.vehicles().call() == w.vehicles.registry.address
    assert f.policyCount().call() == 0
    assert f.INSURER_CATEGORY().call() == INSURER_CATEGORY
    assert f.MAX_PREMIUM().call() == 2**96 - 1
    assert f.MAX_PERIOD().call() == 2**32 - 1
    assert f.MAX_REFUND_BPS().call() == 10_000
    statuses = [
        f.STATUS_NONE(),
        f.STATUS_OFFERED(),
        f.STATUS_ACTIVE(),
        f.STATUS_LAPSED(),
        f.STATUS_CANCELLED(),
        f.STATUS_WITHDRAWN(),
    ]
    assert [s.call() for s in statuses] == [NONE, OFFERED, ACTIVE, LAPSED, CANCELLED, WITHDRAWN]
    assert w.policy(1)["status"] == NONE


@pytest.mark.parametrize("which", [0, 1])
def test_deploy_refuses_zero_registries(chain, accounts, w, which):
    args = [w.merchants.address, w.vehicles.registry.address]
    args[which] = ZERO
    with pytest.raises(TransactionReverted) as info:
        chain.deploy(contract("insurance"), *args, sender=accounts[OWNER])
    assert info.value.reason == "insurance: zero address"


def test_the_eip712_domain_names_chain_and_contract(chain, w):
    fields, name, version, chain_id, verifying, salt, extensions = w.f.eip712Domain().call()
    assert (name, version, chain_id, verifying) == (
        "carpay insurance",
        "1",
        chain.chain_id,
        w.insurance.address,
    )
    assert fields == b"\x0f" and salt == b"\x00" * 32 and extensions == []
    message = {
        "policyId": 7,
        "holder": w[ALICE].address,
        "maxPremium": PREMIUM,
        "nonce": 3,
        "deadline": 99,
    }
    domain = {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": verifying,
    }
    signable = encode_typed_data(domain, ACCEPTANCE_TYPES, message)
    expected = w[ALICE].sign_message(signable).message_hash
    assert w.f.acceptanceHash(7, w[ALICE].address, PREMIUM, 3, 99).call() == expected


# -- offers ----------------------------------------------------------------------------------


def test_an_insurer_offers_a_policy(chain, w):
    insurer = w[INSURER]
    expiry = latest_timestamp(chain) + 86_400
    fn = w.f.offerPolicy(w.title, w.token.address, PREMIUM, 30 * 86_400, 7 * 86_400, 9_000, expiry)
    assert chain.call(fn, sender=insurer) == 1
    receipt = chain.transact(insurer, fn)
    assert events(chain, receipt, w.insurance, "PolicyOffered") == [
        {
            "policy_id": 1,
            "title": w.title,
            "insurer": insurer.address,
            "token": w.token.address,
            "premium": PREMIUM,
            "term": 30 * 86_400,
            "grace": 7 * 86_400,
            "refund_bps": 9_000,
            "offer_expiry": expiry,
        }
    ]
    assert w.f.policyCount().call() == 1
    assert w.policy(1) == {
        "insurer": insurer.address,
        "title": w.title,
        "token": w.token.address,
        "premium": PREMIUM,
        "term": 30 * 86_400,
        "grace": 7 * 86_400,
        "refund_bps": 9_000,
        "holder": ZERO,
        "max_premium": 0,
        "start": expiry,
        "paid_through": 0,
        "status": OFFERED,
    }
    assert not w.f.isCovered(1).call()
    assert w.f.paidThrough(1).call() == 0
    assert w.balance(w.insurance.address) == 0


def test_offers_carry_the_largest_values(chain, w):
    top = 2**32 - 1
    w.offer(w.title, 2**96 - 1, term=top, grace=top, refund_bps=10_000, expiry=2**64 - 1)
    policy = w.policy(1)
    assert (policy["premium"], policy["term"], policy["grace"], policy["start"]) == (
        2**96 - 1,
        top,
        top,
        2**64 - 1,
    )
    assert policy["status"] == OFFERED


@pytest.mark.parametrize("caller", [OWNER, REGISTRAR, ALICE, STRANGER, PAYOUT])
def test_only_insurers_offer(chain, w, caller):
    fn = w.f.offerPolicy(w.title, w.token.address, PREMIUM, 60, 60, 0, latest_timestamp(chain) + 60)
    assert reverts(chain, w[caller], fn) == NOT_INSURER


def test_a_merchant_of_another_category_or_inactive_cannot_offer(chain, w):
    other = w[BOB]
    register = w.merchants.functions.registerMerchant(other.address, 7, other.address, 0)
    chain.transact(w[OWNER], register)
    fn = w.f.offerPolicy(w.title, w.token.address, PREMIUM, 60, 60, 0, latest_timestamp(chain) + 60)
    assert reverts(chain, other, fn) == NOT_INSURER
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[INSURER].address, False))
    assert reverts(chain, w[INSURER], fn) == NOT_INSURER


def test_offer_refusals(chain, w):
    now = latest_timestamp(chain)
    token = w.token.address
    cases = [
        ((12345, token, PREMIUM, 60, 60, 0, now + 60), "insurance: unknown vehicle"),
        ((w.title, ZERO, PREMIUM, 60, 60, 0, now + 60), "insurance: token is not a contract"),
        (
            (w.title, w[ALICE].address, PREMIUM, 60, 60, 0, now + 60),
            "insurance: token is not a contract",
        ),
        ((w.title, token, 0, 60, 60, 0, now + 60), "insurance: zero premium"),
        ((w.title, token, 2**96, 60, 60, 0, now + 60), "insurance: premium too large"),
        ((w.title, token, PREMIUM, 0, 60, 0, now + 60), "insurance: zero term"),
        ((w.title, token, PREMIUM, 2**32, 60, 0, now + 60), "insurance: period too long"),
        ((w.title, token, PREMIUM, 60, 0, 0, now + 60), "insurance: zero grace period"),
        (
            (w.title, token, PREMIUM, 60, 61, 0, now + 60),
            "insurance: grace period longer than the term",
        ),
        ((w.title, token, PREMIUM, 60, 60, 10_001, now + 60), "insurance: refund rule above 100%"),
        ((w.title, token, PREMIUM, 60, 60, 0, now), "insurance: offer expiry passed"),
        ((w.title, token, PREMIUM, 60, 60, 0, 2**64), "insurance: offer expiry too far"),
    ]
    for args, reason in cases:
        assert reverts(chain, w[INSURER], w.f.offerPolicy(*args)) == reason, reason
    assert w.f.policyCount().call() == 0


def test_the_insurer_withdraws_an_offer(chain, w, offered):
    assert reverts(chain, w[ALICE], w.f.withdrawOffer(offered)) == NOT_POLICY_INSURER
    receipt = chain.transact(w[INSURER], w.f.withdrawOffer(offered))
    assert events(chain, receipt, w.insurance, "OfferWithdrawn") == [
        {"policy_id": offered, "title": w.title, "insurer": w[INSURER].address}
    ]
    assert w.policy(offered)["status"] == WITHDRAWN
    assert reverts(chain, w[INSURER], w.f.withdrawOffer(offered)) == NOT_OFFER
    assert reverts(chain, w[ALICE], w.f.accept(offered, PREMIUM)) == NOT_OFFER
    assert reverts(chain, w[INSURER], w.f.withdrawOffer(99)) == NOT_OFFER


def test_an_accepted_offer_cannot_be_withdrawn(chain, w, active):
    assert reverts(chain, w[INSURER], w.f.withdrawOffer(active)) == NOT_OFFER


# -- acceptance ------------------------------------------------------------------------------


def test_the_owner_accepts_and_pays_the_first_premium(chain, w, offered):
    alice = w[ALICE]
    receipt = w.accept(offered, 700 * 10**6)
    start = block_time(chain, receipt)
    assert events(chain, receipt, w.insurance, "PolicyAccepted") == [
        {
            "policy_id": offered,
            "title": w.title,
            "holder": alice.address,
            "premium": PREMIUM,
            "max_premium": 700 * 10**6,
            "start": start,
            "paid_through": start + 3600,
        }
    ]
    policy = w.policy(offered)
    assert (policy["holder"], policy["max_premium"], policy["status"]) == (
        alice.address,
        700 * 10**6,
        ACTIVE,
    )
    assert (policy["start"], policy["paid_through"]) == (start, start + 3600)
    assert w.f.isCovered(offered).call()
    assert w.f.paidThrough(offered).call() == start + 3600
    assert w.balance(alice) == FUNDS - PREMIUM
    assert w.balance(w.insurance.address) == PREMIUM
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == 0


@pytest.mark.parametrize("caller", [BOB, STRANGER, INSURER])
def test_only_the_vehicles_owner_accepts(chain, w, offered, caller):
    fn = w.f.accept(offered, PREMIUM)
    assert reverts(chain, w[caller], fn) == "insurance: caller is not the vehicle's owner"


def test_acceptance_refusals(chain, w):
    policy_id = w.offer(w.title)
    alice = w[ALICE]
    assert reverts(chain, alice, w.f.accept(policy_id, PREMIUM - 1)) == (
        "insurance: maximum below the premium"
    )
    assert reverts(chain, alice, w.f.accept(policy_id, 2**96)) == (
        "insurance: maximum premium too large"
    )
    assert reverts(chain, alice, w.f.accept(99, PREMIUM)) == NOT_OFFER
    chain.transact(alice, w.token.functions.approve(w.insurance.address, PREMIUM - 1))
    assert reverts(chain, alice, w.f.accept(policy_id, PREMIUM)) == SHORT_ALLOWANCE
    chain.transact(alice, w.token.functions.approve(w.insurance.address, PREMIUM))
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[INSURER].address, False))
    assert reverts(chain, alice, w.f.accept(policy_id, PREMIUM)) == NOT_INSURER
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[INSURER].address, True))
    late = w.offer(w.title, expiry=latest_timestamp(chain) + 3)
    advance_past(chain, w.policy(late)["start"], w[STRANGER])
    assert reverts(chain, alice, w.f.accept(late, PREMIUM)) == "insurance: offer expired"
    assert w.policy(policy_id)["status"] == OFFERED
    assert w.balance(alice) == FUNDS


def test_the_holder_sets_the_accepted_maximum_again(chain, w, active):
    receipt = w.accept(active, 900 * 10**6)
    assert events(chain, receipt, w.insurance, "MaxPremiumAccepted") == [
        {"policy_id": active, "holder": w[ALICE].address, "max_premium": 900 * 10**6}
    ]
    assert w.policy(active)["max_premium"] == 900 * 10**6
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM
    assert reverts(chain, w[BOB], w.f.accept(active, 10**9)) == NOT_HOLDER
    assert reverts(chain, w[ALICE], w.f.accept(active, 2**96)) == (
        "insurance: maximum premium too large"
    )


def test_a_relayer_submits_the_owners_signed_acceptance(chain, w, offered):
    deadline, signature = w.sign_acceptance(offered, 650 * 10**6)
    fn = w.f.acceptWithSignature(offered, w[ALICE].address, 650 * 10**6, deadline, signature)
    receipt = chain.transact(w[STRANGER], fn)
    assert [e["holder"] for e in events(chain, receipt, w.insurance, "PolicyAccepted")] == [
        w[ALICE].address
    ]
    assert w.policy(offered)["max_premium"] == 650 * 10**6
    assert w.f.nonces(w[ALICE].address).call() == 1
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM
    # The same signature again is refused: its nonce is used.
    assert reverts(chain, w[STRANGER], fn) == "insurance: invalid signature"
    # A new signature raises the maximum of the active policy.
    deadline, signature = w.sign_acceptance(offered, 800 * 10**6)
    fn = w.f.acceptWithSignature(offered, w[ALICE].address, 800 * 10**6, deadline, signature)
    receipt = chain.transact(w[STRANGER], fn)
    assert len(events(chain, receipt, w.insurance, "MaxPremiumAccepted")) == 1
    assert w.policy(offered)["max_premium"] == 800 * 10**6


def test_a_direct_acceptance_voids_the_signed_ones_not_yet_submitted(chain, w, active):
    alice = w[ALICE].address
    deadline, signature = w.sign_acceptance(active, 1_000 * 10**6)
    w.accept(active, 0)  # Alice stops renewals herself
    fn = w.f.acceptWithSignature(active, alice, 1_000 * 10**6, deadline, signature)
    assert reverts(chain, w[STRANGER], fn) == "insurance: invalid signature"
    assert w.policy(active)["max_premium"] == 0
    # So does using up the nonce.
    deadline, signature = w.sign_acceptance(active, 1_000 * 10**6)
    nonce = w.f.nonces(alice).call()
    receipt = chain.transact(w[ALICE], w.f.useNonce())
    assert events(chain, receipt, w.insurance, "NonceUsed") == [{"owner": alice, "nonce": nonce}]
    assert w.f.nonces(alice).call() == nonce + 1
    fn = w.f.acceptWithSignature(active, alice, 1_000 * 10**6, deadline, signature)
    assert reverts(chain, w[STRANGER], fn) == "insurance: invalid signature"
    assert w.policy(active)["max_premium"] == 0


def test_a_token_that_delivers_less_than_the_premium_is_refused(chain, w):
    fee_token = compile_contract(CONTRACTS / "fee_token.vy")
    token = chain.contract(fee_token, chain.deploy(fee_token, sender=w[OWNER]))
    chain.transact(w[ALICE], token.functions.mint(w[ALICE].address, 10 * PREMIUM))
    chain.transact(w[ALICE], token.functions.approve(w.insurance.address, 10 * PREMIUM))
    policy_id = w.offer(w.title, token=token.address)
    fn = w.f.accept(policy_id, PREMIUM)
    assert reverts(chain, w[ALICE], fn) == "insurance: token delivered less than the premium"
    assert w.policy(policy_id)["status"] == OFFERED


def test_signed_acceptance_refusals(chain, w, offered):
    alice = w[ALICE].address
    submit = w[STRANGER]
    deadline, signature = w.sign_acceptance(offered, PREMIUM, signer=w[BOB], holder=alice)
    fn = w.f.acceptWithSignature(offered, alice, PREMIUM, deadline, signature)
    assert reverts(chain, submit, fn) == "insurance: invalid signature"
    deadline, signature = w.sign_acceptance(offered, PREMIUM)
    fn = w.f.acceptWithSignature(offered, alice, PREMIUM + 1, deadline, signature)
    assert reverts(chain, submit, fn) == "insurance: invalid signature"
    fn = w.f.acceptWithSignature(offered, alice, PREMIUM, deadline, signature[:64])
    assert reverts(chain, submit, fn) == "insurance: invalid signature"
    # BOB signing for himself is a valid signature, but BOB does not own the vehicle.
    deadline, signature = w.sign_acceptance(offered, PREMIUM, signer=w[BOB])
    fn = w.f.acceptWithSignature(offered, w[BOB].address, PREMIUM, deadline, signature)
    assert reverts(chain, submit, fn) == "insurance: caller is not the vehicle's owner"
    deadline, signature = w.sign_acceptance(offered, PREMIUM, deadline=latest_timestamp(chain) + 1)
    advance_past(chain, deadline, submit)
    fn = w.f.acceptWithSignature(offered, alice, PREMIUM, deadline, signature)
    assert reverts(chain, submit, fn) == "insurance: signature expired"
    assert w.f.nonces(alice).call() == 0
    assert w.policy(offered)["status"] == OFFERED


def test_a_contract_owner_accepts_through_erc1271(chain, w):
    wallet = compile_contract(CONTRACTS / "erc1271_wallet.vy")
    address = chain.deploy(wallet, w[BOB].address, sender=w[BOB])
    title = w.vehicles.mint(VINS[1], BOB)
    # A plain transfer: the test wallet is no ERC-721 receiver, so a safe mint to it fails.
    chain.transact(w[BOB], w.vehicles.f.transferFrom(w[BOB].address, address, title))
    policy_id = w.offer(title)
    deadline, signature = w.sign_acceptance(policy_id, PREMIUM, signer=w[BOB], holder=address)
    fn = w.f.acceptWithSignature(policy_id, address, PREMIUM, deadline, signature)
    # The wallet's signature passes; the test wallet cannot approve tokens, so the pull fails.
    assert reverts(chain, w[STRANGER], fn) == SHORT_ALLOWANCE
    deadline, signature = w.sign_acceptance(policy_id, PREMIUM, signer=w[ALICE], holder=address)
    fn = w.f.acceptWithSignature(policy_id, address, PREMIUM, deadline, signature)
    assert reverts(chain, w[STRANGER], fn) == "insurance: invalid signature"


# -- premiums and renewal --------------------------------------------------------------------


def test_the_insurer_changes_the_premium_of_renewals(chain, w, active):
    receipt = chain.transact(w[INSURER], w.f.setPremium(active, 650 * 10**6))
    assert events(chain, receipt, w.insurance, "PremiumChanged") == [
        {"policy_id": active, "previous": PREMIUM, "premium": 650 * 10**6}
    ]
    assert w.policy(active)["premium"] == 650 * 10**6
    for caller in (ALICE, STRANGER):
        assert reverts(chain, w[caller], w.f.setPremium(active, 1)) == NOT_POLICY_INSURER
    assert reverts(chain, w[INSURER], w.f.setPremium(active, 0)) == "insurance: zero premium"
    fn = w.f.setPremium(active, 2**96)
    assert reverts(chain, w[INSURER], fn) == "insurance: premium too large"


def test_the_premium_of_an_offer_cannot_change(chain, w, offered):
    assert reverts(chain, w[INSURER], w.f.setPremium(offered, 1)) == NOT_ACTIVE
    assert reverts(chain, w[INSURER], w.f.setPremium(99, 1)) == "insurance: unknown policy"


def test_a_keeper_renews_when_the_term_ends(chain, w, due):
    before = w.policy(due)
    receipt = chain.transact(w[STRANGER], w.f.renew(due))
    assert events(chain, receipt, w.insurance, "PremiumEarned") == [
        {
            "policy_id": due,
            "insurer": w[INSURER].address,
            "token": w.token.address,
            "amount": PREMIUM,
        }
    ]
    assert events(chain, receipt, w.insurance, "PolicyRenewed") == [
        {
            "policy_id": due,
            "title": w.title,
            "holder": w[ALICE].address,
            "keeper": w[STRANGER].address,
            "premium": PREMIUM,
            "start": before["paid_through"],
            "paid_through": before["paid_through"] + TERM,
        }
    ]
    after = w.policy(due)
    assert after["start"] == before["paid_through"]
    assert after["paid_through"] == before["paid_through"] + TERM
    assert after["status"] == ACTIVE
    assert w.balance(w[ALICE]) == FUNDS - 2 * PREMIUM
    assert w.balance(w.insurance.address) == 2 * PREMIUM
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == PREMIUM


def test_no_renewal_before_the_term_ends(chain, w, active):
    assert reverts(chain, w[STRANGER], w.f.renew(active)) == "insurance: term not over"
    assert reverts(chain, w[STRANGER], w.f.renew(99)) == "insurance: unknown policy"


def test_a_higher_premium_needs_a_new_acceptance(chain, w, due):
    chain.transact(w[INSURER], w.f.setPremium(due, 700 * 10**6 + 1))
    assert reverts(chain, w[STRANGER], w.f.renew(due)) == ABOVE_MAX
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM
    w.accept(due, 750 * 10**6)
    receipt = chain.transact(w[STRANGER], w.f.renew(due))
    renewed = events(chain, receipt, w.insurance, "PolicyRenewed")
    assert [e["premium"] for e in renewed] == [700 * 10**6 + 1]
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM - 700 * 10**6 - 1


def test_a_lower_maximum_stops_renewals(chain, w, due):
    w.accept(due, PREMIUM - 1)
    assert reverts(chain, w[STRANGER], w.f.renew(due)) == ABOVE_MAX


def test_renewal_refusals(chain, w, due):
    alice = w[ALICE]
    chain.transact(alice, w.token.functions.approve(w.insurance.address, PREMIUM - 1))
    assert reverts(chain, w[STRANGER], w.f.renew(due)) == SHORT_ALLOWANCE
    chain.transact(alice, w.token.functions.approve(w.insurance.address, 2**256 - 1))
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[INSURER].address, False))
    assert reverts(chain, w[STRANGER], w.f.renew(due)) == NOT_INSURER
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[INSURER].address, True))
    sell = w.vehicles.f.transferFrom(alice.address, w[BOB].address, w.title)
    chain.transact(alice, sell)
    assert reverts(chain, w[STRANGER], w.f.renew(due)) == (
        "insurance: holder no longer owns the vehicle"
    )
    # The buyer cannot take the policy over either.
    assert reverts(chain, w[BOB], w.f.accept(due, 10**9)) == NOT_HOLDER
    assert w.balance(alice) == FUNDS - PREMIUM
    assert w.balance(w[BOB]) == FUNDS


def test_an_unrenewed_policy_lapses_after_the_grace_period(chain, w):
    policy_id = w.offer(w.title, term=SHORT, grace=2)
    w.accept(policy_id)
    paid_through = w.f.paidThrough(policy_id).call()
    assert reverts(chain, w[STRANGER], w.f.lapse(policy_id)) == "insurance: grace period not over"
    advance_past(chain, paid_through + 1, w[STRANGER])
    # Read as lapsed at once, before anybody calls `lapse`.
    assert w.policy(policy_id)["status"] == LAPSED
    assert not w.f.isCovered(policy_id).call()
    assert reverts(chain, w[STRANGER], w.f.renew(policy_id)) == "insurance: grace period over"
    assert reverts(chain, w[ALICE], w.f.cancel(policy_id)) == "insurance: policy lapsed"
    receipt = chain.transact(w[STRANGER], w.f.lapse(policy_id))
    assert events(chain, receipt, w.insurance, "PolicyLapsed") == [
        {
            "policy_id": policy_id,
            "title": w.title,
            "holder": w[ALICE].address,
            "paid_through": paid_through,
        }
    ]
    assert [e["amount"] for e in events(chain, receipt, w.insurance, "PremiumEarned")] == [PREMIUM]
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == PREMIUM
    assert w.policy(policy_id)["status"] == LAPSED
    assert w.f.paidThrough(policy_id).call() == paid_through
    assert reverts(chain, w[STRANGER], w.f.lapse(policy_id)) == NOT_ACTIVE
    assert reverts(chain, w[STRANGER], w.f.collect(policy_id)) == NOT_ACTIVE


def test_in_the_grace_period_the_policy_still_covers(chain, w, due):
    assert w.f.isCovered(due).call()
    assert w.policy(due)["status"] == ACTIVE
    assert w.f.cancellationRefund(due).call() == 0


# -- cancellation ----------------------------------------------------------------------------


@pytest.mark.parametrize("refund_bps", [10_000, 7_500, 0])
def test_the_holder_cancels_with_the_insurers_refund_rule(chain, w, refund_bps):
    policy_id = w.offer(w.title, term=3600, refund_bps=refund_bps)
    start = block_time(chain, w.accept(policy_id))
    receipt = chain.transact(w[ALICE], w.f.cancel(policy_id))
    refund = refund_at(PREMIUM, start, 3600, block_time(chain, receipt), refund_bps)
    assert events(chain, receipt, w.insurance, "PolicyCancelled") == [
        {"policy_id": policy_id, "title": w.title, "holder": w[ALICE].address, "refund": refund}
    ]
    earned = events(chain, receipt, w.insurance, "PremiumEarned")
    assert [e["amount"] for e in earned] == ([PREMIUM - refund] if refund < PREMIUM else [])
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM + refund
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == PREMIUM - refund
    assert w.balance(w.insurance.address) == PREMIUM - refund
    assert w.policy(policy_id)["status"] == CANCELLED
    assert not w.f.isCovered(policy_id).call()
    if refund_bps:
        assert refund > 0
    assert reverts(chain, w[ALICE], w.f.cancel(policy_id)) == NOT_ACTIVE


def test_cancelling_in_the_grace_period_refunds_nothing(chain, w, due):
    receipt = chain.transact(w[ALICE], w.f.cancel(due))
    assert [e["refund"] for e in events(chain, receipt, w.insurance, "PolicyCancelled")] == [0]
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == PREMIUM


@pytest.mark.parametrize("caller", [BOB, STRANGER, INSURER])
def test_only_the_holder_cancels(chain, w, active, caller):
    assert reverts(chain, w[caller], w.f.cancel(active)) == NOT_HOLDER


def test_an_offer_cannot_be_cancelled(chain, w, offered):
    assert reverts(chain, w[ALICE], w.f.cancel(offered)) == NOT_ACTIVE
    assert w.f.cancellationRefund(offered).call() == 0


def test_the_refund_view_follows_the_rule(chain, w):
    policy_id = w.offer(w.title, term=3600, refund_bps=5_000)
    w.accept(policy_id)
    # A call runs at the time of the next block: at most a minute from the last one here.
    start, now = w.policy(policy_id)["start"], latest_timestamp(chain)
    refund = w.f.cancellationRefund(policy_id).call()
    assert refund_at(PREMIUM, start, 3600, now + 60, 5_000) <= refund
    assert refund <= refund_at(PREMIUM, start, 3600, now, 5_000) <= PREMIUM // 2


# -- earned premium --------------------------------------------------------------------------


def test_anyone_collects_the_earned_premium_for_the_insurer(chain, w, active):
    start = w.policy(active)["start"]
    advance_past(chain, start + 1, w[STRANGER])
    receipt = chain.transact(w[STRANGER], w.f.collect(active))
    first = (block_time(chain, receipt) - start) * PREMIUM // 3600
    assert first > 0
    earned = events(chain, receipt, w.insurance, "PremiumEarned")
    assert [e["amount"] for e in earned] == [first]
    receipt = chain.transact(w[STRANGER], w.f.collect(active))
    second = (block_time(chain, receipt) - start) * PREMIUM // 3600 - first
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == first + second
    # Cancelling now refunds only what is unearned and credits the rest.
    receipt = chain.transact(w[ALICE], w.f.cancel(active))
    refund = refund_at(PREMIUM, start, 3600, block_time(chain, receipt), 10_000)
    assert w.f.earnings(w[INSURER].address, w.token.address).call() == PREMIUM - refund
    assert w.balance(w.insurance.address) == PREMIUM - refund
    assert w.f.collectable(active).call() == 0


def test_collect_refusals(chain, w, offered):
    assert reverts(chain, w[STRANGER], w.f.collect(offered)) == NOT_ACTIVE
    assert reverts(chain, w[STRANGER], w.f.collect(99)) == "insurance: unknown policy"
    assert w.f.collectable(offered).call() == 0


def test_the_insurer_withdraws_its_earnings_less_the_platform_fee(chain, w, due):
    chain.transact(w[STRANGER], w.f.renew(due))
    insurer, token = w[INSURER], w.token.address
    assert chain.call(w.f.withdrawEarnings(token), sender=insurer) == PREMIUM
    receipt = chain.transact(insurer, w.f.withdrawEarnings(token))
    fee = PREMIUM * FEE_BPS // 10_000
    assert events(chain, receipt, w.insurance, "EarningsWithdrawn") == [
        {
            "insurer": insurer.address,
            "token": token,
            "payout": w[PAYOUT].address,
            "amount": PREMIUM,
            "fee": fee,
        }
    ]
    assert w.balance(w[PAYOUT]) == PREMIUM - fee
    assert w.balance(w[TREASURY]) == fee
    assert w.balance(w.insurance.address) == PREMIUM
    assert w.f.earnings(insurer.address, token).call() == 0
    fn = w.f.withdrawEarnings(token)
    assert reverts(chain, insurer, fn) == "insurance: no earnings"
    assert reverts(chain, w[STRANGER], fn) == "insurance: no earnings"


def test_earnings_follow_the_fee_tier_and_survive_deactivation(chain, w, due):
    chain.transact(w[STRANGER], w.f.renew(due))
    chain.transact(w[OWNER], w.merchants.functions.setFeeTier(w[INSURER].address, 0))
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[INSURER].address, False))
    chain.transact(w[INSURER], w.f.withdrawEarnings(w.token.address))
    assert w.balance(w[PAYOUT]) == PREMIUM
    assert w.balance(w[TREASURY]) == 0


# -- claims ----------------------------------------------------------------------------------


def test_the_insurer_pays_a_claim_to_the_holder(chain, w, active):
    reference = b"\x11" * 32
    receipt = chain.transact(w[INSURER], w.f.payClaim(active, 2_500 * 10**6, reference))
    assert events(chain, receipt, w.insurance, "ClaimPaid") == [
        {
            "policy_id": active,
            "title": w.title,
            "holder": w[ALICE].address,
            "insurer": w[INSURER].address,
            "token": w.token.address,
            "amount": 2_500 * 10**6,
            "reference": reference,
        }
    ]
    assert w.balance(w[ALICE]) == FUNDS - PREMIUM + 2_500 * 10**6
    assert w.balance(w[INSURER]) == FUNDS - 2_500 * 10**6
    assert w.f.claimsPaid(active).call() == 2_500 * 10**6
    assert w.f.claimCount(w.title).call() == 1
    assert w.f.claimReferenceUsed(active, reference).call()
    # The same claim again is refused: a retry pays once.
    fn = w.f.payClaim(active, 2_500 * 10**6, reference)
    assert reverts(chain, w[INSURER], fn) == "insurance: claim already paid"
    # A claim may come after the policy ended.
    chain.transact(w[ALICE], w.f.cancel(active))
    chain.transact(w[INSURER], w.f.payClaim(active, 100, b"\x12" * 32))
    assert w.f.claimsPaid(active).call() == 2_500 * 10**6 + 100
    assert w.f.claimCount(w.title).call() == 2


def test_claim_refusals(chain, w, active):
    reference = b"\x22" * 32
    for caller in (ALICE, STRANGER, PAYOUT):
        fn = w.f.payClaim(active, 1, reference)
        assert reverts(chain, w[caller], fn) == NOT_POLICY_INSURER
    fn = w.f.payClaim(active, 0, reference)
    assert reverts(chain, w[INSURER], fn) == "insurance: zero amount"
    second = w.offer(w.title)
    fn = w.f.payClaim(second, 1, reference)
    assert reverts(chain, w[INSURER], fn) == "insurance: policy never started"
    chain.transact(w[INSURER], w.token.functions.approve(w.insurance.address, 0))
    fn = w.f.payClaim(active, 1, reference)
    assert reverts(chain, w[INSURER], fn) == SHORT_ALLOWANCE
    assert w.f.claimCount(w.title).call() == 0
