"""Tests of carpay/services/platform.py: deploying the platform once, and its demo data."""

from __future__ import annotations

import pytest
from eth_account import Account

from carpay.chain import Chain
from carpay.services.platform import (
    CATEGORIES,
    DEMO_BALANCE,
    DEMO_VINS,
    deploy_platform,
    seed_demo,
)
from carpay.settings import DEV_MNEMONIC


@pytest.fixture(scope="module")
def keys():
    Account.enable_unaudited_hdwallet_features()
    path = "m/44'/60'/0'/0/{}"
    return [Account.from_mnemonic(DEV_MNEMONIC, account_path=path.format(i)) for i in range(20)]


def test_deploys_once_and_wires_the_contracts(node_url, tmp_path, keys):
    chain = Chain(node_url, state_dir=tmp_path)
    owner, treasury = keys[0], keys[1]

    platform = deploy_platform(chain, owner, treasury=treasury.address)
    again = deploy_platform(Chain(node_url, state_dir=tmp_path), owner, treasury=treasury.address)

    assert again == platform
    assert set(platform.tokens) == {"EUR", "USD"}
    registry = chain.contract("merchant_registry", platform.registry)
    assert registry.functions.treasury().call() == treasury.address
    for code, address in platform.tokens.items():
        token = chain.contract("currency_token", address)
        assert token.functions.currency().call() == code
        assert token.functions.decimals().call() == 6
        assert token.functions.isSettler(platform.checkout).call() is True
        assert token.functions.isMinter(owner.address).call() is True
    names = {w.name for w in platform.watched()}
    assert names == {
        "merchant_registry",
        "checkout",
        "currency_token:EUR",
        "currency_token:USD",
        "vehicle_registry",
        "traffic_fines",
        "vehicle_escrow",
        "insurance",
        "vehicle_wallet_factory",
    }
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    assert vehicles.functions.isRegistrar(platform.escrow).call() is True
    fines = chain.contract("traffic_fines", platform.fines)
    assert fines.functions.unpaidFines(1).call() == []
    insurance = chain.contract("insurance", platform.insurance)
    assert insurance.functions.merchants().call() == platform.registry
    assert insurance.functions.vehicles().call() == platform.vehicles
    wallets = chain.contract("vehicle_wallet_factory", platform.wallets).functions
    assert (wallets.vehicles().call(), wallets.merchants().call()) == (
        platform.vehicles,
        platform.registry,
    )
    assert wallets.checkout().call() == platform.checkout
    assert chain.w3.eth.get_code(wallets.blueprint().call())[:3] == b"\xfe\x71\x00"  # ERC-5202


def test_demo_data_funds_every_holder_and_registers_every_category(node_url, tmp_path, keys):
    chain = Chain(node_url, state_dir=tmp_path)
    owner = keys[0]
    platform = deploy_platform(chain, owner, treasury=keys[1].address)
    holders = [k.address for k in keys[:10]]
    merchants = keys[10:19]

    seed_demo(chain, platform, owner, holders=holders, merchants=merchants)
    seed_demo(chain, platform, owner, holders=holders, merchants=merchants)  # once only

    for address in platform.tokens.values():
        token = chain.contract("currency_token", address)
        assert [token.functions.balanceOf(h).call() for h in holders] == [DEMO_BALANCE] * 10
    registry = chain.contract("merchant_registry", platform.registry)
    for category, merchant in enumerate(merchants):
        payout, fee_bps, found, active = registry.functions.merchantTerms(merchant.address).call()
        assert (payout, found, active) == (merchant.address, category, True)
        assert 0 < fee_bps <= 1_000
    assert len(merchants) == len(CATEGORIES)
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    titles = [vehicles.functions.titleOf(vin).call() for vin in DEMO_VINS]
    assert [vehicles.functions.ownerOf(t).call() for t in titles] == holders[: len(DEMO_VINS)]
    insurance = chain.contract("insurance", platform.insurance)
    assert insurance.functions.policyCount().call() == 1
    offer = insurance.functions.policy(1).call()
    assert (offer[0], offer[1], offer[3], offer[-1]) == (
        merchants[CATEGORIES.index("insurer")].address,
        titles[0],
        480 * 10**6,
        1,  # offered, for the owner to accept
    )
    assert vehicles.functions.odometerOf(titles[0]).call() == 42_000
    fines = chain.contract("traffic_fines", platform.fines)
    assert (
        fines.functions.unpaidFines(titles[0]).call() == [1]
        or len(fines.functions.unpaidFines(titles[0]).call()) == 1
    )
