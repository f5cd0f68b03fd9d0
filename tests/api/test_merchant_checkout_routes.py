"""Tests of carpay/api/routes/merchant_checkout.py and carpay/services/merchant_checkout.py:
refunds, captures and voids sent from the merchant's own key, for its API owner only, checked
against the ledger and the chain before anything is written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from carpay.accounts import Keyring, participants
from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Indexer
from carpay.ledger.models import OutboxIntent
from carpay.services.checkout import Hold
from carpay.services.platform import deploy_platform
from carpay.testing.scenarios import sign_invoice
from tests.api.conftest import bearer, chain_clock, make_key, post, relay_and_index
from tests.api.test_problems import assert_problem

OWNER, TREASURY, MERCHANT, PAYER, UNHELD, STRANGER = dev_accounts(count=6)
ZERO = "0x" + "00" * 20
PAID = 500_000


@pytest.fixture
def chain(embedded, tmp_path, database):
    """The platform, MERCHANT (the caller m1's, key held) and UNHELD (m1's, key not held)
    registered; PAYER paid MERCHANT an invoice and placed a hold of 300,000, all indexed."""
    chain = Chain(embedded.url, state_dir=tmp_path / "state")
    platform = deploy_platform(chain, OWNER, treasury=TREASURY.address)
    registry = chain.contract("merchant_registry", platform.registry)
    token = chain.contract("currency_token", platform.tokens["EUR"])
    checkout = chain.contract("checkout", platform.checkout)
    for merchant in (MERCHANT, UNHELD):
        chain.transact(
            OWNER, registry.functions.registerMerchant(merchant.address, 4, merchant.address, 100)
        )
        chain.transact(merchant, token.functions.approve(checkout.address, 2**256 - 1))
    chain.transact(OWNER, token.functions.mint(PAYER.address, 10**9))
    chain.transact(PAYER, token.functions.approve(checkout.address, 2**256 - 1))
    now = chain.w3.eth.get_block("latest")["timestamp"]
    chain.invoices = {}
    for merchant in (MERCHANT, UNHELD):
        invoice = (merchant.address, PAID, token.address, b"\x42" * 32, now + 3600, ZERO)
        signature = sign_invoice(chain, checkout.address, merchant, invoice)
        chain.transact(PAYER, checkout.functions.payInvoice(invoice, signature))
        chain.invoices[merchant.address] = invoice
    chain.hold = Hold(
        PAYER.address, MERCHANT.address, token.address, 300_000, now + 3600, "0x" + "09" * 32
    )
    chain.transact(PAYER, checkout.functions.placeHold(chain.hold.as_tuple()))
    chain.platform, chain.token, chain.checkout = platform, token, checkout
    with database.begin() as session:
        for merchant in (MERCHANT, UNHELD):
            participants.link(session, owner="m1", chain_id=1337, address=merchant.address)
    Indexer(database, chain, platform.watched()).catch_up()
    return chain


@pytest.fixture
def keyring():
    return Keyring([MERCHANT])


@pytest.fixture
def clock(chain):
    return chain_clock(chain)


@pytest.fixture
def m1(database):
    return bearer(make_key(database, "payments:write", "transfers:read", owner="m1"))


def _invoice(chain, merchant=MERCHANT) -> dict:
    m, amount, token, invoice_id, expiry, payer = chain.invoices[merchant.address]
    return {
        "merchant": m,
        "amount_minor": amount,
        "token": token,
        "invoice_id": "0x" + invoice_id.hex(),
        "expiry": expiry,
        "payer": payer,
    }


def _hold(chain) -> dict:
    h = chain.hold
    return {
        "payer": h.payer,
        "merchant": h.merchant,
        "token": h.token,
        "amount_minor": h.amount_minor,
        "deadline": h.deadline,
        "salt": h.salt,
    }


def _hold_id(chain) -> str:
    return "0x" + chain.hold.struct_hash().hex()


def _intents(database) -> int:
    with database.begin() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(OutboxIntent))


def test_a_merchant_refunds_in_parts_never_beyond_what_was_paid(client, m1, database, chain, clock):
    payer_before = chain.token.functions.balanceOf(PAYER.address).call()
    body = {"invoice": _invoice(chain), "amount_minor": 200_000}
    first = post(client, m1, "/v1/refunds", body, "r1")
    assert first.status_code == 201, first.text
    refund = first.json()
    assert (refund["kind"], refund["refunded_before"], refund["payer"]) == (
        "refund",
        0,
        PAYER.address,
    )
    # While the first is not mined, another refund of the invoice waits its turn.
    assert_problem(post(client, m1, "/v1/refunds", body, "r2"), 409, "conflict")
    relay_and_index(database, chain, MERCHANT, clock)
    status = client.get(f"/v1/outbox/{refund['id']}", headers=m1).json()
    assert status["state"] == "confirmed", status["error"]
    assert chain.token.functions.balanceOf(PAYER.address).call() == payer_before + 200_000

    too_much = {"invoice": _invoice(chain), "amount_minor": PAID - 200_000 + 1}
    detail = assert_problem(
        post(client, m1, "/v1/refunds", too_much, "r3"), 422, "validation-failed"
    )
    assert "300000" in detail["detail"]
    # The merchant kept 495,000 (1% went to the platform) and has refunded 200,000.
    rest = {"invoice": _invoice(chain), "amount_minor": PAID - 200_000}
    assert_problem(post(client, m1, "/v1/refunds", rest, "r4"), 402, "insufficient-funds")
    chain.transact(OWNER, chain.token.functions.mint(MERCHANT.address, 5_000))
    second = post(client, m1, "/v1/refunds", rest, "r4")
    assert second.status_code == 201 and second.json()["refunded_before"] == 200_000
    relay_and_index(database, chain, MERCHANT, clock)
    status = client.get(f"/v1/outbox/{second.json()['id']}", headers=m1).json()
    assert status["state"] == "confirmed", status["error"]
    assert chain.token.functions.balanceOf(PAYER.address).call() == payer_before + PAID
    assert_problem(
        post(client, m1, "/v1/refunds", {"invoice": _invoice(chain), "amount_minor": 1}, "r5"),
        422,
        "validation-failed",
    )


def test_refunds_refused_with_nothing_written(client, m1, database, chain):
    before = _intents(database)
    other_owner = bearer(make_key(database, "payments:write", owner="m2"))
    body = {"invoice": _invoice(chain), "amount_minor": 1}
    assert_problem(post(client, other_owner, "/v1/refunds", body, "a"), 403, "not-authorized")
    unheld = {"invoice": _invoice(chain, UNHELD), "amount_minor": 1}
    detail = assert_problem(post(client, m1, "/v1/refunds", unheld, "b"), 409, "conflict")
    assert "own wallet" in detail["detail"]
    unpaid = {"invoice": _invoice(chain) | {"invoice_id": "0x" + "43" * 32}, "amount_minor": 1}
    assert_problem(post(client, m1, "/v1/refunds", unpaid, "c"), 409, "conflict")
    altered = {"invoice": _invoice(chain) | {"amount_minor": PAID * 2}, "amount_minor": 1}
    assert_problem(post(client, m1, "/v1/refunds", altered, "d"), 409, "conflict")
    assert_problem(
        post(client, m1, "/v1/refunds", {"invoice": _invoice(chain), "amount_minor": 0}, "e"),
        422,
        "validation-failed",
    )
    assert _intents(database) == before


def test_a_merchant_captures_part_of_a_hold_then_voids_the_rest(client, m1, database, chain, clock):
    path = f"/v1/holds/{_hold_id(chain)}"
    too_much = {"hold": _hold(chain), "amount_minor": 300_001}
    assert_problem(post(client, m1, f"{path}/capture", too_much, "c0"), 422, "validation-failed")
    captured = post(
        client, m1, f"{path}/capture", {"hold": _hold(chain), "amount_minor": 120_000}, "c1"
    )
    assert captured.status_code == 201, captured.text
    assert captured.json()["kind"] == "capture"
    relay_and_index(database, chain, MERCHANT, clock)
    state = chain.checkout.functions.holdState(_hold_id(chain)).call()
    assert state == [1, 180_000]

    payer_before = chain.token.functions.balanceOf(PAYER.address).call()
    voided = post(client, m1, f"{path}/void", {"hold": _hold(chain)}, "v1")
    assert voided.status_code == 201 and voided.json()["released_minor"] == 180_000
    relay_and_index(database, chain, MERCHANT, clock)
    assert chain.checkout.functions.holdState(_hold_id(chain)).call() == [2, 0]
    assert chain.token.functions.balanceOf(PAYER.address).call() == payer_before + 180_000
    # A closed hold is neither captured nor voided again.
    again = {"hold": _hold(chain), "amount_minor": 1}
    assert_problem(post(client, m1, f"{path}/capture", again, "c2"), 409, "conflict")
    assert_problem(post(client, m1, f"{path}/void", {"hold": _hold(chain)}, "v2"), 409, "conflict")


def test_a_hold_must_have_the_id_of_its_path_and_be_yours(client, m1, database, chain):
    other = "0x" + "ab" * 32
    body = {"hold": _hold(chain), "amount_minor": 1}
    assert_problem(
        post(client, m1, f"/v1/holds/{other}/capture", body, "x"), 422, "validation-failed"
    )
    stranger = bearer(make_key(database, "payments:write", owner="m3"))
    path = f"/v1/holds/{_hold_id(chain)}/void"
    assert_problem(post(client, stranger, path, {"hold": _hold(chain)}, "y"), 403, "not-authorized")


def test_a_merchant_creates_an_invoice_a_payer_pays_on_chain(client, m1, database, chain, clock):
    expiry = int(clock.now.timestamp()) + 600
    body = {
        "merchant": MERCHANT.address,
        "amount_minor": 77_000,
        "token": chain.token.address,
        "expiry": expiry,
    }
    created = post(client, m1, "/v1/invoices", body, "i1")
    assert created.status_code == 201, created.text
    signed = created.json()
    assert (
        client.post("/v1/invoices", json=body, headers=m1 | {"Idempotency-Key": "i1"}).json()
        == signed
    )
    invoice = signed["invoice"]
    assert (invoice["merchant"], invoice["amount_minor"], invoice["payer"]) == (
        MERCHANT.address,
        77_000,
        ZERO,
    )
    as_tuple = (
        invoice["merchant"],
        invoice["amount_minor"],
        invoice["token"],
        bytes.fromhex(invoice["invoice_id"][2:]),
        invoice["expiry"],
        invoice["payer"],
    )
    assert (
        "0x" + chain.checkout.functions.invoiceHash(as_tuple).call().hex() == signed["invoice_hash"]
    )
    signature = bytes.fromhex(signed["merchant_signature"][2:])
    merchant_before = chain.token.functions.balanceOf(MERCHANT.address).call()
    chain.transact(PAYER, chain.checkout.functions.payInvoice(as_tuple, signature))
    assert chain.token.functions.balanceOf(MERCHANT.address).call() == merchant_before + 76_230

    # Its id is taken now; nobody else's merchant, no key, no past expiry.
    again = body | {"invoice_id": invoice["invoice_id"]}
    assert_problem(post(client, m1, "/v1/invoices", again, "i2"), 409, "conflict")
    other = bearer(make_key(database, "payments:write", owner="m2"))
    assert_problem(post(client, other, "/v1/invoices", body, "i3"), 403, "not-authorized")
    unheld = body | {"merchant": UNHELD.address}
    assert_problem(post(client, m1, "/v1/invoices", unheld, "i4"), 409, "conflict")
    not_money = body | {"token": chain.checkout.address}
    assert_problem(post(client, m1, "/v1/invoices", not_money, "i6"), 422, "validation-failed")
    past = body | {"expiry": int(clock.now.timestamp()) - 1}
    assert_problem(post(client, m1, "/v1/invoices", past, "i5"), 422, "validation-failed")
