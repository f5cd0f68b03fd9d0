"""Tests of carpay/contracts/vehicle_wallet_factory.vy on both nodes: a vehicle's owner creates
its one wallet from the blueprint, bound to the platform's contracts; nobody else can."""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from carpay.errors import TransactionReverted
from tests.contracts.checkout_fixtures import ZERO, events, reverts
from tests.contracts.vehicle_fixtures import VINS
from tests.contracts.vehicle_wallet_fixtures import (
    ALICE,
    BOB,
    DEVICE,
    OWNER,
    REGISTRAR,
    deploy_factory,
    deploy_wallet_world,
)

NOT_OWNER = "vehicle_wallet_factory: caller is not the vehicle's owner"


@pytest.fixture
def w(chain, accounts):
    """The wallet world (ALICE holds `title`) and a factory bound to its contracts."""
    world = deploy_wallet_world(chain, accounts)
    world.factory, world.blueprint = deploy_factory(chain, world)
    return world


def test_deploy_binds_the_blueprint_and_the_platform(w):
    f = w.factory.functions
    assert f.blueprint().call() == w.blueprint
    assert (f.vehicles().call(), f.merchants().call(), f.checkout().call()) == (
        w.vehicles.address,
        w.merchants.address,
        w.checkout.address,
    )
    assert f.walletOf(w.title).call() == ZERO


def test_deploy_refuses_zero_addresses(chain, accounts, w):
    args = [w.blueprint, w.vehicles.address, w.merchants.address, w.checkout.address]
    for i in range(4):
        bad = [*args[:i], ZERO, *args[i + 1 :]]
        with pytest.raises(TransactionReverted, match="zero address"):
            chain.deploy("vehicle_wallet_factory", *bad, sender=accounts[OWNER])


def test_the_owner_creates_the_vehicles_one_wallet(chain, w):
    alice, device = w[ALICE], w[DEVICE]
    receipt = chain.transact(alice, w.factory.functions.createWallet(w.title, device.address))

    wallet = w.factory.functions.walletOf(w.title).call()
    assert events(chain, receipt, w.factory, "WalletCreated") == [
        {"wallet": wallet, "title": w.title, "creator": alice.address, "device_key": device.address}
    ]
    created = chain.contract("vehicle_wallet", wallet)
    assert created.functions.owner().call() == alice.address  # the title's holder controls it
    assert created.functions.deviceKey().call() == device.address
    assert created.functions.frozen().call() is False
    assert chain.w3.eth.get_code(wallet)  # a contract, not the blueprint's preamble
    # Control follows the title.
    transfer = w.vehicles.functions.transferFrom(alice.address, w[BOB].address, w.title)
    chain.transact(alice, transfer)
    assert created.functions.owner().call() == w[BOB].address
    assert reverts(chain, w[BOB], w.factory.functions.createWallet(w.title, ZERO)) == (
        "vehicle_wallet_factory: the vehicle has a wallet"
    )


def test_only_the_vehicles_owner_creates_its_wallet(chain, w):
    create = w.factory.functions.createWallet(w.title, w[DEVICE].address)
    for stranger in (BOB, OWNER, DEVICE):
        assert reverts(chain, w[stranger], create) == NOT_OWNER
    unknown = w.factory.functions.createWallet(int.from_bytes(b"\x01" * 32, "big"), ZERO)
    with pytest.raises(TransactionReverted):
        chain.transact(w[ALICE], unknown)
    assert w.factory.functions.walletOf(w.title).call() == ZERO


def test_a_wallet_per_vehicle(chain, w):
    second = w.vehicles.functions.mintTitle(w[ALICE].address, VINS[1])
    chain.transact(w[REGISTRAR], second)
    other = w.vehicles.functions.titleOf(VINS[1]).call()
    for title in (w.title, other):
        chain.transact(w[ALICE], w.factory.functions.createWallet(title, ZERO))
    wallets = {w.factory.functions.walletOf(t).call() for t in (w.title, other)}
    assert len(wallets) == 2 and ZERO not in wallets
    assert {to_checksum_address(a) for a in wallets} == wallets
