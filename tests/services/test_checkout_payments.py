"""Tests of carpay/services/checkout.py: gasless invoice payments and holds through the relayer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from carpay.chain import Chain, gas_with_headroom
from carpay.chain.node.node import dev_accounts
from carpay.errors import Conflict, InsufficientFunds, TransactionReverted, ValidationFailed
from carpay.ledger.models import OutboxIntent
from carpay.services import checkout as checkout_module
from carpay.services.checkout import (
    CHECKOUT_GAS,
    ChainCheckoutView,
    CheckoutPayments,
    Hold,
    Invoice,
    ReceiveAuthorization,
)
from carpay.services.outbox import Outbox
from carpay.services.platform import deploy_platform
from carpay.services.relayer import Relayer
from carpay.testing.scenarios import sign_invoice
from carpay.testing.signing import Domain, sign_receive_authorization

OWNER = "merchant-app"


@pytest.fixture(scope="module")
def people():
    owner, treasury, merchant, payer, relayer, stranger = dev_accounts(count=6)
    return owner, treasury, merchant, payer, relayer, stranger


@pytest.fixture
def world(node_url, tmp_path, people, database):
    owner, treasury, merchant, payer, relayer, _ = people
    chain = Chain(node_url, state_dir=tmp_path)
    platform = deploy_platform(chain, owner, treasury=treasury.address)
    registry = chain.contract("merchant_registry", platform.registry)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    chain.transact(
        owner, registry.functions.registerMerchant(merchant.address, 2, merchant.address, 100)
    )
    chain.transact(owner, token.functions.mint(payer.address, 1_000_000))
    view = ChainCheckoutView(chain, platform.checkout)
    outbox = Outbox(sender=relayer.address, chain_id=chain.chain_id)
    now = datetime.fromtimestamp(chain.w3.eth.get_block("latest")["timestamp"], UTC)
    service = CheckoutPayments(outbox, view, clock=lambda: now)
    relay = Relayer(database, chain, relayer)
    return chain, platform, token, service, relay, now


def _invoice(world, merchant, amount=250_000, *, invoice_id=7, expiry=None, payer=None):
    chain, platform, token, _, _, now = world
    invoice = Invoice(
        merchant.address,
        amount,
        token.address,
        "0x" + invoice_id.to_bytes(32, "big").hex(),
        expiry or int(now.timestamp()) + 3600,
        payer or "0x" + "00" * 20,
    )
    signature = sign_invoice(chain, platform.checkout, merchant, invoice.as_tuple())
    return invoice, "0x" + signature.hex()


def _authorize(world, signer, amount, nonce, *, payer=None, valid_before=None):
    chain, platform, token, _, _, now = world
    valid_before = valid_before or int(now.timestamp()) + 600
    signed = sign_receive_authorization(
        signer,
        Domain.of(token),
        to=platform.checkout,
        value=amount,
        valid_after=0,
        valid_before=valid_before,
        nonce=nonce,
        from_=payer,
    )
    return ReceiveAuthorization(
        0, valid_before, signed.v, "0x" + signed.r.hex(), "0x" + signed.s.hex()
    )


def _relay_until_final(database, relay, intent_id) -> OutboxIntent:
    for _ in range(50):
        relay.run_once()
        with database.begin() as session:
            intent = session.get(OutboxIntent, intent_id)
            if intent.state in ("confirmed", "failed"):
                return intent
    raise AssertionError("the intent never became final")


def _pay(service, session, invoice, signature, payer, authorization, *, owner=OWNER):
    return service.pay_invoice(
        session,
        owner=owner,
        invoice=invoice,
        merchant_signature=signature,
        payer=payer.address,
        authorization=authorization,
    )


def _intents(database) -> int:
    with database.begin() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(OutboxIntent))


def test_an_invoice_is_paid_gaslessly_exactly_once(world, people, database):
    """Paid once, and sent with the gas it was checked with: the check runs it as the
    relayer sends it, with CHECKOUT_GAS, and the relayer does not estimate it."""
    chain, platform, token, service, relay, _ = world
    _, treasury, merchant, payer, _, _ = people
    invoice, signature = _invoice(world, merchant)
    authorization = _authorize(world, payer, invoice.amount_minor, invoice.struct_hash())

    with database.begin() as session:
        intent = _pay(service, session, invoice, signature, payer, authorization)
        intent_id = intent.id
        assert intent.gas_limit == CHECKOUT_GAS
        assert (intent.kind, intent.state, intent.to_address) == (
            "payment",
            "pending",
            platform.checkout,
        )
    with database.begin() as session, pytest.raises(Conflict, match="being paid already"):
        _pay(service, session, invoice, signature, payer, authorization, owner="another-app")

    final = _relay_until_final(database, relay, intent_id)
    assert final.state == "confirmed"
    assert chain.w3.eth.get_transaction(final.tx_hash)["gas"] == CHECKOUT_GAS
    assert token.functions.balanceOf(payer.address).call() == 750_000
    assert token.functions.balanceOf(merchant.address).call() == 247_500
    assert token.functions.balanceOf(treasury.address).call() == 2_500
    assert _intents(database) == 1


def test_a_payment_that_needs_more_than_payment_gas_is_sent_with_its_estimate(
    world, people, database, monkeypatch
):
    """A payment that fails with CHECKOUT_GAS (an ERC-1271 merchant's wallet may need more;
    here the constant is made too small) is estimated, and sent with the estimate."""
    chain, platform, token, service, relay, _ = world
    merchant, payer = people[2], people[3]
    invoice, signature = _invoice(world, merchant)
    authorization = _authorize(world, payer, invoice.amount_minor, invoice.struct_hash())
    data = service.view.encode(
        "payInvoiceWithAuthorization",
        invoice.as_tuple(),
        bytes.fromhex(signature[2:]),
        payer.address,
        *authorization.args(),
    )
    estimate = chain.estimate_gas(service.outbox.sender, platform.checkout, data)
    monkeypatch.setattr(checkout_module, "CHECKOUT_GAS", 60_000)

    with database.begin() as session:
        intent = _pay(service, session, invoice, signature, payer, authorization)
        intent_id = intent.id
        assert intent.gas_limit == gas_with_headroom(estimate)

    assert _relay_until_final(database, relay, intent_id).state == "confirmed"
    assert token.functions.balanceOf(merchant.address).call() == 247_500


def test_a_payment_the_contracts_refuse_for_another_reason_is_refused_with_it(
    world, people, database
):
    """The payer is blocklisted by the token: no check of the service names that, the
    contracts' reason is given instead, and nothing is written."""
    chain, _, token, _, _, _ = world
    owner, payer = people[0], people[3]
    chain.transact(owner, token.functions.blocklist(payer.address))

    with pytest.raises(TransactionReverted, match="currency_token: sender blocklisted"):
        _refusal(world, people, database, lambda args, world, people: None)
    assert _intents(database) == 0


def test_calldata_is_what_web3_encodes(world, people):
    """The view encodes checkout's calls with eth_abi and the ABI's types: byte for byte
    what web3's contract object encodes."""
    chain, platform, _, service, _, now = world
    merchant, payer = people[2], people[3]
    invoice, signature = _invoice(world, merchant)
    authorization = _authorize(world, payer, invoice.amount_minor, invoice.struct_hash())
    hold = Hold(
        payer.address, merchant.address, invoice.token, 5, int(now.timestamp()), "0x" + "07" * 32
    )
    calls = [
        (
            "payInvoiceWithAuthorization",
            invoice.as_tuple(),
            bytes.fromhex(signature[2:]),
            payer.address,
            *authorization.args(),
        ),
        ("placeHoldWithAuthorization", hold.as_tuple(), *authorization.args()),
        ("refund", invoice.as_tuple(), payer.address, 3, 2**256 - 1),
        ("capture", hold.as_tuple(), 4, True),
        ("void", hold.as_tuple()),
    ]
    checkout = chain.contract("checkout", platform.checkout)
    for function, *args in calls:
        expected = checkout.encode_abi(function, args=args)
        assert "0x" + service.view.encode(function, *args).hex() == expected, function


def test_a_hold_is_placed_gaslessly(world, people, database):
    chain, platform, token, service, relay, now = world
    _, _, merchant, payer, _, _ = people
    hold = Hold(
        payer.address,
        merchant.address,
        token.address,
        80_000,
        int(now.timestamp()) + 900,
        "0x" + "01" * 32,
    )
    authorization = _authorize(world, payer, hold.amount_minor, hold.struct_hash())

    with database.begin() as session:
        intent = service.place_hold(session, owner=OWNER, hold=hold, authorization=authorization)
        intent_id = intent.id
        assert intent.gas_limit == CHECKOUT_GAS  # checked by running it: not estimated again

    assert _relay_until_final(database, relay, intent_id).state == "confirmed"
    checkout = chain.contract("checkout", platform.checkout)
    state, remaining = checkout.functions.holdState(hold.struct_hash()).call()
    assert (state, remaining) == (1, 80_000)
    assert token.functions.balanceOf(platform.checkout).call() == 80_000
    with database.begin() as session, pytest.raises(Conflict, match="placed or being placed"):
        service.place_hold(session, owner=OWNER, hold=hold, authorization=authorization)
    # A hold of more than the payer holds is refused at once, and nothing is written.
    big = Hold(*hold.as_tuple()[:3], 1_000_000, hold.deadline, "0x" + "02" * 32)
    big_authorization = _authorize(world, payer, big.amount_minor, big.struct_hash())
    with database.begin() as session, pytest.raises(InsufficientFunds, match="hold's amount"):
        service.place_hold(session, owner=OWNER, hold=big, authorization=big_authorization)
    assert _intents(database) == 1


def _refusal(world, people, database, change):
    _, _, merchant, payer, _, stranger = people
    invoice, signature = _invoice(world, merchant)
    args = {
        "owner": OWNER,
        "invoice": invoice,
        "merchant_signature": signature,
        "payer": payer.address,
        "authorization": _authorize(world, payer, invoice.amount_minor, invoice.struct_hash()),
    }
    change(args, world, people)
    with database.begin() as session:
        world[3].pay_invoice(session, **args)


def _expired(args, world, people):
    merchant = people[2]
    past = int(world[5].timestamp()) - 1
    args["invoice"], args["merchant_signature"] = _invoice(world, merchant, expiry=past)


def _signed_by_stranger(args, world, people):
    args["merchant_signature"] = _invoice(world, people[5])[1]  # of another invoice


def _someone_elses_authorization(args, world, people):
    invoice = args["invoice"]
    args["authorization"] = _authorize(
        world, people[5], invoice.amount_minor, invoice.struct_hash(), payer=people[3].address
    )


def _authorization_for_another_amount(args, world, people):
    invoice = args["invoice"]
    args["authorization"] = _authorize(
        world, people[3], invoice.amount_minor + 1, invoice.struct_hash()
    )


def _another_payer_named(args, world, people):
    merchant = people[2]
    args["invoice"], args["merchant_signature"] = _invoice(world, merchant, payer=people[5].address)
    invoice = args["invoice"]
    args["authorization"] = _authorize(
        world, people[3], invoice.amount_minor, invoice.struct_hash()
    )


def _unregistered_merchant(args, world, people):
    stranger = people[5]
    args["invoice"], args["merchant_signature"] = _invoice(world, stranger)
    invoice = args["invoice"]
    args["authorization"] = _authorize(
        world, people[3], invoice.amount_minor, invoice.struct_hash()
    )


def _garbled_signature(args, world, people):
    args["merchant_signature"] = "0x1234"


def _zero_amount(args, world, people):
    args["invoice"], args["merchant_signature"] = _invoice(world, people[2], amount=0)


def _more_than_the_payer_holds(args, world, people):
    args["invoice"], args["merchant_signature"] = _invoice(world, people[2], amount=1_000_001)
    invoice = args["invoice"]
    args["authorization"] = _authorize(
        world, people[3], invoice.amount_minor, invoice.struct_hash()
    )


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (_expired, ValidationFailed, "expired"),
        (_signed_by_stranger, ValidationFailed, "not signed by its merchant"),
        (_someone_elses_authorization, ValidationFailed, "not the payer's"),
        (_authorization_for_another_amount, ValidationFailed, "not the payer's"),
        (_another_payer_named, ValidationFailed, "another payer"),
        (_unregistered_merchant, Conflict, "not an active merchant"),
        (_garbled_signature, ValidationFailed, "65 bytes"),
        (_zero_amount, ValidationFailed, "positive"),
        (_more_than_the_payer_holds, InsufficientFunds, "short of the invoice's amount"),
    ],
)
def test_bad_payments_are_refused_and_nothing_is_written(
    world, people, database, change, error, message
):
    with pytest.raises(error, match=message):
        _refusal(world, people, database, change)
    assert _intents(database) == 0


def test_an_invoices_signer_is_the_one_its_whole_typed_data_names(people):
    """The check recovers the merchant from EIP-712's digest with checkout's domain separator
    made once: the same signer as encoding the whole typed data, for an invoice signed for
    this checkout, for another chain and for another invoice."""
    from types import SimpleNamespace

    merchant = people[2]
    view = SimpleNamespace(chain_id=1337, checkout="0x" + "ab" * 20)
    invoice = Invoice(merchant.address, 250, "0x" + "cd" * 20, "0x" + "07" * 32, 2**40)
    other_chain = SimpleNamespace(chain_id=1, checkout=view.checkout)
    other_invoice = Invoice(merchant.address, 251, "0x" + "cd" * 20, "0x" + "07" * 32, 2**40)
    for signed_view, signed_invoice in (
        (view, invoice),
        (other_chain, invoice),
        (view, other_invoice),
    ):
        domain, types, message = signed_invoice.typed_data(signed_view)
        signature = bytes(merchant.sign_typed_data(domain, types, message).signature)
        expected = checkout_module._signer(*invoice.typed_data(view), signature)
        got = checkout_module._invoice_signer(invoice, invoice.struct_hash(), view, signature)
        assert got == expected
        assert (got == merchant.address) == (signed_view is view and signed_invoice is invoice)
    assert (
        checkout_module._invoice_signer(invoice, invoice.struct_hash(), view, b"\x01" * 3) is None
    )
