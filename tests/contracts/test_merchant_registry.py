"""merchant_registry.vy: registration, every change and its event, refusals, on both nodes."""

from __future__ import annotations

import pytest

from carpay.services.platform import CATEGORIES
from tests.contracts.checkout_fixtures import ZERO, events, reverts


@pytest.fixture
def registry(chain, accounts):
    """A fresh registry owned by accounts[0], treasury accounts[1]."""
    address = chain.deploy("merchant_registry", accounts[1].address, sender=accounts[0])
    return chain.contract("merchant_registry", address)


@pytest.fixture
def merchant(chain, accounts, registry):
    """accounts[2], registered as a fuel merchant paid out to accounts[3] at 250 bps."""
    chain.transact(
        accounts[0],
        registry.functions.registerMerchant(accounts[2].address, 2, accounts[3].address, 250),
    )
    return accounts[2]


def test_deploy_sets_owner_and_treasury(chain, accounts, registry):
    assert registry.functions.owner().call() == accounts[0].address
    assert registry.functions.treasury().call() == accounts[1].address
    assert registry.functions.MAX_FEE_BPS().call() == 1_000
    assert registry.functions.MAX_CATEGORY().call() == len(CATEGORIES) - 1
    tx = chain.deployment("merchant_registry").tx_hash
    receipt = chain.receipt(tx)
    assert events(chain, receipt, registry, "TreasuryChanged") == [
        {"previous": ZERO, "treasury": accounts[1].address}
    ]


def test_deploy_refuses_zero_treasury(chain, accounts):
    from carpay.chain import contract
    from carpay.errors import TransactionReverted

    with pytest.raises(TransactionReverted) as info:
        chain.deploy(contract("merchant_registry"), ZERO, sender=accounts[0])
    assert info.value.reason == "merchant_registry: zero treasury"


def test_register_packs_terms_and_emits(chain, accounts, registry):
    m, payout = accounts[2].address, accounts[3].address
    assert registry.functions.merchantTerms(m).call() == [ZERO, 0, 0, False]
    assert not registry.functions.isRegistered(m).call()
    receipt = chain.transact(accounts[0], registry.functions.registerMerchant(m, 8, payout, 1_000))
    assert registry.functions.merchantTerms(m).call() == [payout, 1_000, 8, True]
    assert registry.functions.isRegistered(m).call()
    assert events(chain, receipt, registry, "MerchantRegistered") == [
        {"merchant": m, "payout": payout, "category": 8, "fee_bps": 1_000}
    ]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((ZERO, 0, "payout", 0), "merchant_registry: zero merchant"),
        (("m", 0, ZERO, 0), "merchant_registry: zero payout"),
        (("m", 0, "payout", 1_001), "merchant_registry: fee above cap"),
        (("m", 9, "payout", 0), "merchant_registry: unknown category"),
    ],
)
def test_register_refuses_bad_terms(chain, accounts, registry, args, reason):
    names = {"m": accounts[2].address, "payout": accounts[3].address}
    args = [names.get(a, a) if isinstance(a, str) else a for a in args]
    assert reverts(chain, accounts[0], registry.functions.registerMerchant(*args)) == reason


def test_register_refuses_a_registered_merchant(chain, accounts, registry, merchant):
    fn = registry.functions.registerMerchant(merchant.address, 0, accounts[4].address, 0)
    assert reverts(chain, accounts[0], fn) == "merchant_registry: already registered"


def test_setters_change_one_field_each_and_emit(chain, accounts, registry, merchant):
    m, f = merchant.address, registry.functions
    r = chain.transact(accounts[0], f.setPayout(m, accounts[4].address))
    assert f.merchantTerms(m).call() == [accounts[4].address, 250, 2, True]
    assert events(chain, r, registry, "PayoutChanged") == [
        {"merchant": m, "previous": accounts[3].address, "payout": accounts[4].address}
    ]
    r = chain.transact(accounts[0], f.setFeeTier(m, 0))
    assert f.merchantTerms(m).call() == [accounts[4].address, 0, 2, True]
    assert events(chain, r, registry, "FeeTierChanged") == [
        {"merchant": m, "previous": 250, "fee_bps": 0}
    ]
    r = chain.transact(accounts[0], f.setCategory(m, 3))
    assert f.merchantTerms(m).call() == [accounts[4].address, 0, 3, True]
    assert events(chain, r, registry, "CategoryChanged") == [
        {"merchant": m, "previous": 2, "category": 3}
    ]
    r = chain.transact(accounts[0], f.setActive(m, False))
    assert f.merchantTerms(m).call() == [accounts[4].address, 0, 3, False]
    assert f.isRegistered(m).call()
    assert events(chain, r, registry, "ActiveChanged") == [{"merchant": m, "active": False}]
    r = chain.transact(accounts[0], f.setActive(m, True))
    assert f.merchantTerms(m).call() == [accounts[4].address, 0, 3, True]
    assert events(chain, r, registry, "ActiveChanged") == [{"merchant": m, "active": True}]


def test_setters_refuse_bad_values(chain, accounts, registry, merchant):
    m, f = merchant.address, registry.functions
    assert reverts(chain, accounts[0], f.setPayout(m, ZERO)) == "merchant_registry: zero payout"
    assert reverts(chain, accounts[0], f.setFeeTier(m, 1_001)) == (
        "merchant_registry: fee above cap"
    )
    assert reverts(chain, accounts[0], f.setCategory(m, 9)) == (
        "merchant_registry: unknown category"
    )
    assert reverts(chain, accounts[0], f.setTreasury(ZERO)) == "merchant_registry: zero treasury"


def test_setters_refuse_an_unknown_merchant(chain, accounts, registry):
    f, stranger = registry.functions, accounts[5].address
    for fn in (
        f.setPayout(stranger, accounts[4].address),
        f.setFeeTier(stranger, 1),
        f.setCategory(stranger, 1),
        f.setActive(stranger, False),
    ):
        assert reverts(chain, accounts[0], fn) == "merchant_registry: unknown merchant"


def test_set_treasury_emits(chain, accounts, registry):
    r = chain.transact(accounts[0], registry.functions.setTreasury(accounts[5].address))
    assert registry.functions.treasury().call() == accounts[5].address
    assert events(chain, r, registry, "TreasuryChanged") == [
        {"previous": accounts[1].address, "treasury": accounts[5].address}
    ]


def test_every_change_is_refused_to_a_non_owner(chain, accounts, registry, merchant):
    f, m, intruder = registry.functions, merchant.address, merchant  # even the merchant itself
    for fn in (
        f.registerMerchant(accounts[6].address, 0, accounts[6].address, 0),
        f.setPayout(m, intruder.address),
        f.setFeeTier(m, 0),
        f.setCategory(m, 0),
        f.setActive(m, False),
        f.setTreasury(intruder.address),
        f.transfer_ownership(intruder.address),
        f.renounce_ownership(),
    ):
        assert reverts(chain, intruder, fn) == "ownable: caller is not the owner"
    assert reverts(chain, intruder, f.accept_ownership()) == (
        "ownable_2step: caller is not the new owner"
    )


def test_ownership_moves_in_two_steps(chain, accounts, registry):
    f, new = registry.functions, accounts[6]
    chain.transact(accounts[0], f.transfer_ownership(new.address))
    assert f.owner().call() == accounts[0].address
    assert f.pending_owner().call() == new.address
    chain.transact(new, f.accept_ownership())
    assert f.owner().call() == new.address
    chain.transact(new, f.setTreasury(accounts[7].address))
    fn = f.setTreasury(accounts[8].address)
    assert reverts(chain, accounts[0], fn) == "ownable: caller is not the owner"
