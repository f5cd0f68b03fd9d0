"""vehicle_wallet.vy: a vehicle's smart account. The device key pays invoices and places holds
through checkout within the owner's categories and limits; the title's holder (read live) sets
limits, freezes, rotates the key and withdraws; ERC-1271 accepts the owner's signatures only.
Every function, refusal and event, on both nodes, and the gas of each operation."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from carpay.chain import compile_contract, contract
from carpay.errors import TransactionReverted
from carpay.testing.signing import TYPES, Domain, sign_permit, sign_receive_authorization
from tests.contracts.checkout_fixtures import ZERO, events, latest_timestamp, reverts
from tests.contracts.conftest import CONTRACTS
from tests.contracts.vehicle_fixtures import VINS
from tests.contracts.vehicle_wallet_fixtures import (
    ALICE,
    BOB,
    DEALER,
    DEALER_CATEGORY,
    DEVICE,
    FEE_BPS,
    FUEL,
    FUEL_CATEGORY,
    FUNDS,
    INVALID,
    MAGIC,
    NEW_DEVICE,
    OWNER,
    PARKING_CATEGORY,
    PAYOUT,
    REGISTRAR,
    TREASURY,
    WALLET_MESSAGE_TYPES,
    deploy_wallet_world,
    sign_hash,
    typed_digest,
)

NOT_OWNER = "vehicle_wallet: caller is not the vehicle's owner"
NOT_DEVICE = "vehicle_wallet: caller is not the device key"
OVER_PAYMENT = "vehicle_wallet: over per-payment limit"
OVER_DAILY = "vehicle_wallet: over daily limit"
NOT_ALLOWED = "vehicle_wallet: category not allowed"
FROZEN = "vehicle_wallet: frozen"
EUR = 10**6
DAILY, PER_PAYMENT = 100 * EUR, 60 * EUR
MAX_LIMIT = 2**128 - 1


@pytest.fixture
def w(chain, accounts):
    """The wallet world; the wallet holds FUNDS, nothing allowed yet."""
    return deploy_wallet_world(chain, accounts)


@pytest.fixture
def fuel(w):
    """Fuel allowed: 100.00 a day, 60.00 a payment."""
    w.allow(FUEL_CATEGORY, DAILY, PER_PAYMENT)
    return w


def fee_of(amount: int) -> int:
    return amount * FEE_BPS // 10_000


def day_of(chain) -> int:
    return latest_timestamp(chain) // 86_400


# -- deployment -----------------------------------------------------------------------------


def test_deploy_binds_the_vehicle_and_the_device_key(w):
    f = w.f
    assert f.vehicles().call() == w.vehicles.address
    assert f.title().call() == w.title
    assert f.merchants().call() == w.merchants.address
    assert f.checkout().call() == w.checkout.address
    assert f.deviceKey().call() == w[DEVICE].address
    assert f.owner().call() == w[ALICE].address
    assert f.frozen().call() is False
    assert f.CATEGORY_COUNT().call() == 9
    assert f.MAX_LIMIT().call() == MAX_LIMIT
    assert f.MESSAGE_TYPEHASH().call() == keccak(text="VehicleWalletMessage(bytes32 hash)")
    for category in range(9):
        assert f.isCategoryAllowed(category).call() is False
        assert f.limits(w.token.address, category).call() == [0, 0]
        assert f.spentToday(w.token.address, category).call() == 0
        assert f.availableToday(w.token.address, category).call() == 0


def test_deploy_logs_the_device_key(chain, accounts, w):
    logs = w.wallet.events.DeviceKeyRotated().get_logs(from_block=0)
    assert [dict(e["args"]) for e in logs] == [
        {"previous": ZERO, "device_key": w[DEVICE].address, "by": accounts[OWNER].address}
    ]


def test_deploy_refusals(chain, accounts, w):
    other_registry = chain.deploy("merchant_registry", accounts[TREASURY].address, sender=w[OWNER])
    good = [
        w.vehicles.address,
        w.title,
        w.merchants.address,
        w.checkout.address,
        w[DEVICE].address,
    ]
    cases = [
        ({0: ZERO}, "vehicle_wallet: zero address"),
        ({2: ZERO}, "vehicle_wallet: zero address"),
        ({3: ZERO}, "vehicle_wallet: zero address"),
        ({1: w.title + 1}, "vehicle_wallet: unknown vehicle"),
        ({2: other_registry}, "vehicle_wallet: checkout reads another registry"),
    ]
    for changes, reason in cases:
        args = [changes.get(i, arg) for i, arg in enumerate(good)]
        with pytest.raises(TransactionReverted) as info:
            chain.deploy(contract("vehicle_wallet"), *args, sender=accounts[OWNER])
        assert info.value.reason == reason, changes


# -- the device key pays ---------------------------------------------------------------------


def test_the_device_key_pays_an_invoice(chain, fuel):
    w = fuel
    amount = 50 * EUR
    before = w.balance(w.wallet), w.balance(w[PAYOUT]), w.balance(w[TREASURY])
    receipt = chain.transact(w[DEVICE], w.pay(amount, invoice_id=7))
    assert events(chain, receipt, w.wallet, "InvoicePaid") == [
        {
            "invoice_id": (7).to_bytes(32, "big"),
            "merchant": w[FUEL].address,
            "token": w.token.address,
            "category": FUEL_CATEGORY,
            "amount": amount,
            "spent_today": amount,
        }
    ]
    paid = events(chain, receipt, w.checkout, "InvoicePaid")
    assert [(e["payer"], e["gross"], e["fee"]) for e in paid] == [
        (w.wallet.address, amount, fee_of(amount))
    ]
    assert (w.balance(w.wallet), w.balance(w[PAYOUT]), w.balance(w[TREASURY])) == (
        before[0] - amount,
        before[1] + amount - fee_of(amount),
        before[2] + fee_of(amount),
    )
    # The approval was exactly the amount: nothing is left for checkout to pull.
    assert w.token.functions.allowance(w.wallet.address, w.checkout.address).call() == 0
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == amount
    assert w.f.availableToday(w.token.address, FUEL_CATEGORY).call() == DAILY - amount


def test_an_open_invoice_pays_too(chain, fuel):
    chain.transact(fuel[DEVICE], fuel.pay(10 * EUR, payer=ZERO))
    assert fuel.balance(fuel.wallet) == FUNDS - 10 * EUR


def test_the_per_payment_limit(chain, fuel):
    w = fuel
    assert reverts(chain, w[DEVICE], w.pay(PER_PAYMENT + 1, invoice_id=1)) == OVER_PAYMENT
    chain.transact(w[DEVICE], w.pay(PER_PAYMENT, invoice_id=1))
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == PER_PAYMENT


def test_the_daily_limit(chain, fuel):
    w, device = fuel, fuel[DEVICE]
    chain.transact(device, w.pay(PER_PAYMENT, invoice_id=1))
    assert w.f.availableToday(w.token.address, FUEL_CATEGORY).call() == DAILY - PER_PAYMENT
    assert reverts(chain, device, w.pay(DAILY - PER_PAYMENT + 1, invoice_id=2)) == OVER_DAILY
    receipt = chain.transact(device, w.pay(DAILY - PER_PAYMENT, invoice_id=2))
    assert events(chain, receipt, w.wallet, "InvoicePaid")[0]["spent_today"] == DAILY
    assert reverts(chain, device, w.pay(1, invoice_id=3)) == OVER_DAILY
    assert w.f.availableToday(w.token.address, FUEL_CATEGORY).call() == 0
    assert w.balance(w.wallet) == FUNDS - DAILY


def test_limits_are_per_category_and_per_token(chain, fuel):
    w, device = fuel, fuel[DEVICE]
    w.allow(DEALER_CATEGORY, 1_000 * EUR, 1_000 * EUR)
    chain.transact(device, w.pay(PER_PAYMENT, invoice_id=1))
    chain.transact(device, w.pay(500 * EUR, invoice_id=2, merchant=DEALER))
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == PER_PAYMENT
    assert w.f.spentToday(w.token.address, DEALER_CATEGORY).call() == 500 * EUR
    # Another token has no limits until the owner sets them: nothing may be spent in it.
    other = chain.deploy("currency_token", "Carpay Dollar", "cUSD", "USD", "2", sender=w[OWNER])
    assert reverts(chain, device, w.pay(1, invoice_id=3, token=other)) == OVER_PAYMENT
    assert w.f.limits(other, FUEL_CATEGORY).call() == [0, 0]


def test_a_category_must_be_allowed(chain, w):
    device = w[DEVICE]
    chain.transact(w[ALICE], w.f.setLimits(w.token.address, FUEL_CATEGORY, DAILY, PER_PAYMENT))
    assert reverts(chain, device, w.pay(EUR)) == NOT_ALLOWED
    chain.transact(w[ALICE], w.f.allowCategory(FUEL_CATEGORY, True))
    chain.transact(device, w.pay(EUR, invoice_id=1))
    chain.transact(w[ALICE], w.f.allowCategory(FUEL_CATEGORY, False))
    assert reverts(chain, device, w.pay(EUR, invoice_id=2)) == NOT_ALLOWED
    # A dealer's invoice while only fuel is allowed, with generous limits for dealers.
    w.allow(FUEL_CATEGORY, DAILY, PER_PAYMENT)
    chain.transact(w[ALICE], w.f.setLimits(w.token.address, DEALER_CATEGORY, DAILY, DAILY))
    assert reverts(chain, device, w.pay(EUR, invoice_id=3, merchant=DEALER)) == NOT_ALLOWED


def test_a_merchant_recategorized_out_of_an_allowed_category_is_refused(chain, fuel):
    w = fuel
    chain.transact(w[OWNER], w.merchants.functions.setCategory(w[FUEL].address, PARKING_CATEGORY))
    assert reverts(chain, w[DEVICE], w.pay(EUR)) == NOT_ALLOWED


def test_an_inactive_or_unknown_merchant_is_refused(chain, fuel):
    w = fuel
    chain.transact(w[OWNER], w.merchants.functions.setActive(w[FUEL].address, False))
    assert reverts(chain, w[DEVICE], w.pay(EUR)) == "vehicle_wallet: merchant inactive"
    # BOB is no merchant at all.
    assert (
        reverts(chain, w[DEVICE], w.pay(EUR, merchant=BOB)) == "vehicle_wallet: merchant inactive"
    )


def test_a_zero_amount_is_refused(chain, fuel):
    assert reverts(chain, fuel[DEVICE], fuel.pay(0)) == "vehicle_wallet: zero amount"


@pytest.mark.parametrize("caller", [ALICE, BOB, NEW_DEVICE, FUEL, OWNER])
def test_only_the_device_key_pays(chain, fuel, caller):
    assert reverts(chain, fuel[caller], fuel.pay(EUR)) == NOT_DEVICE
    hold = fuel.hold(EUR)
    assert reverts(chain, fuel[caller], fuel.f.placeHold(hold)) == NOT_DEVICE


def test_checkout_refusals_leave_the_spending_untouched(chain, fuel):
    w, device = fuel, fuel[DEVICE]
    expired = w.invoice(EUR, expiry=latest_timestamp(chain) - 1)
    assert reverts(chain, device, w.f.pay(expired, w.sign_invoice(expired))) == (
        "checkout: invoice expired"
    )
    forged = w.invoice(EUR)
    assert reverts(chain, device, w.f.pay(forged, w.sign_invoice(forged, signer=BOB))) == (
        "checkout: invalid merchant signature"
    )
    for_bob = w.invoice(EUR, payer=w[BOB].address)
    assert reverts(chain, device, w.f.pay(for_bob, w.sign_invoice(for_bob))) == (
        "checkout: not the invoice's payer"
    )
    chain.transact(device, w.pay(EUR, invoice_id=5))
    assert reverts(chain, device, w.pay(EUR, invoice_id=5)) == "checkout: invoice already paid"
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == EUR
    assert w.balance(w.wallet) == FUNDS - EUR


def test_a_short_balance_is_refused_by_the_token(chain, fuel):
    w = fuel
    w.allow(DEALER_CATEGORY, MAX_LIMIT, MAX_LIMIT)
    with pytest.raises(TransactionReverted):
        chain.transact(w[DEVICE], w.pay(FUNDS + 1, merchant=DEALER))
    assert w.f.spentToday(w.token.address, DEALER_CATEGORY).call() == 0


def test_lowering_the_daily_limit_below_todays_spending_stops_payments(chain, fuel):
    w = fuel
    chain.transact(w[DEVICE], w.pay(50 * EUR, invoice_id=1))
    chain.transact(w[ALICE], w.f.setLimits(w.token.address, FUEL_CATEGORY, 40 * EUR, PER_PAYMENT))
    assert w.f.availableToday(w.token.address, FUEL_CATEGORY).call() == 0
    assert reverts(chain, w[DEVICE], w.pay(1, invoice_id=2)) == OVER_DAILY


def test_the_day_total_starts_again_the_next_utc_day(chain, fuel):
    w = fuel
    chain.transact(w[DEVICE], w.pay(DAILY // 2, invoice_id=1))
    chain.transact(w[DEVICE], w.pay(DAILY // 2, invoice_id=2))
    assert reverts(chain, w[DEVICE], w.pay(1, invoice_id=3)) == OVER_DAILY
    today = day_of(chain)
    answer = chain.w3.provider.make_request("evm_increaseTime", [86_400])
    if "error" in answer:
        # The embedded node's clock is the wall clock and it says so: a day cannot pass in a
        # test there, so the reset is shown on anvil; the state machine models days by the
        # blocks' timestamps on both nodes.
        assert answer["error"]["code"] == -32601
        assert reverts(chain, w[DEVICE], w.pay(1, invoice_id=3)) == OVER_DAILY
        return
    chain.transact(w[ALICE], w[ALICE].address, b"", gas=21_000)
    assert day_of(chain) == today + 1
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == 0
    assert w.f.availableToday(w.token.address, FUEL_CATEGORY).call() == PER_PAYMENT
    receipt = chain.transact(w[DEVICE], w.pay(PER_PAYMENT, invoice_id=3))
    assert events(chain, receipt, w.wallet, "InvoicePaid")[0]["spent_today"] == PER_PAYMENT


# -- holds ----------------------------------------------------------------------------------


def test_the_device_key_places_a_hold(chain, fuel):
    w, amount = fuel, 40 * EUR
    hold = w.hold(amount, salt=9)
    hold_id = w.checkout.functions.holdId(hold).call()
    receipt = chain.transact(w[DEVICE], w.f.placeHold(hold))
    assert events(chain, receipt, w.wallet, "HoldPlaced") == [
        {
            "hold_id": hold_id,
            "merchant": w[FUEL].address,
            "token": w.token.address,
            "category": FUEL_CATEGORY,
            "amount": amount,
            "spent_today": amount,
        }
    ]
    assert [e["hold_id"] for e in events(chain, receipt, w.checkout, "HoldPlaced")] == [hold_id]
    assert w.checkout.functions.holdState(hold_id).call() == [1, amount]
    assert w.balance(w.wallet) == FUNDS - amount
    assert w.token.functions.allowance(w.wallet.address, w.checkout.address).call() == 0
    # The pump captures 25.00 and closes the hold: 15.00 comes back, the limit stays used.
    chain.transact(w[FUEL], w.checkout.functions.capture(hold, 25 * EUR, True))
    assert w.balance(w.wallet) == FUNDS - 25 * EUR
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == amount


def test_hold_refusals(chain, fuel):
    w, device = fuel, fuel[DEVICE]
    bobs = w.hold(EUR, payer=w[BOB].address)
    assert (
        reverts(chain, device, w.f.placeHold(bobs))
        == "vehicle_wallet: hold payer is not the wallet"
    )
    assert reverts(chain, device, w.f.placeHold(w.hold(PER_PAYMENT + 1))) == OVER_PAYMENT
    assert reverts(chain, device, w.f.placeHold(w.hold(EUR, merchant=DEALER))) == NOT_ALLOWED
    assert reverts(chain, device, w.f.placeHold(w.hold(0))) == "vehicle_wallet: zero amount"
    chain.transact(device, w.f.placeHold(w.hold(PER_PAYMENT, salt=1)))
    assert reverts(chain, device, w.f.placeHold(w.hold(DAILY - PER_PAYMENT + 1, salt=2))) == (
        OVER_DAILY
    )
    chain.transact(w[ALICE], w.f.freeze())
    assert reverts(chain, device, w.f.placeHold(w.hold(EUR, salt=3))) == FROZEN


# -- the owner ------------------------------------------------------------------------------


def owner_calls(w):
    f, token = w.f, w.token.address
    return {
        "setLimits": f.setLimits(token, FUEL_CATEGORY, 1, 1),
        "allowCategory": f.allowCategory(FUEL_CATEGORY, True),
        "freeze": f.freeze(),
        "rotateDeviceKey": f.rotateDeviceKey(w[NEW_DEVICE].address),
        "withdraw": f.withdraw(token, w[BOB].address, 1),
    }


@pytest.mark.parametrize("caller", [DEVICE, BOB, OWNER, REGISTRAR, FUEL])
def test_owner_functions_refuse_everyone_else(chain, w, caller):
    for name, fn in owner_calls(w).items():
        assert reverts(chain, w[caller], fn) == NOT_OWNER, name
    chain.transact(w[ALICE], w.f.freeze())
    assert reverts(chain, w[caller], w.f.unfreeze()) == NOT_OWNER


def test_set_limits(chain, w):
    f, alice, token = w.f, w[ALICE], w.token.address
    receipt = chain.transact(alice, f.setLimits(token, FUEL_CATEGORY, DAILY, PER_PAYMENT))
    assert events(chain, receipt, w.wallet, "LimitsSet") == [
        {
            "token": token,
            "category": FUEL_CATEGORY,
            "daily": DAILY,
            "per_payment": PER_PAYMENT,
            "owner": alice.address,
        }
    ]
    assert f.limits(token, FUEL_CATEGORY).call() == [DAILY, PER_PAYMENT]
    chain.transact(alice, f.setLimits(token, 8, MAX_LIMIT, MAX_LIMIT))
    assert f.limits(token, 8).call() == [MAX_LIMIT, MAX_LIMIT]
    cases = [
        ((ZERO, FUEL_CATEGORY, 1, 1), "vehicle_wallet: zero token"),
        ((token, 9, 1, 1), "vehicle_wallet: unknown category"),
        ((token, 255, 1, 1), "vehicle_wallet: unknown category"),
        ((token, FUEL_CATEGORY, MAX_LIMIT + 1, 1), "vehicle_wallet: limit too large"),
        ((token, FUEL_CATEGORY, 1, MAX_LIMIT + 1), "vehicle_wallet: limit too large"),
    ]
    for args, reason in cases:
        assert reverts(chain, alice, f.setLimits(*args)) == reason, args
    assert f.limits(token, FUEL_CATEGORY).call() == [DAILY, PER_PAYMENT]


def test_allow_category(chain, w):
    f, alice = w.f, w[ALICE]
    for category in (0, 4, 8):
        receipt = chain.transact(alice, f.allowCategory(category, True))
        assert events(chain, receipt, w.wallet, "CategoryAllowed") == [
            {"category": category, "allowed": True, "owner": alice.address}
        ]
    assert [f.isCategoryAllowed(c).call() for c in range(9)] == [c in (0, 4, 8) for c in range(9)]
    receipt = chain.transact(alice, f.allowCategory(4, False))
    assert events(chain, receipt, w.wallet, "CategoryAllowed") == [
        {"category": 4, "allowed": False, "owner": alice.address}
    ]
    assert [f.isCategoryAllowed(c).call() for c in range(9)] == [c in (0, 8) for c in range(9)]
    assert reverts(chain, alice, f.allowCategory(9, True)) == "vehicle_wallet: unknown category"
    assert f.isCategoryAllowed(9).call() is False
    assert f.isCategoryAllowed(255).call() is False
    # The device key and the frozen flag share the word: neither moved.
    assert f.deviceKey().call() == w[DEVICE].address
    assert f.frozen().call() is False


def test_freeze_and_unfreeze(chain, fuel):
    w, f, alice = fuel, fuel.f, fuel[ALICE]
    receipt = chain.transact(alice, f.freeze())
    assert events(chain, receipt, w.wallet, "Frozen") == [{"owner": alice.address}]
    assert f.frozen().call() is True
    assert f.availableToday(w.token.address, FUEL_CATEGORY).call() == 0
    assert reverts(chain, w[DEVICE], w.pay(EUR)) == FROZEN
    assert reverts(chain, alice, f.freeze()) == FROZEN
    # The owner's functions still work while frozen.
    chain.transact(alice, f.setLimits(w.token.address, FUEL_CATEGORY, DAILY, PER_PAYMENT))
    receipt = chain.transact(alice, f.unfreeze())
    assert events(chain, receipt, w.wallet, "Unfrozen") == [{"owner": alice.address}]
    assert f.frozen().call() is False
    assert reverts(chain, alice, f.unfreeze()) == "vehicle_wallet: not frozen"
    chain.transact(w[DEVICE], w.pay(EUR))
    assert f.isCategoryAllowed(FUEL_CATEGORY).call() is True
    assert f.deviceKey().call() == w[DEVICE].address


def test_rotating_the_device_key_refuses_the_old_one(chain, fuel):
    w, f, alice = fuel, fuel.f, fuel[ALICE]
    chain.transact(w[DEVICE], w.pay(10 * EUR, invoice_id=1))
    chain.transact(alice, f.freeze())
    receipt = chain.transact(alice, f.rotateDeviceKey(w[NEW_DEVICE].address))
    assert events(chain, receipt, w.wallet, "DeviceKeyRotated") == [
        {"previous": w[DEVICE].address, "device_key": w[NEW_DEVICE].address, "by": alice.address}
    ]
    assert f.deviceKey().call() == w[NEW_DEVICE].address
    # Rotation keeps the wallet frozen, the categories allowed and the day's spending.
    assert f.frozen().call() is True
    assert f.isCategoryAllowed(FUEL_CATEGORY).call() is True
    chain.transact(alice, f.unfreeze())
    assert reverts(chain, w[DEVICE], w.pay(EUR, invoice_id=2)) == NOT_DEVICE
    assert reverts(chain, w[DEVICE], f.placeHold(w.hold(EUR))) == NOT_DEVICE
    receipt = chain.transact(w[NEW_DEVICE], w.pay(PER_PAYMENT, invoice_id=2))
    assert events(chain, receipt, w.wallet, "InvoicePaid")[0]["spent_today"] == 70 * EUR
    # The zero address leaves the wallet without a device key.
    receipt = chain.transact(alice, f.rotateDeviceKey(ZERO))
    assert events(chain, receipt, w.wallet, "DeviceKeyRotated")[0]["device_key"] == ZERO
    assert reverts(chain, w[NEW_DEVICE], w.pay(EUR, invoice_id=3)) == NOT_DEVICE


def test_withdraw(chain, fuel):
    w, f, alice, bob = fuel, fuel.f, fuel[ALICE], fuel[BOB]
    receipt = chain.transact(alice, f.withdraw(w.token.address, bob.address, 300 * EUR))
    assert events(chain, receipt, w.wallet, "Withdrawn") == [
        {"token": w.token.address, "to": bob.address, "amount": 300 * EUR, "owner": alice.address}
    ]
    assert (w.balance(w.wallet), w.balance(bob)) == (FUNDS - 300 * EUR, 300 * EUR)
    # Beyond the device key's limits, and while frozen.
    chain.transact(alice, f.freeze())
    chain.transact(alice, f.withdraw(w.token.address, alice.address, FUNDS - 300 * EUR))
    assert w.balance(w.wallet) == 0
    assert (
        reverts(chain, alice, f.withdraw(w.token.address, ZERO, 0))
        == "vehicle_wallet: zero address"
    )
    assert reverts(chain, alice, f.withdraw(w.token.address, bob.address, 1)) is not None


def test_withdraw_a_token_that_returns_nothing(chain, w):
    plain = compile_contract(CONTRACTS / "plain_erc20.vy")
    token = chain.contract(plain, chain.deploy(plain, sender=w[OWNER]))
    chain.transact(w[OWNER], token.functions.transfer(w.wallet.address, 1_000))
    chain.transact(w[ALICE], w.f.withdraw(token.address, w[BOB].address, 400))
    assert token.functions.balanceOf(w[BOB].address).call() == 400


# -- a title transfer -----------------------------------------------------------------------


def test_a_title_transfer_hands_control_to_the_buyer(chain, fuel):
    w, f, alice, bob = fuel, fuel.f, fuel[ALICE], fuel[BOB]
    chain.transact(alice, w.vehicles.functions.transferFrom(alice.address, bob.address, w.title))
    assert f.owner().call() == bob.address
    for name, fn in owner_calls(w).items():
        assert reverts(chain, alice, fn) == NOT_OWNER, name
    chain.transact(bob, f.rotateDeviceKey(w[NEW_DEVICE].address))
    chain.transact(bob, f.setLimits(w.token.address, FUEL_CATEGORY, 5 * EUR, 5 * EUR))
    chain.transact(bob, f.withdraw(w.token.address, bob.address, 100 * EUR))
    assert w.balance(bob) == 100 * EUR
    assert reverts(chain, w[DEVICE], w.pay(EUR)) == NOT_DEVICE
    assert reverts(chain, w[NEW_DEVICE], w.pay(6 * EUR)) == OVER_PAYMENT
    chain.transact(w[NEW_DEVICE], w.pay(5 * EUR))
    chain.transact(bob, f.freeze())
    assert reverts(chain, alice, f.unfreeze()) == NOT_OWNER
    chain.transact(bob, f.unfreeze())


# -- ERC-1271 -------------------------------------------------------------------------------


def test_replay_safe_hash_and_domain(chain, w):
    domain = Domain.of(w.wallet)
    assert (domain.name, domain.version) == ("carpay vehicle wallet", "1")
    assert domain.chain_id == chain.chain_id
    assert domain.verifying_contract == w.wallet.address
    digest = keccak(b"any digest")
    assert w.f.replaySafeHash(digest).call() == typed_digest(
        domain, WALLET_MESSAGE_TYPES, {"hash": digest}
    )
    assert len(w.f.DOMAIN_SEPARATOR().call()) == 32


def is_valid(w, digest: bytes, signature: bytes) -> bytes:
    return w.f.isValidSignature(digest, signature).call()


def test_is_valid_signature_accepts_the_owner_only(chain, w):
    digest = keccak(b"an authorization")
    alice = w.wallet_signature(w[ALICE], digest)
    assert is_valid(w, digest, alice.to_bytes()) == MAGIC
    # Not the device key's (see the contract: a signed pull would bypass the limits), nor a
    # stranger's, nor the owner's raw signature of the digest, nor one for another digest.
    assert is_valid(w, digest, w.wallet_signature(w[DEVICE], digest).to_bytes()) == INVALID
    assert is_valid(w, digest, w.wallet_signature(w[BOB], digest).to_bytes()) == INVALID
    assert is_valid(w, digest, sign_hash(w[ALICE], digest).to_bytes()) == INVALID
    assert is_valid(w, keccak(b"another"), alice.to_bytes()) == INVALID
    # Malformed signatures are answers, not reverts.
    assert is_valid(w, digest, alice.malleated().to_bytes()) == INVALID
    assert is_valid(w, digest, alice.to_bytes()[:64]) == INVALID
    assert is_valid(w, digest, b"") == INVALID
    assert is_valid(w, digest, b"\x00" * 65) == INVALID
    assert is_valid(w, digest, alice.r + alice.s + bytes([alice.v + 2])) == INVALID


def test_a_frozen_wallet_signs_nothing(chain, w):
    digest = keccak(b"an authorization")
    signature = w.wallet_signature(w[ALICE], digest).to_bytes()
    chain.transact(w[ALICE], w.f.freeze())
    assert is_valid(w, digest, signature) == INVALID
    chain.transact(w[ALICE], w.f.unfreeze())
    assert is_valid(w, digest, signature) == MAGIC


def test_a_title_transfer_moves_the_signing_power(chain, w):
    alice, bob = w[ALICE], w[BOB]
    digest = keccak(b"an authorization")
    signed_by_alice = w.wallet_signature(alice, digest).to_bytes()
    chain.transact(alice, w.vehicles.functions.transferFrom(alice.address, bob.address, w.title))
    assert is_valid(w, digest, signed_by_alice) == INVALID
    assert is_valid(w, digest, w.wallet_signature(bob, digest).to_bytes()) == MAGIC


def test_a_contract_owner_signs_through_its_own_erc1271(chain, w, erc1271_wallet):
    alice, bob = w[ALICE], w[BOB]
    safe = chain.deploy(erc1271_wallet, bob.address, sender=bob)
    chain.transact(alice, w.vehicles.functions.transferFrom(alice.address, safe, w.title))
    digest = keccak(b"an authorization")
    assert is_valid(w, digest, w.wallet_signature(bob, digest).to_bytes()) == MAGIC
    assert is_valid(w, digest, w.wallet_signature(alice, digest).to_bytes()) == INVALID
    assert is_valid(w, digest, b"\x01" * 10) == INVALID


def test_one_signature_is_not_valid_for_another_wallet_of_the_same_owner(chain, accounts, w):
    second_title = int.from_bytes(keccak(text=VINS[1]), "big")
    chain.transact(w[REGISTRAR], w.vehicles.functions.mintTitle(w[ALICE].address, VINS[1]))
    args = (w.vehicles.address, second_title, w.merchants.address, w.checkout.address, ZERO)
    second = chain.contract(
        "vehicle_wallet", chain.deploy("vehicle_wallet", *args, sender=accounts[OWNER])
    )
    digest = keccak(b"an authorization")
    signature = w.wallet_signature(w[ALICE], digest).to_bytes()
    assert is_valid(w, digest, signature) == MAGIC
    assert second.functions.isValidSignature(digest, signature).call() == INVALID


def receive_for_invoice(w, signer, invoice):
    """(validAfter, validBefore, v, r, s) of ``signer``'s ReceiveWithAuthorization for the
    wallet, signed as the wallet takes it (the replay-safe hash), nonce the invoice's hash."""
    nonce = w.checkout.functions.invoiceHash(invoice).call()
    valid_before = invoice[4]
    message = {
        "from": w.wallet.address,
        "to": w.checkout.address,
        "value": invoice[1],
        "validAfter": 0,
        "validBefore": valid_before,
        "nonce": nonce,
    }
    digest = typed_digest(
        Domain.of(w.token), {"ReceiveWithAuthorization": TYPES["ReceiveWithAuthorization"]}, message
    )
    s = w.wallet_signature(signer, digest)
    return 0, valid_before, s.v, s.r, s.s


def test_the_owner_signs_a_gasless_invoice_payment_for_the_wallet(chain, w):
    invoice = w.invoice(500 * EUR, invoice_id=3)
    fn = w.checkout.functions.payInvoiceWithAuthorization(
        invoice,
        w.sign_invoice(invoice),
        w.wallet.address,
        *receive_for_invoice(w, w[ALICE], invoice),
    )
    receipt = chain.transact(w[BOB], fn)
    paid = events(chain, receipt, w.checkout, "InvoicePaid")
    assert [(e["payer"], e["gross"]) for e in paid] == [(w.wallet.address, 500 * EUR)]
    assert w.balance(w.wallet) == FUNDS - 500 * EUR
    # The owner's own payments are not the device key's: they use none of its limits.
    assert w.f.spentToday(w.token.address, FUEL_CATEGORY).call() == 0


@pytest.mark.parametrize("signer", [DEVICE, BOB])
def test_no_one_else_signs_a_pull_from_the_wallet(chain, fuel, signer):
    w = fuel
    invoice = w.invoice(EUR, invoice_id=3)
    fn = w.checkout.functions.payInvoiceWithAuthorization(
        invoice,
        w.sign_invoice(invoice),
        w.wallet.address,
        *receive_for_invoice(w, w[signer], invoice),
    )
    assert reverts(chain, w[BOB], fn) == "currency_token: invalid signature"
    # Nor with a raw signature of the token's digest.
    after, before, *_ = receive_for_invoice(w, w[signer], invoice)
    token_domain = Domain.of(w.token)
    raw = sign_receive_authorization(
        w[signer],
        token_domain,
        to=w.checkout.address,
        value=EUR,
        valid_after=after,
        valid_before=before,
        nonce=w.checkout.functions.invoiceHash(invoice).call(),
        from_=w.wallet.address,
    )
    fn = w.checkout.functions.payInvoiceWithAuthorization(
        invoice, w.sign_invoice(invoice), w.wallet.address, after, before, *raw
    )
    assert reverts(chain, w[BOB], fn) == "currency_token: invalid signature"
    assert w.balance(w.wallet) == FUNDS


def test_a_former_owners_authorization_is_refused(chain, w):
    alice, bob = w[ALICE], w[BOB]
    invoice = w.invoice(EUR, invoice_id=4)
    by_alice = receive_for_invoice(w, alice, invoice)
    chain.transact(alice, w.vehicles.functions.transferFrom(alice.address, bob.address, w.title))
    pay = w.checkout.functions.payInvoiceWithAuthorization
    fn = pay(invoice, w.sign_invoice(invoice), w.wallet.address, *by_alice)
    assert reverts(chain, bob, fn) == "currency_token: invalid signature"
    fn = pay(
        invoice, w.sign_invoice(invoice), w.wallet.address, *receive_for_invoice(w, bob, invoice)
    )
    chain.transact(bob, fn)
    assert w.balance(w.wallet) == FUNDS - EUR


def test_owner_permits_and_frozen_permits(chain, w):
    alice, bob, token = w[ALICE], w[BOB], w.token
    deadline = latest_timestamp(chain) + 3600

    def permit(nonce: int):
        digest = typed_digest(
            Domain.of(token),
            {
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ]
            },
            {
                "owner": w.wallet.address,
                "spender": bob.address,
                "value": 7 * EUR,
                "nonce": nonce,
                "deadline": deadline,
            },
        )
        s = w.wallet_signature(alice, digest)
        return token.functions.permit(
            w.wallet.address, bob.address, 7 * EUR, deadline, s.v, s.r, s.s
        )

    chain.transact(alice, w.f.freeze())
    assert reverts(chain, bob, permit(0)) == "currency_token: invalid signature"
    chain.transact(alice, w.f.unfreeze())
    chain.transact(bob, permit(0))
    assert token.functions.allowance(w.wallet.address, bob.address).call() == 7 * EUR
    # The device key's permit, as the token's helper signs it, is refused.
    device = sign_permit(
        w[DEVICE],
        Domain.of(token),
        spender=bob.address,
        value=7 * EUR,
        nonce=1,
        deadline=deadline,
        owner=w.wallet.address,
    )
    fn = token.functions.permit(w.wallet.address, bob.address, 7 * EUR, deadline, *device)
    assert reverts(chain, bob, fn) == "currency_token: invalid signature"


# -- gas ------------------------------------------------------------------------------------


def test_gas_per_operation(chain, w, record_property):
    alice, device = w[ALICE], w[DEVICE]
    used = {}
    used["allow category"] = chain.transact(alice, w.f.allowCategory(FUEL_CATEGORY, True))[
        "gasUsed"
    ]
    fn = w.f.setLimits(w.token.address, FUEL_CATEGORY, DAILY, PER_PAYMENT)
    used["set limits (first)"] = chain.transact(alice, fn)["gasUsed"]
    fn = w.f.setLimits(w.token.address, FUEL_CATEGORY, DAILY * 2, PER_PAYMENT)
    used["set limits (change)"] = chain.transact(alice, fn)["gasUsed"]
    used["pay (first of the day)"] = chain.transact(device, w.pay(10 * EUR, invoice_id=1))[
        "gasUsed"
    ]
    used["pay"] = chain.transact(device, w.pay(10 * EUR, invoice_id=2))["gasUsed"]
    used["place hold"] = chain.transact(device, w.f.placeHold(w.hold(10 * EUR)))["gasUsed"]
    # The same invoice paid by an EOA straight to checkout, for comparison.
    payer = w[BOB]
    chain.transact(w[OWNER], w.token.functions.mint(payer.address, 100 * EUR))
    chain.transact(payer, w.token.functions.approve(w.checkout.address, 10 * EUR))
    invoice = w.invoice(10 * EUR, invoice_id=3, payer=payer.address)
    fn = w.checkout.functions.payInvoice(invoice, w.sign_invoice(invoice))
    used["checkout.payInvoice by an EOA (after approve)"] = chain.transact(payer, fn)["gasUsed"]
    fn = w.f.rotateDeviceKey(w[NEW_DEVICE].address)
    used["rotate device key"] = chain.transact(alice, fn)["gasUsed"]
    used["freeze"] = chain.transact(alice, w.f.freeze())["gasUsed"]
    used["unfreeze"] = chain.transact(alice, w.f.unfreeze())["gasUsed"]
    fn = w.f.withdraw(w.token.address, alice.address, EUR)
    used["withdraw"] = chain.transact(alice, fn)["gasUsed"]
    for name, gas in used.items():
        record_property(f"gas {name}", gas)
        print(f"gas {name}: {gas}")
