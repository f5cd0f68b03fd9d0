"""Unit tests of currency_token.vy on both nodes: every function, every refusal, every event."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak

from carpay.chain import Chain, compile_contract
from carpay.errors import TransactionReverted
from carpay.testing import Anvil
from carpay.testing.signing import (
    Domain,
    Signature,
    sign_cancel_authorization,
    sign_permit,
    sign_receive_authorization,
    sign_transfer_authorization,
    signed_payment,
)

ZERO = "0x0000000000000000000000000000000000000000"
HOUR = 3600
SETTLED, BAD_SIGNATURE, EXPIRED, NONCE_USED, INSUFFICIENT_FUNDS, BLOCKLISTED = range(6)


@contextmanager
def reverts(reason: str) -> Iterator[None]:
    """The block must fail with exactly this revert reason."""
    with pytest.raises(TransactionReverted) as info:
        yield
    assert info.value.reason == reason


def now(chain: Chain) -> int:
    return chain.w3.eth.get_block("latest")["timestamp"]


@pytest.fixture
def token(deploy_token):
    return deploy_token()


@pytest.fixture
def owner(accounts):
    return accounts[0]


@pytest.fixture
def alice(accounts):
    return accounts[1]


@pytest.fixture
def bob(accounts):
    return accounts[2]


@pytest.fixture
def carol(accounts):
    return accounts[3]


@pytest.fixture
def relayer(accounts):
    return accounts[4]


@pytest.fixture
def stranger(accounts):
    return accounts[9]


@pytest.fixture
def wallet(chain, erc1271_wallet, alice):
    """A contract account that alice's key signs for."""
    return chain.deploy(erc1271_wallet, alice.address, sender=alice)


# -- deployment, metadata, EIP-712 domain ---------------------------------------------------


def test_metadata_and_initial_roles(token, owner):
    assert token.call("name") == "Euro"
    assert token.call("symbol") == "EURC"
    assert token.call("currency") == "EUR"
    assert token.call("decimals") == 6
    assert token.call("totalSupply") == 0
    assert token.call("owner") == owner.address
    assert token.call("pending_owner") == ZERO
    for role in ("masterMinter", "pauser", "blocklister", "rescuer"):
        assert token.call(role) == owner.address
    assert token.call("paused") is False
    assert token.call("isMinter", owner.address) is False
    assert token.call("isSettler", owner.address) is False
    assert token.call("isBlocklisted", token.address) is True


def test_constructor_events(chain, token, owner):
    receipt = chain.w3.eth.get_transaction_receipt(chain.deployment("currency_token").tx_hash)
    assert token.events(receipt, "OwnershipTransferred") == [
        {"previous_owner": ZERO, "new_owner": owner.address}
    ]
    assert token.events(receipt, "MasterMinterChanged") == [{"newMasterMinter": owner.address}]
    assert token.events(receipt, "PauserChanged") == [{"newAddress": owner.address}]
    assert token.events(receipt, "BlocklisterChanged") == [{"newBlocklister": owner.address}]
    assert token.events(receipt, "RescuerChanged") == [{"newRescuer": owner.address}]
    assert token.events(receipt, "Blocklisted") == [{"account": token.address}]


def test_eip712_domain(chain, deploy_token):
    token = deploy_token(name="Swiss Franc", symbol="CHFC", currency="CHF", version="2")
    fields, name, version, chain_id, verifying_contract, salt, extensions = token.call(
        "eip712Domain"
    )
    assert fields == b"\x0f"
    assert (name, version) == ("Swiss Franc", "2")
    assert chain_id == chain.chain_id
    assert verifying_contract == token.address
    assert salt == b"\0" * 32 and extensions == []
    assert token.call("DOMAIN_SEPARATOR") == domain_separator(token.domain())


def domain_separator(domain: Domain) -> bytes:
    type_hash = keccak(
        b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                type_hash,
                keccak(text=domain.name),
                keccak(text=domain.version),
                domain.chain_id,
                domain.verifying_contract,
            ],
        )
    )


def test_typehashes(token):
    assert token.call("PERMIT_TYPEHASH") == keccak(
        text="Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
    )
    fields = "address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,"
    assert token.call("TRANSFER_WITH_AUTHORIZATION_TYPEHASH") == keccak(
        text=f"TransferWithAuthorization({fields}bytes32 nonce)"
    )
    assert token.call("RECEIVE_WITH_AUTHORIZATION_TYPEHASH") == keccak(
        text=f"ReceiveWithAuthorization({fields}bytes32 nonce)"
    )
    assert token.call("CANCEL_AUTHORIZATION_TYPEHASH") == keccak(
        text="CancelAuthorization(address authorizer,bytes32 nonce)"
    )
    assert token.call("PAYMENT_AUTHORIZATION_TYPEHASH") == keccak(
        text="PaymentAuthorization(address from,address to,uint256 value,uint256 nonce,"
        "uint256 validBefore)"
    )


@pytest.mark.anvil
def test_domain_separator_follows_a_chain_id_change(tmp_path, accounts, currency_token, alice):
    """A fork that changes the chain id must not accept signatures made for the old chain."""
    with Anvil(chain_id=31337) as node:
        chain = Chain(node.url, state_dir=tmp_path / "state")
        address = chain.deploy(currency_token, "Euro", "EURC", "EUR", "1", sender=accounts[0])
        token = chain.contract(currency_token, address)
        before = chain.call(token.functions.DOMAIN_SEPARATOR())
        chain._rpc("anvil_setChainId", [4242])
        after = chain.call(token.functions.DOMAIN_SEPARATOR())
        domain = Domain.of(token)
        assert domain.chain_id == 4242
        assert after != before
        assert after == domain_separator(domain)


# -- ERC-20 ---------------------------------------------------------------------------------


def test_transfer(token, alice, bob):
    token.mint(alice, 1_000)
    assert token.call("transfer", bob.address, 400, sender=alice) is True
    receipt = token.transact(alice, "transfer", bob.address, 400)
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": bob.address, "value": 400}
    ]
    assert (token.balance(alice), token.balance(bob)) == (600, 400)
    token.transact(alice, "transfer", alice.address, 600)  # to oneself: nothing changes
    assert token.balance(alice) == 600
    assert token.call("totalSupply") == 1_000


def test_transfer_refusals(token, owner, alice, bob):
    token.mint(alice, 100)
    with reverts("currency_token: transfer amount exceeds balance"):
        token.transact(alice, "transfer", bob.address, 101)
    with reverts("currency_token: transfer to the zero address"):
        token.transact(alice, "transfer", ZERO, 1)
    with reverts("currency_token: recipient blocklisted"):
        token.transact(alice, "transfer", token.address, 1)
    token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: recipient blocklisted"):
        token.transact(alice, "transfer", bob.address, 1)
    token.transact(owner, "blocklist", alice.address)
    with reverts("currency_token: sender blocklisted"):
        token.transact(alice, "transfer", owner.address, 1)
    token.transact(owner, "unBlocklist", alice.address)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(alice, "transfer", owner.address, 1)
    token.transact(owner, "unpause")
    token.transact(alice, "transfer", owner.address, 1)


def test_approve_and_transfer_from(token, alice, bob, carol):
    token.mint(alice, 1_000)
    assert token.call("approve", bob.address, 300, sender=alice) is True
    receipt = token.transact(alice, "approve", bob.address, 300)
    assert token.events(receipt, "Approval") == [
        {"owner": alice.address, "spender": bob.address, "value": 300}
    ]
    assert token.call("allowance", alice.address, bob.address) == 300
    assert token.call("transferFrom", alice.address, carol.address, 100, sender=bob) is True
    receipt = token.transact(bob, "transferFrom", alice.address, carol.address, 100)
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": carol.address, "value": 100}
    ]
    assert token.events(receipt, "Approval") == []
    assert token.call("allowance", alice.address, bob.address) == 200
    assert (token.balance(alice), token.balance(carol)) == (900, 100)
    with reverts("currency_token: insufficient allowance"):
        token.transact(bob, "transferFrom", alice.address, carol.address, 201)


def test_infinite_allowance_is_never_spent(token, alice, bob):
    token.mint(alice, 1_000)
    unlimited = 2**256 - 1
    token.transact(alice, "approve", bob.address, unlimited)
    token.transact(bob, "transferFrom", alice.address, bob.address, 1_000)
    assert token.call("allowance", alice.address, bob.address) == unlimited


def test_transfer_from_refusals(token, owner, alice, bob, carol):
    token.mint(alice, 1_000)
    token.transact(alice, "approve", bob.address, 2_000)
    with reverts("currency_token: transfer amount exceeds balance"):
        token.transact(bob, "transferFrom", alice.address, carol.address, 1_001)
    token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: account blocklisted"):
        token.transact(bob, "transferFrom", alice.address, carol.address, 1)
    token.transact(owner, "unBlocklist", bob.address)
    token.transact(owner, "blocklist", alice.address)
    with reverts("currency_token: sender blocklisted"):
        token.transact(bob, "transferFrom", alice.address, carol.address, 1)
    token.transact(owner, "unBlocklist", alice.address)
    token.transact(owner, "blocklist", carol.address)
    with reverts("currency_token: recipient blocklisted"):
        token.transact(bob, "transferFrom", alice.address, carol.address, 1)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(bob, "transferFrom", alice.address, bob.address, 1)


def test_approve_refusals(token, owner, alice, bob):
    token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: account blocklisted"):
        token.transact(alice, "approve", bob.address, 1)
    with reverts("currency_token: account blocklisted"):
        token.transact(bob, "approve", alice.address, 1)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(alice, "approve", owner.address, 1)


# -- minters, mint and burn -----------------------------------------------------------------


def test_configure_and_remove_minter(token, owner, alice, stranger):
    receipt = token.transact(owner, "configureMinter", alice.address, 500)
    assert token.events(receipt, "MinterConfigured") == [
        {"minter": alice.address, "minterAllowedAmount": 500}
    ]
    assert token.call("isMinter", alice.address) is True
    assert token.call("minterAllowance", alice.address) == 500
    with reverts("currency_token: caller is not the master minter"):
        token.transact(stranger, "configureMinter", stranger.address, 1)
    with reverts("currency_token: caller is not the master minter"):
        token.transact(stranger, "removeMinter", alice.address)
    receipt = token.transact(owner, "removeMinter", alice.address)
    assert token.events(receipt, "MinterRemoved") == [{"oldMinter": alice.address}]
    assert token.call("isMinter", alice.address) is False
    assert token.call("minterAllowance", alice.address) == 0
    with reverts("currency_token: caller is not a minter"):
        token.transact(alice, "mint", alice.address, 1)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(owner, "configureMinter", alice.address, 1)


def test_mint_spends_the_minter_allowance(token, owner, alice, bob):
    token.transact(owner, "configureMinter", alice.address, 500)
    assert token.call("mint", bob.address, 300, sender=alice) is True
    receipt = token.transact(alice, "mint", bob.address, 300)
    assert token.events(receipt, "Mint") == [
        {"minter": alice.address, "to": bob.address, "amount": 300}
    ]
    assert token.events(receipt, "Transfer") == [
        {"sender": ZERO, "receiver": bob.address, "value": 300}
    ]
    assert token.call("minterAllowance", alice.address) == 200
    assert token.call("totalSupply") == 300
    assert token.balance(bob) == 300
    # A compromised minter can never mint more than what is left of its allowance.
    with reverts("currency_token: mint amount exceeds minter allowance"):
        token.transact(alice, "mint", alice.address, 201)
    token.transact(alice, "mint", alice.address, 200)
    with reverts("currency_token: mint amount exceeds minter allowance"):
        token.transact(alice, "mint", alice.address, 1)


def test_mint_refusals(token, owner, alice, bob, stranger):
    token.transact(owner, "configureMinter", alice.address, 2**256 - 1)
    with reverts("currency_token: caller is not a minter"):
        token.transact(stranger, "mint", stranger.address, 1)
    with reverts("currency_token: mint amount is zero"):
        token.transact(alice, "mint", bob.address, 0)
    with reverts("currency_token: mint to the zero address"):
        token.transact(alice, "mint", ZERO, 1)
    with reverts("currency_token: recipient blocklisted"):
        token.transact(alice, "mint", token.address, 1)
    with reverts("currency_token: supply cap exceeded"):
        token.transact(alice, "mint", bob.address, 2**255)
    token.transact(alice, "mint", bob.address, 2**255 - 1)
    with reverts("currency_token: supply cap exceeded"):
        token.transact(alice, "mint", bob.address, 1)
    assert token.balance(bob) == 2**255 - 1
    assert token.call("isBlocklisted", bob.address) is False
    token.transact(owner, "blocklist", alice.address)
    with reverts("currency_token: account blocklisted"):
        token.transact(alice, "mint", owner.address, 1)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(alice, "mint", owner.address, 1)


def test_burn(token, owner, alice, bob):
    token.transact(owner, "configureMinter", alice.address, 1_000)
    token.transact(alice, "mint", alice.address, 1_000)
    receipt = token.transact(alice, "burn", 400)
    assert token.events(receipt, "Burn") == [{"burner": alice.address, "amount": 400}]
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": ZERO, "value": 400}
    ]
    assert token.balance(alice) == 600
    assert token.call("totalSupply") == 600
    with reverts("currency_token: burn amount exceeds balance"):
        token.transact(alice, "burn", 601)
    with reverts("currency_token: burn amount is zero"):
        token.transact(alice, "burn", 0)
    token.mint(bob, 10)
    with reverts("currency_token: caller is not a minter"):
        token.transact(bob, "burn", 1)
    token.transact(owner, "blocklist", alice.address)
    with reverts("currency_token: account blocklisted"):
        token.transact(alice, "burn", 1)
    token.transact(owner, "unBlocklist", alice.address)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(alice, "burn", 1)


# -- pause, blocklist, rescue ---------------------------------------------------------------


def test_pause_and_unpause(token, owner, stranger):
    with reverts("currency_token: caller is not the pauser"):
        token.transact(stranger, "pause")
    with reverts("currency_token: not paused"):
        token.transact(owner, "unpause")
    receipt = token.transact(owner, "pause")
    assert token.events(receipt, "Paused") == [{"account": owner.address}]
    assert token.call("paused") is True
    with reverts("currency_token: paused"):
        token.transact(owner, "pause")
    with reverts("currency_token: caller is not the pauser"):
        token.transact(stranger, "unpause")
    receipt = token.transact(owner, "unpause")
    assert token.events(receipt, "Unpaused") == [{"account": owner.address}]
    assert token.call("paused") is False


def test_blocklist_keeps_the_balance(token, owner, alice, stranger):
    token.mint(alice, 70)
    with reverts("currency_token: caller is not the blocklister"):
        token.transact(stranger, "blocklist", alice.address)
    receipt = token.transact(owner, "blocklist", alice.address)
    assert token.events(receipt, "Blocklisted") == [{"account": alice.address}]
    assert token.call("isBlocklisted", alice.address) is True
    assert token.balance(alice) == 70
    with reverts("currency_token: caller is not the blocklister"):
        token.transact(stranger, "unBlocklist", alice.address)
    receipt = token.transact(owner, "unBlocklist", alice.address)
    assert token.events(receipt, "UnBlocklisted") == [{"account": alice.address}]
    assert token.call("isBlocklisted", alice.address) is False
    assert token.balance(alice) == 70
    assert token.call("totalSupply") == 70


def test_rescue_erc20(chain, token, owner, alice, stranger):
    plain = compile_contract(Path(__file__).parent / "plain_erc20.vy")
    other = chain.contract(plain, chain.deploy(plain, sender=owner))
    chain.transact(owner, other.functions.transfer(token.address, 1_000))
    with reverts("currency_token: caller is not the rescuer"):
        token.transact(stranger, "rescueERC20", other.address, stranger.address, 1)
    token.transact(owner, "updateRescuer", alice.address)
    with reverts("currency_token: caller is not the rescuer"):
        token.transact(owner, "rescueERC20", other.address, owner.address, 1)
    token.transact(alice, "rescueERC20", other.address, alice.address, 600)
    assert chain.call(other.functions.balanceOf(alice.address)) == 600
    assert chain.call(other.functions.balanceOf(token.address)) == 400
    with pytest.raises(TransactionReverted):
        token.transact(alice, "rescueERC20", other.address, alice.address, 401)


# -- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("update", "getter", "event", "field"),
    [
        ("updateMasterMinter", "masterMinter", "MasterMinterChanged", "newMasterMinter"),
        ("updatePauser", "pauser", "PauserChanged", "newAddress"),
        ("updateBlocklister", "blocklister", "BlocklisterChanged", "newBlocklister"),
        ("updateRescuer", "rescuer", "RescuerChanged", "newRescuer"),
    ],
)
def test_role_updates(token, owner, alice, stranger, update, getter, event, field):
    with reverts("currency_token: caller is not the owner"):
        token.transact(stranger, update, stranger.address)
    with reverts("currency_token: new role is the zero address"):
        token.transact(owner, update, ZERO)
    receipt = token.transact(owner, update, alice.address)
    assert token.events(receipt, event) == [{field: alice.address}]
    assert token.call(getter) == alice.address


def test_new_roles_replace_old_ones(token, owner, alice, bob):
    token.transact(owner, "updatePauser", alice.address)
    token.transact(owner, "updateBlocklister", alice.address)
    token.transact(owner, "updateMasterMinter", alice.address)
    with reverts("currency_token: caller is not the pauser"):
        token.transact(owner, "pause")
    with reverts("currency_token: caller is not the blocklister"):
        token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: caller is not the master minter"):
        token.transact(owner, "configureMinter", owner.address, 1)
    token.transact(alice, "blocklist", bob.address)
    token.transact(alice, "configureMinter", bob.address, 1)
    token.transact(alice, "pause")


def test_ownership_transfer_in_two_steps(token, owner, alice, stranger):
    with reverts("currency_token: caller is not the owner"):
        token.transact(stranger, "transfer_ownership", stranger.address)
    receipt = token.transact(owner, "transfer_ownership", alice.address)
    assert token.events(receipt, "OwnershipTransferStarted") == [
        {"previous_owner": owner.address, "new_owner": alice.address}
    ]
    assert token.call("pending_owner") == alice.address
    assert token.call("owner") == owner.address
    with reverts("currency_token: caller is not the pending owner"):
        token.transact(stranger, "accept_ownership")
    receipt = token.transact(alice, "accept_ownership")
    assert token.events(receipt, "OwnershipTransferred") == [
        {"previous_owner": owner.address, "new_owner": alice.address}
    ]
    assert (token.call("owner"), token.call("pending_owner")) == (alice.address, ZERO)
    with reverts("currency_token: caller is not the owner"):
        token.transact(owner, "updatePauser", owner.address)
    token.transact(alice, "updatePauser", alice.address)


def test_configure_settler(token, owner, alice, stranger):
    with reverts("currency_token: caller is not the owner"):
        token.transact(stranger, "configureSettler", stranger.address, True)
    receipt = token.transact(owner, "configureSettler", alice.address, True)
    assert token.events(receipt, "SettlerConfigured") == [
        {"settler": alice.address, "enabled": True}
    ]
    assert token.call("isSettler", alice.address) is True
    receipt = token.transact(owner, "configureSettler", alice.address, False)
    assert token.events(receipt, "SettlerConfigured") == [
        {"settler": alice.address, "enabled": False}
    ]
    assert token.call("isSettler", alice.address) is False


# -- EIP-2612 permit ------------------------------------------------------------------------


def test_permit(chain, token, alice, bob, relayer):
    token.mint(alice, 500)
    deadline = now(chain) + HOUR
    sig = sign_permit(
        alice, token.domain(), spender=bob.address, value=300, nonce=0, deadline=deadline
    )
    receipt = token.transact(relayer, "permit", alice.address, bob.address, 300, deadline, *sig)
    assert token.events(receipt, "Approval") == [
        {"owner": alice.address, "spender": bob.address, "value": 300}
    ]
    assert token.call("allowance", alice.address, bob.address) == 300
    assert token.call("nonces", alice.address) == 1
    token.transact(bob, "transferFrom", alice.address, bob.address, 300)
    assert token.balance(bob) == 300
    # The same signature again: the nonce has moved on, so it no longer matches.
    with reverts("currency_token: invalid signature"):
        token.transact(relayer, "permit", alice.address, bob.address, 300, deadline, *sig)


def test_permit_refusals(chain, token, owner, alice, bob, relayer):
    domain = token.domain()
    deadline = now(chain) + HOUR

    def permit(signer=alice, value=300, deadline=deadline, sig=None):
        sig = sig or sign_permit(
            signer,
            domain,
            owner=alice.address,
            spender=bob.address,
            value=value,
            nonce=0,
            deadline=deadline,
        )
        token.transact(relayer, "permit", alice.address, bob.address, 300, deadline, *sig)

    with reverts("currency_token: permit expired"):
        permit(deadline=now(chain) - 1)
    with reverts("currency_token: invalid signature"):
        permit(signer=bob)
    with reverts("currency_token: invalid signature"):
        permit(value=301)
    good = sign_permit(alice, domain, spender=bob.address, value=300, nonce=0, deadline=deadline)
    with reverts("currency_token: invalid signature"):
        permit(sig=good.malleated())
    token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: account blocklisted"):
        permit(sig=good)
    token.transact(owner, "unBlocklist", bob.address)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        permit(sig=good)
    token.transact(owner, "unpause")
    permit(sig=good)
    assert token.call("allowance", alice.address, bob.address) == 300


def test_permit_of_a_contract_account(chain, token, wallet, alice, bob, relayer):
    deadline = now(chain) + HOUR
    domain = token.domain()
    sig = sign_permit(
        bob, domain, owner=wallet, spender=bob.address, value=5, nonce=0, deadline=deadline
    )
    with reverts("currency_token: invalid signature"):
        token.transact(relayer, "permit", wallet, bob.address, 5, deadline, *sig)
    sig = sign_permit(
        alice, domain, owner=wallet, spender=bob.address, value=5, nonce=0, deadline=deadline
    )
    token.transact(relayer, "permit", wallet, bob.address, 5, deadline, *sig)
    assert token.call("allowance", wallet, bob.address) == 5


# -- EIP-3009 -------------------------------------------------------------------------------


def authorize(chain, token, signer, to, value, *, after=None, before=None, nonce=None, **kw):
    """Arguments of ``transferWithAuthorization`` signed by ``signer``."""
    after = 0 if after is None else after
    before = now(chain) + HOUR if before is None else before
    nonce = nonce or os.urandom(32)
    sign = kw.pop("sign", sign_transfer_authorization)
    frm = kw.pop("from_", signer.address)
    sig = sign(
        signer,
        token.domain(),
        to=to,
        value=value,
        valid_after=after,
        valid_before=before,
        nonce=nonce,
        from_=frm,
    )
    return (frm, to, value, after, before, nonce, *sig)


def test_transfer_with_authorization(chain, token, alice, bob, relayer):
    token.mint(alice, 1_000)
    args = authorize(chain, token, alice, bob.address, 250)
    nonce = args[5]
    assert token.call("authorizationState", alice.address, nonce) is False
    receipt = token.transact(relayer, "transferWithAuthorization", *args)
    assert token.events(receipt, "AuthorizationUsed") == [
        {"authorizer": alice.address, "nonce": nonce}
    ]
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": bob.address, "value": 250}
    ]
    assert (token.balance(alice), token.balance(bob)) == (750, 250)
    assert token.call("authorizationState", alice.address, nonce) is True
    with reverts("currency_token: authorization used"):
        token.transact(relayer, "transferWithAuthorization", *args)


def test_transfer_with_authorization_refusals(chain, token, owner, alice, bob, relayer):
    token.mint(alice, 1_000)
    t = now(chain)

    def send(args):
        token.transact(relayer, "transferWithAuthorization", *args)

    with reverts("currency_token: authorization not yet valid"):
        send(authorize(chain, token, alice, bob.address, 1, after=t + HOUR))
    with reverts("currency_token: authorization expired"):
        send(authorize(chain, token, alice, bob.address, 1, before=t))
    with reverts("currency_token: invalid signature"):
        send(authorize(chain, token, bob, bob.address, 1, from_=alice.address))
    frm, to, _, after, before, nonce, *sig = authorize(chain, token, alice, bob.address, 1)
    with reverts("currency_token: invalid signature"):  # tampered amount
        send((frm, to, 2, after, before, nonce, *sig))
    with reverts("currency_token: invalid signature"):
        send((frm, to, 1, after, before, nonce, *Signature(*sig).malleated()))
    with reverts("currency_token: transfer amount exceeds balance"):
        send(authorize(chain, token, alice, bob.address, 1_001))
    with reverts("currency_token: invalid signature"):  # a receive authorization is not a transfer
        send(authorize(chain, token, alice, bob.address, 1, sign=sign_receive_authorization))
    token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: recipient blocklisted"):
        send((frm, to, 1, after, before, nonce, *sig))
    token.transact(owner, "blocklist", alice.address)
    with reverts("currency_token: sender blocklisted"):
        send(authorize(chain, token, alice, owner.address, 1))
    token.transact(owner, "unBlocklist", alice.address)
    token.transact(owner, "unBlocklist", bob.address)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        send((frm, to, 1, after, before, nonce, *sig))
    token.transact(owner, "unpause")
    send((frm, to, 1, after, before, nonce, *sig))
    assert token.balance(bob) == 1


def test_receive_with_authorization(chain, token, alice, bob, relayer):
    token.mint(alice, 1_000)
    args = authorize(chain, token, alice, bob.address, 400, sign=sign_receive_authorization)
    with reverts("currency_token: caller is not the payee"):
        token.transact(relayer, "receiveWithAuthorization", *args)
    with reverts("currency_token: invalid signature"):  # a transfer authorization is not a receive
        token.transact(
            bob, "receiveWithAuthorization", *authorize(chain, token, alice, bob.address, 1)
        )
    receipt = token.transact(bob, "receiveWithAuthorization", *args)
    assert token.events(receipt, "AuthorizationUsed") == [
        {"authorizer": alice.address, "nonce": args[5]}
    ]
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": bob.address, "value": 400}
    ]
    assert token.balance(bob) == 400
    with reverts("currency_token: authorization used"):
        token.transact(bob, "receiveWithAuthorization", *args)


def test_receive_with_authorization_refusals(chain, token, owner, alice, bob):
    token.mint(alice, 1_000)
    t = now(chain)

    def receive(**kw):
        args = authorize(chain, token, alice, bob.address, 1, sign=sign_receive_authorization, **kw)
        token.transact(bob, "receiveWithAuthorization", *args)

    with reverts("currency_token: authorization not yet valid"):
        receive(after=t + HOUR)
    with reverts("currency_token: authorization expired"):
        receive(before=t)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        receive()


def test_cancel_authorization(chain, token, alice, bob, relayer):
    token.mint(alice, 1_000)
    args = authorize(chain, token, alice, bob.address, 1)
    nonce = args[5]
    domain = token.domain()
    with reverts("currency_token: invalid signature"):
        sig = sign_cancel_authorization(bob, domain, nonce=nonce, authorizer=alice.address)
        token.transact(relayer, "cancelAuthorization", alice.address, nonce, *sig)
    sig = sign_cancel_authorization(alice, domain, nonce=nonce)
    with reverts("currency_token: invalid signature"):
        token.transact(relayer, "cancelAuthorization", alice.address, nonce, *sig.malleated())
    receipt = token.transact(relayer, "cancelAuthorization", alice.address, nonce, *sig)
    assert token.events(receipt, "AuthorizationCanceled") == [
        {"authorizer": alice.address, "nonce": nonce}
    ]
    assert token.call("authorizationState", alice.address, nonce) is True
    with reverts("currency_token: authorization used"):
        token.transact(relayer, "transferWithAuthorization", *args)
    with reverts("currency_token: authorization used"):
        token.transact(relayer, "cancelAuthorization", alice.address, nonce, *sig)
    assert token.balance(bob) == 0


def test_cancel_authorization_refused_while_paused(token, owner, alice, relayer):
    nonce = os.urandom(32)
    sig = sign_cancel_authorization(alice, token.domain(), nonce=nonce)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(relayer, "cancelAuthorization", alice.address, nonce, *sig)


def test_contract_account_pays_with_authorization(chain, token, wallet, alice, bob, relayer):
    """A vehicle wallet pays like any payer: its owner's key signs, ERC-1271 checks."""
    token.mint(wallet, 100)
    forged = authorize(chain, token, bob, bob.address, 60, from_=wallet)
    with reverts("currency_token: invalid signature"):
        token.transact(relayer, "transferWithAuthorization", *forged)
    token.transact(
        relayer,
        "transferWithAuthorization",
        *authorize(chain, token, alice, bob.address, 60, from_=wallet),
    )
    assert (token.balance(wallet), token.balance(bob)) == (40, 60)
    nonce = os.urandom(32)
    sig = sign_cancel_authorization(alice, token.domain(), nonce=nonce, authorizer=wallet)
    token.transact(relayer, "cancelAuthorization", wallet, nonce, *sig)
    assert token.call("authorizationState", wallet, nonce) is True


# -- settlement -----------------------------------------------------------------------------


@pytest.fixture
def settler(token, owner, relayer):
    token.transact(owner, "configureSettler", relayer.address, True)
    return relayer


def pay(chain, token, signer, to, value, nonce, *, before=None, from_=None):
    before = now(chain) + HOUR if before is None else before
    return signed_payment(
        signer, token.domain(), to=to, value=value, nonce=nonce, valid_before=before, from_=from_
    )


def settle(token, settler, to, fee_to, payments, fees):
    """Simulate, then send, one settlement; the statuses and the receipt."""
    args = (to, fee_to, payments, fees)
    statuses = token.call("settlePayments", *args, sender=settler)
    return statuses, token.transact(settler, "settlePayments", *args)


def test_settle_payments(chain, token, settler, alice, bob, carol, owner):
    merchant, treasury = carol.address, owner.address
    token.mint(alice, 1_000)
    token.mint(bob, 1_000)
    payments = [
        pay(chain, token, alice, merchant, 300, 0),
        pay(chain, token, bob, merchant, 200, 1),
        pay(chain, token, alice, merchant, 100, 2),
    ]
    statuses, receipt = settle(token, settler, merchant, treasury, payments, [3, 2, 1])
    assert statuses == [SETTLED] * 3
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": merchant, "value": 300},
        {"sender": bob.address, "receiver": merchant, "value": 200},
        {"sender": alice.address, "receiver": merchant, "value": 100},
        {"sender": merchant, "receiver": treasury, "value": 6},
    ]
    assert token.balance(alice) == 600
    assert token.balance(bob) == 800
    assert token.balance(merchant) == 594
    assert token.balance(treasury) == 6
    assert token.call("totalSupply") == 2_000
    assert [token.call("paymentNonceUsed", merchant, n) for n in range(4)] == [True] * 3 + [False]
    assert token.call("paymentNonceUsed", alice.address, 0) is False  # nonces are per payee
    # Settled once, never again.
    statuses, receipt = settle(token, settler, merchant, treasury, payments, [3, 2, 1])
    assert statuses == [NONCE_USED] * 3
    assert token.events(receipt, "Transfer") == []
    assert token.balance(merchant) == 594


def test_settle_payments_skips_what_it_cannot_settle(chain, token, settler, owner, accounts):
    alice, bob, carol, dave, erin = accounts[1], accounts[2], accounts[3], accounts[5], accounts[6]
    merchant, treasury = accounts[7].address, owner.address
    for payer in (alice, bob, carol, dave, erin):
        token.mint(payer, 100)
    token.transact(owner, "blocklist", erin.address)
    settle(token, settler, merchant, treasury, [pay(chain, token, alice, merchant, 10, 7)], [0])
    t = now(chain)
    payments = [
        pay(chain, token, alice, merchant, 10, 1),  # settled
        pay(chain, token, bob, merchant, 10, 2, from_=carol.address),  # bob signs for carol
        pay(chain, token, carol, merchant, 10, 3, before=t),  # expired
        pay(chain, token, dave, merchant, 10, 7),  # nonce 7 was settled before
        pay(chain, token, dave, merchant, 10, 1),  # nonce 1 is settled earlier in this batch
        pay(chain, token, dave, merchant, 101, 4),  # more than dave has
        pay(chain, token, erin, merchant, 10, 5),  # blocklisted
        pay(chain, token, bob, token.address, 10, 6),  # signed for another payee
        pay(chain, token, carol, merchant, 10, 8)[:4] + (28, b"\1" * 32, b"\2" * 32),  # garbage
    ]
    v, r, s = payments[0][4:]
    malleated = Signature(v, r, s).malleated()
    payments.append(pay(chain, token, bob, merchant, 10, 9)[:4] + tuple(malleated))
    high_s_of_bob = payments[-1]
    assert high_s_of_bob[0] == bob.address
    statuses, receipt = settle(token, settler, merchant, treasury, payments, [1] * len(payments))
    assert statuses == [
        SETTLED,
        BAD_SIGNATURE,
        EXPIRED,
        NONCE_USED,
        NONCE_USED,
        INSUFFICIENT_FUNDS,
        BLOCKLISTED,
        BAD_SIGNATURE,
        BAD_SIGNATURE,
        BAD_SIGNATURE,
    ]
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": merchant, "value": 10},
        {"sender": merchant, "receiver": treasury, "value": 1},
    ]
    assert [token.balance(p) for p in (alice, bob, carol, dave, erin)] == [80, 100, 100, 100, 100]
    # Only settled payments use their nonce: the skipped ones can still be paid.
    assert [token.call("paymentNonceUsed", merchant, n) for n in range(10)] == [
        n in (1, 7) for n in range(10)
    ]


def test_settle_payment_nonces_in_several_words(chain, token, settler, alice, bob):
    token.mint(alice, 1_000)
    nonces = [5, 300, 6, 2**200 + 1, 301]
    payments = [pay(chain, token, alice, bob.address, 1, n) for n in nonces]
    payments.append(pay(chain, token, alice, bob.address, 1, 300))
    statuses, _ = settle(token, settler, bob.address, ZERO, payments, [0] * 6)
    assert statuses == [SETTLED] * 5 + [NONCE_USED]
    assert all(token.call("paymentNonceUsed", bob.address, n) for n in nonces)
    assert not token.call("paymentNonceUsed", bob.address, 7)
    assert token.balance(bob) == 5


def test_settle_payments_without_fee_or_with_the_payee_as_payer(chain, token, settler, alice, bob):
    token.mint(alice, 100)
    statuses, receipt = settle(
        token, settler, alice.address, ZERO, [pay(chain, token, alice, alice.address, 60, 0)], [0]
    )
    assert statuses == [SETTLED]
    assert token.events(receipt, "Transfer") == [
        {"sender": alice.address, "receiver": alice.address, "value": 60}
    ]
    assert token.balance(alice) == 100
    statuses, receipt = settle(
        token,
        settler,
        alice.address,
        bob.address,
        [pay(chain, token, alice, alice.address, 60, 1)],
        [6],
    )
    assert token.balance(alice) == 94 and token.balance(bob) == 6


def test_settle_payment_of_a_contract_account(chain, token, settler, wallet, alice, bob):
    token.mint(wallet, 100)
    payments = [
        pay(chain, token, bob, bob.address, 10, 0, from_=wallet),
        pay(chain, token, alice, bob.address, 10, 1, from_=wallet),
    ]
    statuses, _ = settle(token, settler, bob.address, ZERO, payments, [0, 0])
    assert statuses == [BAD_SIGNATURE, SETTLED]
    assert token.balance(wallet) == 90


def test_settle_payments_refusals(chain, token, settler, owner, alice, bob, stranger):
    token.mint(alice, 100)
    payment = pay(chain, token, alice, bob.address, 10, 0)
    with reverts("currency_token: caller is not a settler"):
        token.transact(stranger, "settlePayments", bob.address, owner.address, [payment], [0])
    with reverts("currency_token: fees and payments differ in length"):
        token.transact(settler, "settlePayments", bob.address, owner.address, [payment], [])
    with reverts("currency_token: fee exceeds payment"):
        token.transact(settler, "settlePayments", bob.address, owner.address, [payment], [11])
    with reverts("currency_token: payee is the zero address"):
        token.transact(settler, "settlePayments", ZERO, owner.address, [payment], [0])
    with reverts("currency_token: fee recipient is the zero address"):
        token.transact(settler, "settlePayments", bob.address, ZERO, [payment], [1])
    token.transact(owner, "blocklist", stranger.address)
    with reverts("currency_token: fee recipient blocklisted"):
        token.transact(settler, "settlePayments", bob.address, stranger.address, [payment], [1])
    token.transact(owner, "blocklist", bob.address)
    with reverts("currency_token: payee blocklisted"):
        token.transact(settler, "settlePayments", bob.address, owner.address, [payment], [1])
    token.transact(owner, "unBlocklist", bob.address)
    token.transact(owner, "pause")
    with reverts("currency_token: paused"):
        token.transact(settler, "settlePayments", bob.address, owner.address, [payment], [1])
    token.transact(owner, "unpause")
    token.transact(owner, "configureSettler", settler.address, False)
    with reverts("currency_token: caller is not a settler"):
        token.transact(settler, "settlePayments", bob.address, owner.address, [payment], [1])
    assert token.balance(alice) == 100


# -- gas ------------------------------------------------------------------------------------


def calldata_gas(data: bytes) -> int:
    return sum(4 if b == 0 else 16 for b in data)


def test_gas(chain, token, owner, accounts, alice, bob, relayer, settler, record_property):
    """What a payment costs each way; a settled payment must cost under 0.45 of a plain
    ERC-20 transfer (checkout's own work and calldata come on top of the token's)."""
    plain = compile_contract(Path(__file__).parent / "plain_erc20.vy")
    other = chain.contract(plain, chain.deploy(plain, sender=owner))
    chain.transact(owner, other.functions.transfer(bob.address, 1))
    used = {}
    used["plain ERC-20 transfer"] = chain.transact(owner, other.functions.transfer(bob.address, 1))[
        "gasUsed"
    ]
    token.mint(alice, 10**9)
    token.mint(bob, 1)
    used["transfer"] = token.transact(alice, "transfer", bob.address, 1)["gasUsed"]
    deadline = now(chain) + HOUR
    sig = sign_permit(
        alice, token.domain(), spender=bob.address, value=5, nonce=0, deadline=deadline
    )
    used["permit"] = token.transact(
        relayer, "permit", alice.address, bob.address, 5, deadline, *sig
    )["gasUsed"]
    used["transferWithAuthorization"] = token.transact(
        relayer, "transferWithAuthorization", *authorize(chain, token, alice, bob.address, 1)
    )["gasUsed"]

    # 100 payers with a balance each pay one merchant with a fee, as checkout has them do.
    payers = [Account.from_key(keccak(text=f"payer {i}")) for i in range(100)]
    merchant, treasury = accounts[7].address, owner.address
    token.mint(merchant, 1)
    token.mint(treasury, 1)
    for tx_hash in [chain.send(owner, token.functions.mint(p.address, 10**7)) for p in payers]:
        chain.wait(tx_hash)
    payments = [pay(chain, token, p, merchant, 10**6 + i, i) for i, p in enumerate(payers)]
    statuses, receipt = settle(token, settler, merchant, treasury, payments, [10**4] * 100)
    assert statuses == [SETTLED] * 100
    tx = chain.w3.eth.get_transaction(receipt["transactionHash"])
    per_payment = receipt["gasUsed"] / 100
    used["settlePayments, per payment"] = per_payment
    used["settlePayments, per payment without calldata"] = (
        receipt["gasUsed"] - 21_000 - calldata_gas(bytes(tx["input"]))
    ) / 100
    for name, gas in used.items():
        record_property(name, gas)
    print(used)
    # The floor is ~9.9k: a cold balance slot (5,000), ecrecover (3,100), the Transfer log (1,774).
    assert used["settlePayments, per payment without calldata"] <= 12_200
    assert per_payment <= 0.45 * used["plain ERC-20 transfer"]
