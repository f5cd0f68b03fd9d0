"""A car's life on the platform, end to end, on both nodes: an OEM titles it, a dealer sells it
by escrow, the owner insures it, the car pays a toll and a charging session by itself (and is
refused what its owner did not allow), it gets a fine, and the owner sells it on by escrow to a
second owner who sees the fine before paying, then pays it. The indexer follows along, and the
vehicle's record in the API shows the whole history."""

from __future__ import annotations

import pytest
from eth_account import Account

from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.errors import TransactionReverted
from carpay.ledger import Indexer
from carpay.services.platform import CATEGORIES, deploy_platform
from carpay.services.vin import validate_vin
from carpay.testing.scenarios import sign_invoice
from tests.api.conftest import bearer, make_key

VIN = "5YJSA1E18HF000337"
EUR = 10**6
PRICE, RESALE = 30_000 * EUR, 24_000 * EUR
PREMIUM, YEAR = 600 * EUR, 365 * 86_400
TOLL, CHARGE_HOLD, CHARGE = 5 * EUR, 50 * EUR, 32_400_000
FINE, LATE_FEE = 80 * EUR, 20 * EUR
MERCHANT_FEE_BPS = 150
ZERO = "0x" + "00" * 20


@pytest.fixture
def chain(node_url, tmp_path):
    """A client of each peer node in turn: the app reads the chain through it."""
    return Chain(node_url, state_dir=tmp_path / "state")


class Cast:
    """Who plays what: the dev accounts both nodes fund, and a fresh key for the car."""

    def __init__(self) -> None:
        keys = dev_accounts(count=10)
        (
            self.platform,
            self.oem,
            self.dealer,
            self.alice,
            self.bob,
            self.insurer,
            self.charger,
            self.toll,
            self.authority,
            self.treasury,
        ) = keys
        self.car = Account.create()


def test_a_car_from_factory_to_its_second_owner(chain, client, database):
    cast = Cast()
    owner = cast.platform
    platform = deploy_platform(chain, owner, treasury=cast.treasury.address)
    registry = chain.contract("merchant_registry", platform.registry)
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    escrow = chain.contract("vehicle_escrow", platform.escrow)
    insurance = chain.contract("insurance", platform.insurance)
    fines = chain.contract("traffic_fines", platform.fines)
    checkout = chain.contract("checkout", platform.checkout)
    eur = chain.contract("currency_token", platform.tokens["EUR"])

    def balance(who) -> int:
        return eur.functions.balanceOf(getattr(who, "address", who)).call()

    def now() -> int:
        return chain.w3.eth.get_block("latest")["timestamp"]

    # The platform: merchants, the OEM as a registrar, money for the buyers.
    for merchant, category in (
        (cast.insurer, "insurer"),
        (cast.charger, "ev_charging"),
        (cast.toll, "toll"),
        (cast.authority, "authority"),
    ):
        register = registry.functions.registerMerchant(
            merchant.address, CATEGORIES.index(category), merchant.address, MERCHANT_FEE_BPS
        )
        chain.transact(owner, register)
    chain.transact(owner, vehicles.functions.setRegistrar(cast.oem.address, True))
    for buyer in (cast.alice, cast.bob):
        chain.transact(owner, eur.functions.mint(buyer.address, 50_000 * EUR))
    chain.transact(owner, cast.car.address, value=10**18, gas=21_000)

    # 1. The OEM titles the car to its dealer.
    chain.transact(cast.oem, vehicles.functions.mintTitle(cast.dealer.address, validate_vin(VIN)))
    title = vehicles.functions.titleOf(VIN).call()
    assert vehicles.functions.ownerOf(title).call() == cast.dealer.address

    # 2. The dealer sells it to Alice by escrow: 1% to the platform.
    def sell(seller, buyer, price) -> None:
        deadline = now() + 3600
        create = escrow.functions.createEscrow(
            title, buyer.address, eur.address, price, deadline, owner.address
        )
        chain.transact(seller, create)
        escrow_id = escrow.functions.escrowCount().call()
        chain.transact(buyer, eur.functions.approve(escrow.address, price))
        chain.transact(buyer, escrow.functions.fund(escrow_id))
        chain.transact(seller, vehicles.functions.approve(escrow.address, title))
        chain.transact(seller, escrow.functions.depositTitle(escrow_id))
        chain.transact(buyer, escrow.functions.settle(escrow_id))

    sell(cast.dealer, cast.alice, PRICE)
    assert vehicles.functions.ownerOf(title).call() == cast.alice.address
    assert balance(cast.dealer) == PRICE * 99 // 100
    assert balance(cast.treasury) == PRICE // 100

    # 3. Alice insures it for a year; she accepts at most 660.00 on renewal.
    offer = insurance.functions.offerPolicy(
        title, eur.address, PREMIUM, YEAR, 30 * 86_400, 10_000, now() + 86_400
    )
    chain.transact(cast.insurer, offer)
    policy_id = insurance.functions.policyCount().call()
    chain.transact(cast.alice, eur.functions.approve(insurance.address, 2**256 - 1))
    chain.transact(cast.alice, insurance.functions.accept(policy_id, 660 * EUR))
    assert insurance.functions.isCovered(policy_id).call()
    assert balance(cast.alice) == 50_000 * EUR - PRICE - PREMIUM

    # 4. Alice gives the car a wallet: tolls and charging only, within limits.
    wallet_address = chain.deploy(
        "vehicle_wallet",
        vehicles.address,
        title,
        registry.address,
        checkout.address,
        cast.car.address,
        sender=cast.alice,
    )
    wallet = chain.contract("vehicle_wallet", wallet_address)
    for category, daily, per_payment in (
        ("toll", 20 * EUR, 10 * EUR),
        ("ev_charging", 80 * EUR, 60 * EUR),
    ):
        number = CATEGORIES.index(category)
        chain.transact(cast.alice, wallet.functions.allowCategory(number, True))
        limits = wallet.functions.setLimits(eur.address, number, daily, per_payment)
        chain.transact(cast.alice, limits)
    chain.transact(cast.alice, eur.functions.transfer(wallet_address, 200 * EUR))

    # 5. The car pays a toll by itself, and a charging session by a hold captured at the end.
    expiry = now() + 3600
    invoice = (cast.toll.address, TOLL, eur.address, b"\x70" * 32, expiry, ZERO)
    signature = sign_invoice(chain, checkout.address, cast.toll, invoice)
    chain.transact(cast.car, wallet.functions.pay(invoice, signature))
    hold = (wallet_address, cast.charger.address, eur.address, CHARGE_HOLD, expiry, b"\x01" * 32)
    chain.transact(cast.car, wallet.functions.placeHold(hold))
    chain.transact(cast.charger, checkout.functions.capture(hold, CHARGE, True))
    fee = MERCHANT_FEE_BPS
    assert balance(cast.toll) == TOLL - TOLL * fee // 10_000
    assert balance(cast.charger) == CHARGE - CHARGE * fee // 10_000
    assert balance(wallet_address) == 200 * EUR - TOLL - CHARGE

    # Not what the owner allowed: a toll above the per-payment limit, a merchant of another
    # category, and anything the car's key pays for itself once Alice freezes the wallet.
    def car_pays(merchant, amount: int, invoice_id: bytes) -> str:
        invoice = (merchant.address, amount, eur.address, invoice_id, expiry, ZERO)
        signed = sign_invoice(chain, checkout.address, merchant, invoice)
        with pytest.raises(TransactionReverted) as refused:
            chain.transact(cast.car, wallet.functions.pay(invoice, signed))
        return refused.value.reason

    assert car_pays(cast.toll, 11 * EUR, b"\x71" * 32) == "vehicle_wallet: over per-payment limit"
    assert car_pays(cast.insurer, EUR, b"\x72" * 32) == "vehicle_wallet: category not allowed"
    chain.transact(cast.alice, wallet.functions.freeze())
    assert car_pays(cast.toll, EUR, b"\x73" * 32) == "vehicle_wallet: frozen"
    chain.transact(cast.alice, wallet.functions.unfreeze())
    assert balance(wallet_address) == 200 * EUR - TOLL - CHARGE

    # 6. A traffic authority fines the car.
    issue = fines.functions.issueFine(title, eur.address, FINE, LATE_FEE, now() + 30 * 86_400, 312)
    chain.transact(cast.authority, issue)
    fine_id = fines.functions.fineCount().call()

    # 7. Alice sells it on to Bob; before paying, Bob sees the unpaid fine.
    assert fines.functions.unpaidFines(title).call() == [fine_id]
    assert fines.functions.outstanding(title, eur.address).call() == FINE
    sell(cast.alice, cast.bob, RESALE)
    assert vehicles.functions.ownerOf(title).call() == cast.bob.address
    assert wallet.functions.owner().call() == cast.bob.address  # the car's wallet follows
    assert fines.functions.unpaidFines(title).call() == [fine_id]  # the fine stays with the car
    # Alice's policy does not pass to Bob: she cancels it, and gets the unused part back.
    before = balance(cast.alice)
    chain.transact(cast.alice, insurance.functions.cancel(policy_id))
    refund = balance(cast.alice) - before
    assert PREMIUM * 99 // 100 < refund <= PREMIUM
    # Bob pays the fine.
    chain.transact(cast.bob, eur.functions.approve(fines.address, FINE))
    chain.transact(cast.bob, fines.functions.payFine(fine_id))
    assert fines.functions.unpaidFines(title).call() == []
    assert balance(cast.authority) == FINE

    # The ledger saw all of it: the vehicle's record in the API.
    start = chain.deployment("merchant_registry").block
    Indexer(database, chain, platform.watched(), start_block=start).catch_up()
    reader = bearer(make_key(database, "ledger:read"))
    found = client.get(f"/v1/vehicles/{VIN}", headers=reader)
    assert found.status_code == 200, found.text
    record = found.json()
    assert record["vin"] == VIN
    assert [o["owner"] for o in record["owners"]] == [
        a.address.lower() for a in (cast.dealer, escrow, cast.alice, escrow, cast.bob)
    ]
    [fine] = record["fines"]
    assert (fine["status"], fine["paid"]) == ("paid", FINE)
    [policy] = record["policies"]
    assert (policy["status"], policy["holder"], policy["premium"]) == (
        "cancelled",
        cast.alice.address.lower(),
        PREMIUM,
    )
    assert policy["insurer"] == cast.insurer.address.lower()
