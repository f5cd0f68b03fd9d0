"""Tests of carpay/api/routes/vehicle_wallets.py and carpay/services/vehicle_wallets.py: the
owner of a car sets what its wallet's device key may spend, freezes it and rotates the key,
from the key the platform holds for the owner; whoever owns the title now is the one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.accounts import Keyring, participants
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.ledger.models import OutboxIntent
from carpay.services.platform import CATEGORIES, deploy_platform
from carpay.testing.signing import Domain
from tests.api.conftest import bearer, chain_clock, make_key, post, relay_and_index
from tests.api.test_owner_routes import CODES
from tests.api.test_problems import assert_problem
from tests.contracts.checkout_fixtures import INVOICE_TYPES
from tests.contracts.vehicle_wallet_fixtures import sign_hash, typed_digest

OWNER, TREASURY, DRIVER, DEVICE, THIEF, BUYER, TOLL = dev_accounts(count=7)
VIN = "1M8GDM9AXKP042788"
EUR = 10**6


@pytest.fixture
def chain(embedded, tmp_path, database):
    """DRIVER's car titled and its wallet created through the API's factory (device key
    DEVICE), holding 100.00 EUR; TOLL a toll operator; DRIVER is m1's, its key held."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    registry = chain.contract("merchant_registry", platform.registry)
    toll = registry.functions.registerMerchant(
        TOLL.address, CATEGORIES.index("toll"), TOLL.address, 0
    )
    chain.transact_all(
        [(OWNER, vehicles.functions.setRegistrar(OWNER.address, True)), (OWNER, toll)]
    )
    chain.transact(OWNER, vehicles.functions.mintTitle(DRIVER.address, VIN))
    with database.begin() as session:
        participants.link(session, owner="m1", chain_id=1337, address=DRIVER.address)
    chain.platform, chain.vehicles = platform, vehicles
    chain.title = vehicles.functions.titleOf(VIN).call()
    Indexer(database, chain, platform.watched()).catch_up()
    return chain


@pytest.fixture
def wallet(client, m1, database, chain, clock) -> str:
    """The car's wallet, created by DRIVER through the API and funded."""
    body = {"holder": DRIVER.address, "vin": VIN, "device_key": DEVICE.address}
    created = post(client, m1, "/v1/vehicle-wallets", body, "create")
    assert created.status_code == 201, created.text
    assert_problem(post(client, m1, "/v1/vehicle-wallets", body, "again"), 409, "conflict")
    relay_and_index(database, chain, DRIVER, clock)
    record = client.get(f"/v1/vehicles/{VIN}", headers=m1).json()["wallet"]
    assert record["created_by"] == DRIVER.address.lower()
    factory = chain.contract("vehicle_wallet_factory", chain.platform.wallets)
    address = factory.functions.walletOf(chain.title).call()
    assert record["wallet"] == address.lower()
    token = chain.contract("currency_token", chain.platform.tokens["EUR"])
    chain.transact(OWNER, token.functions.mint(address, 100 * EUR))
    assert_problem(post(client, m1, "/v1/vehicle-wallets", body, "third"), 409, "conflict")
    return address


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def keyring():
    return Keyring([DRIVER])


def test_the_owner_sets_limits_the_car_pays_a_toll_then_is_frozen_and_rekeyed(
    client, m1, database, chain, clock, wallet
):
    path = f"/v1/vehicle-wallets/{wallet}"
    eur = chain.platform.tokens["EUR"]
    state = client.get(path, headers=m1).json()
    assert (state["owner"], state["device_key"]) == (DRIVER.address, DEVICE.address)
    assert (state["frozen"], state["categories"], state["limits"]) == (False, [], [])

    limits = {
        "token": eur,
        "category": "toll",
        "daily_minor": 50_000_000,
        "per_payment_minor": 5_000_000,
    }
    for i, (step, body) in enumerate(
        (("limits", limits), ("categories", {"category": "toll", "allowed": True}))
    ):
        answer = post(client, m1, f"{path}/{step}", body, f"k{i}")
        assert answer.status_code == 201, answer.text
    relay_and_index(database, chain, DRIVER, clock)
    # The car pays a toll of 3.20 by itself, and the ledger shows it as the wallet's spend.
    car = chain.contract("vehicle_wallet", wallet)
    invoice = (
        TOLL.address,
        3_200_000,
        eur,
        b"\x07" * 32,
        int(clock.now.timestamp()) + 3600,
        wallet,
    )
    chain.transact(DEVICE, car.functions.pay(invoice, _signed(chain, invoice)))
    relay_and_index(database, chain, DRIVER, clock)
    [spend] = client.get(f"{path}/spends", headers=m1).json()["data"]
    assert (spend["merchant"], spend["gross"], spend["payer"]) == (
        TOLL.address.lower(),
        3_200_000,
        wallet.lower(),
    )
    [toll] = client.get(path, headers=m1).json()["limits"]
    assert toll["available_today"] == 5_000_000  # the largest next payment: the per-payment cap
    for i, (step, body) in enumerate(
        (("frozen", {"frozen": True}), ("device-key", {"device_key": BUYER.address}))
    ):
        answer = post(client, m1, f"{path}/{step}", body, f"f{i}")
        assert answer.status_code == 201, answer.text
    relay_and_index(database, chain, DRIVER, clock)

    with database.begin() as session:
        states = session.scalars(sa.select(OutboxIntent.state)).all()
    assert states == ["confirmed"] * 5
    state = client.get(path, headers=m1).json()
    assert (state["frozen"], state["categories"], state["device_key"]) == (
        True,
        ["toll"],
        BUYER.address,
    )
    [toll] = state["limits"]
    assert toll["available_today"] == 0  # frozen: nothing
    assert (toll["token"], toll["category"], toll["daily"], toll["per_payment"]) == (
        eur,
        "toll",
        50_000_000,
        5_000_000,
    )
    again = post(client, m1, f"{path}/frozen", {"frozen": True}, "k9")
    assert_problem(again, 409, "conflict")

    # The wallet's story, newest first, from its creation on.
    page = client.get(f"{path}/events", params={"limit": 4}, headers=m1).json()
    rest = client.get(f"{path}/events", params={"after": page["next_after"]}, headers=m1).json()
    assert not rest["has_more"]
    story = [(e["event"], e["args"]) for e in page["data"] + rest["data"]]
    assert [name for name, _ in story] == [
        "DeviceKeyRotated",
        "Frozen",
        "InvoicePaid",
        "CategoryAllowed",
        "LimitsSet",
        "DeviceKeyRotated",
    ]
    assert story[0][1]["device_key"] == BUYER.address.lower()
    assert story[2][1]["amount"] == "3200000"
    assert story[-1][1]["previous"] == "0x" + "00" * 20
    assert all(e["timestamp"] > 0 for e in page["data"])


def test_control_passes_with_the_title(client, m1, database, chain, clock, wallet):
    """Once DRIVER sells the car, DRIVER's key no longer controls its wallet."""
    transfer = chain.vehicles.functions.transferFrom(DRIVER.address, THIEF.address, chain.title)
    chain.transact(DRIVER, transfer)
    path = f"/v1/vehicle-wallets/{wallet}"
    assert client.get(path, headers=m1).json()["owner"] == THIEF.address
    answer = post(client, m1, f"{path}/frozen", {"frozen": True}, "k")
    assert_problem(answer, 403, "not-authorized")  # THIEF is nobody's here


def test_bad_wallet_requests_are_refused_and_nothing_is_written(
    client, m1, database, chain, wallet
):
    path = f"/v1/vehicle-wallets/{wallet}"
    eur = chain.platform.tokens["EUR"]
    good = {"token": eur, "category": "toll", "daily_minor": 10, "per_payment_minor": 5}
    for change, status in (
        ({"category": "spaceship"}, 422),
        ({"per_payment_minor": 11}, 422),  # above the daily limit
        ({"token": chain.platform.checkout}, 422),  # not money
    ):
        answer = post(client, m1, f"{path}/limits", good | change, str(change))
        assert_problem(answer, status, CODES[status])
    nowhere = f"/v1/vehicle-wallets/{THIEF.address}"  # an account, no wallet
    assert_problem(post(client, m1, f"{nowhere}/limits", good, "x"), 404, "not-found")
    assert client.get(nowhere, headers=m1).status_code == 404
    other = bearer(make_key(database, "payments:write", owner="m2"))
    assert_problem(post(client, other, f"{path}/limits", good, "y"), 403, "not-authorized")
    create = {"holder": DRIVER.address, "vin": "WVWZZZ1JZXW000001", "device_key": DEVICE.address}
    assert_problem(post(client, m1, "/v1/vehicle-wallets", create, "z"), 404, "not-found")
    with database.begin() as session:
        kinds = session.scalars(sa.select(OutboxIntent.kind)).all()
    assert kinds == ["wallet_create"]  # the fixture's, nothing more


def _signed(chain, invoice) -> bytes:
    """TOLL's signature of ``invoice`` in checkout's EIP-712 domain."""
    fields = ("merchant", "amount", "token", "invoiceId", "expiry", "payer")
    checkout = chain.contract("checkout", chain.platform.checkout)
    digest = typed_digest(
        Domain.of(checkout), INVOICE_TYPES, dict(zip(fields, invoice, strict=True))
    )
    return sign_hash(TOLL, digest).to_bytes()
