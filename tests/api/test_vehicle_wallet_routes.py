"""Tests of carpay/api/routes/vehicle_wallets.py and carpay/services/vehicle_wallets.py: the
owner of a car sets what its wallet's device key may spend, freezes it and rotates the key,
from the key the platform holds for the owner; whoever owns the title now is the one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.accounts import Keyring, participants
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger.models import OutboxIntent
from carpay.services.platform import deploy_platform
from tests.api.conftest import bearer, chain_clock, make_key, post, relay_and_index
from tests.api.test_owner_routes import CODES
from tests.api.test_problems import assert_problem

OWNER, TREASURY, DRIVER, DEVICE, THIEF, BUYER = dev_accounts(count=6)
VIN = "1M8GDM9AXKP042788"


@pytest.fixture
def chain(embedded, tmp_path, database):
    """DRIVER's car titled, with a wallet whose device key is DEVICE; DRIVER is m1's, held."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    vehicles = chain.contract("vehicle_registry", platform.vehicles)
    chain.transact(OWNER, vehicles.functions.setRegistrar(OWNER.address, True))
    chain.transact(OWNER, vehicles.functions.mintTitle(DRIVER.address, VIN))
    title = vehicles.functions.titleOf(VIN).call()
    wallet = chain.deploy(
        "vehicle_wallet",
        platform.vehicles,
        title,
        platform.registry,
        platform.checkout,
        DEVICE.address,
        sender=DRIVER,
        name=f"vehicle_wallet:{tmp_path.name}",
    )
    with database.begin() as session:
        participants.link(session, owner="m1", chain_id=1337, address=DRIVER.address)
    chain.platform, chain.wallet, chain.vehicles, chain.title = platform, wallet, vehicles, title
    return chain


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def keyring():
    return Keyring([DRIVER])


@pytest.fixture
def m1(database):
    return bearer(make_key(database, "payments:write", "transfers:read", "ledger:read", owner="m1"))


def test_the_owner_sets_limits_allows_a_category_freezes_and_rotates(
    client, m1, database, chain, clock
):
    path = f"/v1/vehicle-wallets/{chain.wallet}"
    eur = chain.platform.tokens["EUR"]
    wallet = client.get(path, headers=m1).json()
    assert (wallet["owner"], wallet["device_key"]) == (DRIVER.address, DEVICE.address)
    assert (wallet["frozen"], wallet["categories"], wallet["limits"]) == (False, [], [])

    limits = {
        "token": eur,
        "category": "toll",
        "daily_minor": 50_000_000,
        "per_payment_minor": 5_000_000,
    }
    steps = [
        ("limits", limits),
        ("categories", {"category": "toll", "allowed": True}),
        ("frozen", {"frozen": True}),
        ("device-key", {"device_key": BUYER.address}),
    ]
    for i, (step, body) in enumerate(steps):
        answer = post(client, m1, f"{path}/{step}", body, f"k{i}")
        assert answer.status_code == 201, answer.text
    relay_and_index(database, chain, DRIVER, clock)

    with database.begin() as session:
        states = session.scalars(sa.select(OutboxIntent.state)).all()
    assert states == ["confirmed"] * 4
    wallet = client.get(path, headers=m1).json()
    assert (wallet["frozen"], wallet["categories"], wallet["device_key"]) == (
        True,
        ["toll"],
        BUYER.address,
    )
    [toll] = wallet["limits"]
    assert (toll["token"], toll["category"], toll["daily"], toll["per_payment"]) == (
        eur,
        "toll",
        50_000_000,
        5_000_000,
    )
    again = post(client, m1, f"{path}/frozen", {"frozen": True}, "k9")
    assert_problem(again, 409, "conflict")


def test_control_passes_with_the_title(client, m1, database, chain, clock):
    """Once DRIVER sells the car, DRIVER's key no longer controls its wallet."""
    transfer = chain.vehicles.functions.transferFrom(DRIVER.address, THIEF.address, chain.title)
    chain.transact(DRIVER, transfer)
    path = f"/v1/vehicle-wallets/{chain.wallet}"
    assert client.get(path, headers=m1).json()["owner"] == THIEF.address
    answer = post(client, m1, f"{path}/frozen", {"frozen": True}, "k")
    assert_problem(answer, 403, "not-authorized")  # THIEF is nobody's here


def test_bad_wallet_requests_are_refused_and_nothing_is_written(client, m1, database, chain):
    path = f"/v1/vehicle-wallets/{chain.wallet}"
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
    with database.begin() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxIntent)) == 0
