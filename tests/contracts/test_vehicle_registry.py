"""vehicle_registry.vy: titles keyed by VIN, roles, liens that block transfers, service history;
every function, refusal and event, on both nodes."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from carpay.errors import TransactionReverted
from carpay.services.vin import validate_vin
from tests.contracts.checkout_fixtures import ZERO, events, latest_timestamp, reverts
from tests.contracts.vehicle_fixtures import (
    ALICE,
    BOB,
    LENDER,
    OWNER,
    REGISTRAR,
    SHOP,
    STRANGER,
    VINS,
    deploy_vehicles,
    title_id,
    title_receiver,
)

NOT_OWNER = "ownable: caller is not the owner"
NOT_REGISTRAR = "vehicle_registry: caller is not a registrar"
NOT_OWNER_OR_REGISTRAR = "vehicle_registry: caller is not the owner or a registrar"
NOT_LIENHOLDER = "vehicle_registry: caller is not the lienholder or a registrar"
NOT_SHOP = "vehicle_registry: caller is not a repair shop"
NOT_APPROVED = "erc721: caller is not token owner or approved"
LIEN_OPEN = "vehicle_registry: title has an open lien"
DOC = keccak(text="invoice 2024-0001: brake pads, oil change")


@pytest.fixture
def v(chain, accounts):
    """A fresh registry: accounts[REGISTRAR] a registrar, accounts[SHOP] a repair shop."""
    return deploy_vehicles(chain, accounts)


@pytest.fixture
def title(v):
    """The title of VINS[0], owned by ALICE."""
    return v.mint(VINS[0], ALICE)


@pytest.fixture
def liened(v, title):
    """The title of VINS[0] with LENDER's lien of 20,000.00 on it."""
    v.chain.transact(v[REGISTRAR], v.f.recordLien(title, v[LENDER].address, 20_000 * 10**6))
    return title


def test_vins_of_these_tests_are_valid():
    assert [validate_vin(vin) for vin in VINS] == list(VINS)


# -- deployment and roles -------------------------------------------------------------------


def test_deploy_sets_collection_owner_and_interfaces(v):
    f = v.f
    assert f.name().call() == "carpay vehicle titles"
    assert f.symbol().call() == "TITLE"
    assert f.owner().call() == v[OWNER].address
    assert f.pending_owner().call() == ZERO
    assert f.totalSupply().call() == 0
    assert f.VIN_LENGTH().call() == 17
    assert f.MAX_ODOMETER().call() == 2**48 - 1
    assert f.MAX_PAYOFF().call() == 2**96 - 1
    for interface in ("0x01ffc9a7", "0x80ac58cd", "0x5b5e139f", "0x780e9d63"):
        assert f.supportsInterface(bytes.fromhex(interface[2:])).call()
    assert not f.supportsInterface(bytes.fromhex("ffffffff")).call()
    assert f.eip712Domain().call()[1:3] == ["carpay vehicle registry", "1"]


def test_owner_grants_and_revokes_registrars(chain, v):
    f, who = v.f, v[STRANGER].address
    receipt = chain.transact(v[OWNER], f.setRegistrar(who, True))
    assert f.isRegistrar(who).call()
    assert events(chain, receipt, v.registry, "RegistrarChanged") == [
        {"account": who, "enabled": True}
    ]
    receipt = chain.transact(v[OWNER], f.setRegistrar(who, False))
    assert not f.isRegistrar(who).call()
    assert events(chain, receipt, v.registry, "RegistrarChanged") == [
        {"account": who, "enabled": False}
    ]


@pytest.mark.parametrize("caller", [REGISTRAR, STRANGER, SHOP])
def test_only_the_owner_names_registrars(chain, v, caller):
    fn = v.f.setRegistrar(v[STRANGER].address, True)
    assert reverts(chain, v[caller], fn) == NOT_OWNER


def test_set_registrar_refuses_zero_address(chain, v):
    fn = v.f.setRegistrar(ZERO, True)
    assert reverts(chain, v[OWNER], fn) == "vehicle_registry: zero address"


@pytest.mark.parametrize("caller", [OWNER, REGISTRAR])
def test_owner_and_registrars_authorize_repair_shops(chain, v, caller):
    f, shop = v.f, v[BOB].address
    receipt = chain.transact(v[caller], f.setRepairShop(shop, True))
    assert f.isRepairShop(shop).call()
    assert events(chain, receipt, v.registry, "RepairShopChanged") == [
        {"shop": shop, "enabled": True, "by": v[caller].address}
    ]
    receipt = chain.transact(v[caller], f.setRepairShop(shop, False))
    assert not f.isRepairShop(shop).call()
    assert events(chain, receipt, v.registry, "RepairShopChanged") == [
        {"shop": shop, "enabled": False, "by": v[caller].address}
    ]


@pytest.mark.parametrize("caller", [SHOP, STRANGER, LENDER])
def test_others_cannot_authorize_repair_shops(chain, v, caller):
    fn = v.f.setRepairShop(v[BOB].address, True)
    assert reverts(chain, v[caller], fn) == NOT_OWNER_OR_REGISTRAR


def test_set_repair_shop_refuses_zero_address(chain, v):
    fn = v.f.setRepairShop(ZERO, True)
    assert reverts(chain, v[REGISTRAR], fn) == "vehicle_registry: zero address"


def test_ownership_moves_in_two_steps(chain, v):
    f, new = v.f, v[BOB]
    chain.transact(v[OWNER], f.transfer_ownership(new.address))
    assert f.pending_owner().call() == new.address
    assert f.owner().call() == v[OWNER].address
    assert reverts(chain, v[STRANGER], f.accept_ownership()) == (
        "ownable_2step: caller is not the new owner"
    )
    chain.transact(new, f.accept_ownership())
    assert f.owner().call() == new.address
    assert reverts(chain, v[OWNER], f.setRegistrar(v[STRANGER].address, True)) == NOT_OWNER
    chain.transact(new, f.setRegistrar(v[STRANGER].address, True))
    assert reverts(chain, v[STRANGER], f.renounce_ownership()) == NOT_OWNER
    chain.transact(new, f.renounce_ownership())
    assert f.owner().call() == ZERO


# -- titles ---------------------------------------------------------------------------------


def test_mint_title_keys_it_by_vin(chain, v):
    f, vin, alice = v.f, VINS[1], v[ALICE].address
    expected = title_id(vin)
    assert chain.call(f.mintTitle(alice, vin), sender=v[REGISTRAR]) == expected
    assert not f.titleExists(expected).call()
    receipt = chain.transact(v[REGISTRAR], f.mintTitle(alice, vin))
    assert events(chain, receipt, v.registry, "TitleMinted") == [
        {"title": expected, "owner": alice, "registrar": v[REGISTRAR].address, "vin": vin}
    ]
    assert events(chain, receipt, v.registry, "Transfer") == [
        {"sender": ZERO, "receiver": alice, "token_id": expected}
    ]
    assert f.ownerOf(expected).call() == alice
    assert f.balanceOf(alice).call() == 1
    assert f.titleOf(vin).call() == expected
    assert f.vinOf(expected).call() == vin
    assert f.titleExists(expected).call()
    assert f.totalSupply().call() == 1
    assert f.tokenByIndex(0).call() == expected
    assert f.tokenOfOwnerByIndex(alice, 0).call() == expected
    assert f.tokenURI(expected).call() == f"https://titles.carpay.example/{expected}"
    assert f.lienOf(expected).call() == [ZERO, 0]
    assert f.serviceCount(expected).call() == 0


def test_an_owner_lists_all_their_titles(v):
    for vin in VINS:
        v.mint(vin, BOB)
    f = v.f
    assert f.balanceOf(v[BOB].address).call() == len(VINS)
    owned = {f.tokenOfOwnerByIndex(v[BOB].address, i).call() for i in range(len(VINS))}
    assert owned == {title_id(vin) for vin in VINS}
    assert [f.vinOf(title_id(vin)).call() for vin in VINS] == list(VINS)


@pytest.mark.parametrize("caller", [OWNER, SHOP, STRANGER, LENDER])
def test_only_registrars_mint(chain, v, caller):
    assert reverts(chain, v[caller], v.f.mintTitle(v[ALICE].address, VINS[0])) == NOT_REGISTRAR


def test_a_revoked_registrar_cannot_mint(chain, v):
    chain.transact(v[OWNER], v.f.setRegistrar(v[REGISTRAR].address, False))
    fn = v.f.mintTitle(v[ALICE].address, VINS[0])
    assert reverts(chain, v[REGISTRAR], fn) == NOT_REGISTRAR


def test_a_vin_is_titled_once(chain, v, title):
    fn = v.f.mintTitle(v[BOB].address, VINS[0])
    assert reverts(chain, v[REGISTRAR], fn) == "vehicle_registry: VIN already titled"


@pytest.mark.parametrize(
    "vin",
    [
        "",
        "1HGCM82633A00435",  # 16 characters
        "1hgcm82633a004352",  # lower case
        "1HGCM82633A00435I",
        "1HGCM82633A00435O",
        "1HGCM82633A00435Q",
        "1HGCM82633A0043 2",
        "1HGCM82633A0043-2",
        "@HGCM82633A004352",  # the characters next to the ranges of the alphabet
        "[HGCM82633A004352",
        "/HGCM82633A004352",
        ":HGCM82633A004352",
    ],
)
def test_mint_refuses_malformed_vins(chain, v, vin):
    fn = v.f.mintTitle(v[ALICE].address, vin)
    assert reverts(chain, v[REGISTRAR], fn) == "vehicle_registry: malformed VIN"


def test_mint_takes_every_character_of_the_vin_alphabet(v):
    alphabet = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
    for vin in (alphabet[:17], alphabet[16:]):
        assert v.f.vinOf(v.mint(vin)).call() == vin


def test_mint_refuses_zero_owner(chain, v):
    fn = v.f.mintTitle(ZERO, VINS[0])
    assert reverts(chain, v[REGISTRAR], fn) == "vehicle_registry: zero address"


def test_mint_to_a_contract_that_takes_titles(chain, v):
    receiver = chain.deploy(title_receiver(), True, sender=v[OWNER])
    title = v.mint(VINS[0], receiver)
    r = chain.contract(title_receiver(), receiver).functions
    assert v.f.ownerOf(title).call() == receiver
    assert r.last_operator().call() == v[REGISTRAR].address
    assert r.last_from().call() == ZERO
    assert r.last_token_id().call() == title


def test_mint_refuses_a_contract_that_refuses_titles(chain, v):
    receiver = chain.deploy(title_receiver(), False, sender=v[OWNER])
    fn = v.f.mintTitle(receiver, VINS[0])
    assert reverts(chain, v[REGISTRAR], fn) == (
        "erc721: transfer to non-IERC721Receiver implementer"
    )


def test_unknown_vins_and_titles_are_refused(chain, v, title):
    with pytest.raises(TransactionReverted) as info:
        chain.call(v.f.titleOf(VINS[1]))
    assert info.value.reason == "vehicle_registry: unknown VIN"
    with pytest.raises(TransactionReverted) as info:
        chain.call(v.f.vinOf(title + 1))
    assert info.value.reason == "vehicle_registry: unknown title"
    assert not v.f.titleExists(title + 1).call()


# -- transfers ------------------------------------------------------------------------------


def test_the_owner_transfers_a_title(chain, v, title):
    f, alice, bob = v.f, v[ALICE], v[BOB]
    receipt = chain.transact(alice, f.transferFrom(alice.address, bob.address, title))
    assert events(chain, receipt, v.registry, "Transfer") == [
        {"sender": alice.address, "receiver": bob.address, "token_id": title}
    ]
    assert f.ownerOf(title).call() == bob.address
    assert f.balanceOf(alice.address).call() == 0
    assert f.tokenOfOwnerByIndex(bob.address, 0).call() == title


def test_an_approved_account_transfers_and_the_approval_clears(chain, v, title):
    f, alice, bob, dealer = v.f, v[ALICE], v[BOB], v[STRANGER]
    receipt = chain.transact(alice, f.approve(dealer.address, title))
    assert events(chain, receipt, v.registry, "Approval") == [
        {"owner": alice.address, "approved": dealer.address, "token_id": title}
    ]
    assert f.getApproved(title).call() == dealer.address
    chain.transact(dealer, f.transferFrom(alice.address, bob.address, title))
    assert f.ownerOf(title).call() == bob.address
    assert f.getApproved(title).call() == ZERO


def test_an_operator_transfers(chain, v, title):
    f, alice, bob, dealer = v.f, v[ALICE], v[BOB], v[STRANGER]
    receipt = chain.transact(alice, f.setApprovalForAll(dealer.address, True))
    assert events(chain, receipt, v.registry, "ApprovalForAll") == [
        {"owner": alice.address, "operator": dealer.address, "approved": True}
    ]
    assert f.isApprovedForAll(alice.address, dealer.address).call()
    chain.transact(dealer, f.safeTransferFrom(alice.address, bob.address, title))
    assert f.ownerOf(title).call() == bob.address


def test_permit_lets_a_signed_spender_transfer(chain, v, title):
    f, alice, dealer = v.f, v[ALICE], v[STRANGER]
    deadline = latest_timestamp(chain) + 3600
    domain = {
        "name": "carpay vehicle registry",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": v.registry.address,
    }
    types = {
        "Permit": [
            {"name": "spender", "type": "address"},
            {"name": "tokenId", "type": "uint256"},
            {"name": "nonce", "type": "uint256"},
            {"name": "deadline", "type": "uint256"},
        ]
    }
    message = {"spender": dealer.address, "tokenId": title, "nonce": 0, "deadline": deadline}
    s = alice.sign_typed_data(domain, types, message)
    r, ss = s.r.to_bytes(32, "big"), s.s.to_bytes(32, "big")
    chain.transact(dealer, f.permit(dealer.address, title, deadline, s.v, r, ss))
    assert f.nonces(title).call() == 1
    assert f.getApproved(title).call() == dealer.address
    chain.transact(dealer, f.transferFrom(alice.address, dealer.address, title))
    assert f.ownerOf(title).call() == dealer.address


def test_safe_transfer_to_a_contract_passes_the_data(chain, v, title):
    f, alice = v.f, v[ALICE]
    receiver = chain.deploy(title_receiver(), True, sender=v[OWNER])
    chain.transact(alice, f.safeTransferFrom(alice.address, receiver, title, b"sale 42"))
    r = chain.contract(title_receiver(), receiver).functions
    assert f.ownerOf(title).call() == receiver
    assert r.last_operator().call() == alice.address
    assert r.last_from().call() == alice.address
    assert r.last_data().call() == b"sale 42"


def test_safe_transfer_refuses_a_contract_that_refuses_titles(chain, v, title):
    alice = v[ALICE]
    receiver = chain.deploy(title_receiver(), False, sender=v[OWNER])
    fn = v.f.safeTransferFrom(alice.address, receiver, title)
    assert reverts(chain, alice, fn) == "erc721: transfer to non-IERC721Receiver implementer"
    assert v.f.ownerOf(title).call() == alice.address


@pytest.mark.parametrize("safe", [False, True])
def test_transfer_refusals(chain, v, title, safe):
    f, alice, bob = v.f, v[ALICE], v[BOB]
    move = f.safeTransferFrom if safe else f.transferFrom
    assert reverts(chain, bob, move(alice.address, bob.address, title)) == NOT_APPROVED
    assert reverts(chain, alice, move(bob.address, bob.address, title)) == (
        "erc721: transfer from incorrect owner"
    )
    assert reverts(chain, alice, move(alice.address, ZERO, title)) == (
        "erc721: transfer to the zero address"
    )
    assert reverts(chain, alice, move(alice.address, bob.address, title + 1)) == (
        "erc721: invalid token ID"
    )


# -- liens ----------------------------------------------------------------------------------


def test_a_registrar_records_a_lien(chain, v, title):
    f, lender = v.f, v[LENDER].address
    receipt = chain.transact(v[REGISTRAR], f.recordLien(title, lender, 12_345))
    assert f.lienOf(title).call() == [lender, 12_345]
    assert events(chain, receipt, v.registry, "LienRecorded") == [
        {"title": title, "lender": lender, "registrar": v[REGISTRAR].address, "amount": 12_345}
    ]


@pytest.mark.parametrize("caller", [OWNER, ALICE, LENDER, SHOP, STRANGER])
def test_only_registrars_record_liens(chain, v, title, caller):
    fn = v.f.recordLien(title, v[LENDER].address, 1)
    assert reverts(chain, v[caller], fn) == NOT_REGISTRAR


def test_record_lien_refusals(chain, v, liened):
    f, reg = v.f, v[REGISTRAR]
    assert reverts(chain, reg, f.recordLien(liened, v[BOB].address, 1)) == (
        "vehicle_registry: lien already open"
    )
    assert reverts(chain, reg, f.recordLien(liened + 1, v[BOB].address, 1)) == (
        "vehicle_registry: unknown title"
    )
    other = v.mint(VINS[1])
    assert reverts(chain, reg, f.recordLien(other, ZERO, 1)) == "vehicle_registry: zero address"
    assert reverts(chain, reg, f.recordLien(other, v[BOB].address, 2**96)) == (
        "vehicle_registry: payoff too large"
    )
    chain.transact(reg, f.recordLien(other, v[BOB].address, 2**96 - 1))
    assert f.lienOf(other).call() == [v[BOB].address, 2**96 - 1]
    assert reverts(chain, v[BOB], f.setLienPayoff(other, 2**96)) == (
        "vehicle_registry: payoff too large"
    )


@pytest.mark.parametrize("how", ["owner", "approved", "operator", "safe", "safe with data"])
def test_an_open_lien_blocks_every_transfer(chain, v, liened, how):
    f, alice, bob, dealer = v.f, v[ALICE], v[BOB], v[STRANGER]
    sender = alice
    if how == "approved":
        chain.transact(alice, f.approve(dealer.address, liened))  # approving is allowed
        sender = dealer
    elif how == "operator":
        chain.transact(alice, f.setApprovalForAll(dealer.address, True))
        sender = dealer
    if how == "safe":
        fn = f.safeTransferFrom(alice.address, bob.address, liened)
    elif how == "safe with data":
        fn = f.safeTransferFrom(alice.address, bob.address, liened, b"x")
    else:
        fn = f.transferFrom(alice.address, bob.address, liened)
    assert reverts(chain, sender, fn) == LIEN_OPEN
    # Sent anyway (gas given, no estimate): mined and reverted, the title did not move.
    with pytest.raises(TransactionReverted) as info:
        chain.transact(sender, fn, gas=200_000)
    assert info.value.tx_hash is not None
    assert f.ownerOf(liened).call() == alice.address


@pytest.mark.parametrize("caller", [LENDER, REGISTRAR])
def test_the_lienholder_or_a_registrar_changes_the_payoff(chain, v, liened, caller):
    f, lender = v.f, v[LENDER].address
    receipt = chain.transact(v[caller], f.setLienPayoff(liened, 7_500))
    assert f.lienOf(liened).call() == [lender, 7_500]
    assert events(chain, receipt, v.registry, "LienPayoffChanged") == [
        {"title": liened, "lender": lender, "previous": 20_000 * 10**6, "amount": 7_500}
    ]


@pytest.mark.parametrize("caller", [LENDER, REGISTRAR])
def test_the_lienholder_or_a_registrar_releases_the_lien(chain, v, liened, caller):
    f, alice, bob = v.f, v[ALICE], v[BOB]
    receipt = chain.transact(v[caller], f.releaseLien(liened))
    assert f.lienOf(liened).call() == [ZERO, 0]
    assert events(chain, receipt, v.registry, "LienReleased") == [
        {"title": liened, "lender": v[LENDER].address, "by": v[caller].address}
    ]
    chain.transact(alice, f.transferFrom(alice.address, bob.address, liened))
    assert f.ownerOf(liened).call() == bob.address
    # A new loan: a new lien on the same title.
    chain.transact(v[REGISTRAR], f.recordLien(liened, v[STRANGER].address, 5))
    assert f.lienOf(liened).call() == [v[STRANGER].address, 5]


@pytest.mark.parametrize("caller", [ALICE, OWNER, SHOP, STRANGER])
def test_others_cannot_touch_a_lien(chain, v, liened, caller):
    f = v.f
    assert reverts(chain, v[caller], f.releaseLien(liened)) == NOT_LIENHOLDER
    assert reverts(chain, v[caller], f.setLienPayoff(liened, 0)) == NOT_LIENHOLDER
    assert f.lienOf(liened).call() == [v[LENDER].address, 20_000 * 10**6]


def test_a_title_without_a_lien_has_nothing_to_release(chain, v, title):
    f = v.f
    for fn in (f.releaseLien(title), f.setLienPayoff(title, 1), f.releaseLien(title + 1)):
        assert reverts(chain, v[REGISTRAR], fn) == "vehicle_registry: no open lien"


# -- service history ------------------------------------------------------------------------


def test_a_repair_shop_anchors_a_service_record(chain, v, title):
    f, shop = v.f, v[SHOP]
    assert chain.call(f.recordService(title, DOC, 42_000), sender=shop) == 0
    receipt = chain.transact(shop, f.recordService(title, DOC, 42_000))
    stamp = chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert events(chain, receipt, v.registry, "ServiceRecorded") == [
        {
            "title": title,
            "shop": shop.address,
            "document_hash": DOC,
            "index": 0,
            "odometer": 42_000,
            "timestamp": stamp,
        }
    ]
    assert f.serviceCount(title).call() == 1
    assert f.odometerOf(title).call() == 42_000
    assert f.serviceRecord(title, 0).call() == [DOC, 42_000, stamp, shop.address]


def test_the_history_keeps_every_record_in_order(chain, v, title):
    f, shop = v.f, v[SHOP]
    readings = [10, 10, 15_000, 15_001, 2**48 - 1]
    for i, km in enumerate(readings):
        chain.transact(shop, f.recordService(title, keccak(i.to_bytes(32, "big")), km))
    assert f.serviceCount(title).call() == len(readings)
    assert f.odometerOf(title).call() == 2**48 - 1
    for i, km in enumerate(readings):
        record = f.serviceRecord(title, i).call()
        assert record[0] == keccak(i.to_bytes(32, "big"))
        assert record[1] == km
        assert record[3] == shop.address


def test_the_odometer_never_goes_back(chain, v, title):
    f, shop = v.f, v[SHOP]
    chain.transact(shop, f.recordService(title, DOC, 80_000))
    assert reverts(chain, shop, f.recordService(title, DOC, 79_999)) == (
        "vehicle_registry: odometer rollback"
    )
    assert f.odometerOf(title).call() == 80_000
    assert f.serviceCount(title).call() == 1


def test_record_service_refusals(chain, v, title):
    f, shop = v.f, v[SHOP]
    assert reverts(chain, shop, f.recordService(title, b"\0" * 32, 1)) == (
        "vehicle_registry: zero document hash"
    )
    assert reverts(chain, shop, f.recordService(title, DOC, 2**48)) == (
        "vehicle_registry: odometer out of range"
    )
    assert reverts(chain, shop, f.recordService(title + 1, DOC, 1)) == (
        "vehicle_registry: unknown title"
    )
    with pytest.raises(TransactionReverted) as info:
        chain.call(f.serviceRecord(title, 0))
    assert info.value.reason == "vehicle_registry: no such service record"


@pytest.mark.parametrize("caller", [OWNER, REGISTRAR, ALICE, LENDER, STRANGER])
def test_only_repair_shops_record_service(chain, v, title, caller):
    assert reverts(chain, v[caller], v.f.recordService(title, DOC, 1)) == NOT_SHOP


def test_a_revoked_repair_shop_cannot_record(chain, v, title):
    chain.transact(v[REGISTRAR], v.f.setRepairShop(v[SHOP].address, False))
    assert reverts(chain, v[SHOP], v.f.recordService(title, DOC, 1)) == NOT_SHOP


def test_service_records_stay_with_the_vehicle_and_a_lien_does_not_stop_them(chain, v, liened):
    f, shop = v.f, v[SHOP]
    chain.transact(shop, f.recordService(liened, DOC, 1_000))
    chain.transact(v[LENDER], f.releaseLien(liened))
    chain.transact(v[ALICE], f.transferFrom(v[ALICE].address, v[BOB].address, liened))
    assert f.serviceCount(liened).call() == 1
    assert reverts(chain, shop, f.recordService(liened, DOC, 999)) == (
        "vehicle_registry: odometer rollback"
    )


# -- gas ------------------------------------------------------------------------------------


def test_gas_per_operation(chain, v, record_property):
    """What the registry's operations cost (recorded as test properties; bounds catch
    regressions)."""
    f = v.f
    used = {}
    receipt = chain.transact(v[REGISTRAR], f.mintTitle(v[ALICE].address, VINS[0]))
    used["mint title"] = receipt["gasUsed"]
    title = title_id(VINS[0])
    receipt = chain.transact(v[REGISTRAR], f.recordLien(title, v[LENDER].address, 10**9))
    used["record lien"] = receipt["gasUsed"]
    receipt = chain.transact(v[LENDER], f.releaseLien(title))
    used["release lien"] = receipt["gasUsed"]
    receipt = chain.transact(v[SHOP], f.recordService(title, DOC, 1_000))
    used["first service record"] = receipt["gasUsed"]
    receipt = chain.transact(v[SHOP], f.recordService(title, DOC, 2_000))
    used["next service record"] = receipt["gasUsed"]
    receipt = chain.transact(v[ALICE], f.transferFrom(v[ALICE].address, v[BOB].address, title))
    used["transfer title"] = receipt["gasUsed"]
    for name, gas in used.items():
        record_property(f"gas {name}", gas)
    print(used)
    assert used["mint title"] < 185_000
    assert used["record lien"] < 55_000
    assert used["release lien"] < 30_000
    assert used["first service record"] < 100_000
    assert used["next service record"] < 85_000
    assert used["transfer title"] < 90_000
