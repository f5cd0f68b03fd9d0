"""Gas per operation of carpay's contracts, beside a plain ERC-20 transfer measured in the same run.

Gas is deterministic: the figures come from the embedded node and are checked to be the same on
anvil. Every operation is measured in its steady state (the recipients already hold a balance,
as they do in everyday use). Prints a table and writes bench/results/gas.json.

    .venv/bin/python bench/gas.py
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from eth_account import Account

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carpay.chain import Chain, build, compile_contract  # noqa: E402
from carpay.chain.node import Node, dev_accounts  # noqa: E402
from carpay.testing import Anvil  # noqa: E402
from carpay.testing.signing import (  # noqa: E402
    Domain,
    sign_permit,
    sign_transfer_authorization,
)
from tests.contracts.checkout_fixtures import (  # noqa: E402
    CONTRACTS,
    MERCHANT,
    OWNER,
    PAYER,
    PAYER2,
    PAYOUT,
    RELAYER,
    World,
    advance_past,
    deploy_world,
    latest_timestamp,
)
from tests.contracts.escrow_fixtures import PRICE, deploy_sales  # noqa: E402
from tests.contracts.insurance_fixtures import INSURER, deploy_insurance  # noqa: E402
from tests.contracts.vehicle_fixtures import (  # noqa: E402
    ALICE,
    AUTHORITY,
    BOB,
    LENDER,
    REGISTRAR,
    SHOP,
    STRANGER,
    VINS,
    deploy_fines,
)
from tests.contracts.vehicle_wallet_fixtures import (  # noqa: E402
    DEVICE,
    FUEL_CATEGORY,
    NEW_DEVICE,
    deploy_wallet_world,
)

RESULTS = ROOT / "bench" / "results" / "gas.json"
#: Targets of the issue, as multiples of the plain transfer.
TARGETS = {"payInvoice (direct)": 1.5, "settleBatch per payment, n=100": 0.45}


def measure(w: World) -> dict[str, float]:
    """Gas of each operation on the chain ``w`` runs on, in the order of the table."""

    def gas(sender, fn) -> int:
        return w.chain.transact(sender, fn)["gasUsed"]

    c, t = w.checkout.functions, w.token.functions
    plain = w.chain.contract(compile_contract(CONTRACTS / "plain_erc20.vy"), w.plain.address)
    gas(w[PAYER], plain.functions.transfer(w[PAYER2].address, 1))
    rows: dict[str, float] = {
        "plain ERC-20 transfer": gas(w[PAYER], plain.functions.transfer(w[PAYER2].address, 1))
    }
    gas(w[PAYER], t.transfer(w[PAYER2].address, 1))
    rows["currency token transfer"] = gas(w[PAYER], t.transfer(w[PAYER2].address, 1))

    domain = Domain.of(w.token)
    deadline = latest_timestamp(w.chain) + 3600
    nonce = t.nonces(w[PAYER2].address).call()
    signed = sign_permit(
        w[PAYER2], domain, spender=w[RELAYER].address, value=10**6, nonce=nonce, deadline=deadline
    )
    permit = t.permit(w[PAYER2].address, w[RELAYER].address, 10**6, deadline, *signed)
    rows["permit"] = gas(w[RELAYER], permit)
    auth_nonce = secrets.token_bytes(32)
    signed = sign_transfer_authorization(
        w[PAYER],
        domain,
        to=w[PAYER2].address,
        value=1,
        valid_after=0,
        valid_before=deadline,
        nonce=auth_nonce,
    )
    transfer_auth = t.transferWithAuthorization(
        w[PAYER].address, w[PAYER2].address, 1, 0, deadline, auth_nonce, *signed
    )
    rows["transferWithAuthorization"] = gas(w[RELAYER], transfer_auth)

    first = w.invoice(1_000_000, invoice_id=1)
    gas(w[PAYER], c.payInvoice(first, w.sign_invoice(first)))
    invoice = w.invoice(1_000_000, invoice_id=2)
    rows["payInvoice (direct)"] = gas(w[PAYER], c.payInvoice(invoice, w.sign_invoice(invoice)))
    named = w.invoice(1_000_000, invoice_id=3, payer=w[PAYER].address)
    auth = w.receive_authorization(w[PAYER], 1_000_000, c.invoiceHash(named).call())
    gasless = c.payInvoiceWithAuthorization(named, w.sign_invoice(named), w[PAYER].address, *auth)
    rows["payInvoiceWithAuthorization (gasless)"] = gas(w[RELAYER], gasless)
    w.chain.transact(w[OWNER], t.mint(w[MERCHANT].address, 10**9))
    w.chain.transact(w[MERCHANT], t.approve(w.checkout.address, 2**256 - 1))
    rows["refund (partial)"] = gas(w[MERCHANT], c.refund(invoice, w[PAYER].address, 0, 1_000))

    hold = w.hold(5_000_000)
    rows["placeHold (direct)"] = gas(w[PAYER], c.placeHold(hold))
    rows["capture (partial)"] = gas(w[MERCHANT], c.capture(hold, 1_000_000, False))
    rows["capture (final, rest returned)"] = gas(w[MERCHANT], c.capture(hold, 1_000_000, True))
    hold2 = w.hold(5_000_000, salt=2)
    auth = w.receive_authorization(w[PAYER], 5_000_000, c.holdId(hold2).call())
    rows["placeHoldWithAuthorization (gasless)"] = gas(
        w[RELAYER], c.placeHoldWithAuthorization(hold2, *auth)
    )
    rows["void"] = gas(w[MERCHANT], c.void(hold2))

    # Distinct payers, each holding a balance, as a real batch has.
    payers = [Account.create() for _ in range(111)]
    for payer in payers:
        w.chain.transact(w[OWNER], t.mint(payer.address, 10**9))
    start = 0
    for size in (1, 10, 100):
        payments = [
            w.payment(p, w[PAYOUT].address, 1_000_000, start + i)
            for i, p in enumerate(payers[start : start + size])
        ]
        start += size
        fn = c.settleBatch(w.token.address, w[MERCHANT].address, payments)
        rows[f"settleBatch per payment, n={size}"] = gas(w[RELAYER], fn) / size
    return rows


def measure_vehicles(chain: Chain) -> dict[str, float]:
    """Gas of the automotive contracts' operations, each in a fresh world of its own tests."""
    accounts = dev_accounts(count=10)

    def gas(sender, fn) -> int:
        return chain.transact(sender, fn)["gasUsed"]

    rows: dict[str, float] = {}
    w = deploy_fines(chain, accounts)
    registry = w.vehicles.f
    w.vehicles.mint(VINS[0], ALICE)
    rows["title: mint"] = gas(w[REGISTRAR], registry.mintTitle(w[ALICE].address, VINS[1]))
    title = w.vehicles.mint(VINS[2], ALICE)
    rows["title: record lien"] = gas(w[REGISTRAR], registry.recordLien(title, w[LENDER].address, 1))
    rows["title: release lien"] = gas(w[LENDER], registry.releaseLien(title))
    gas(w[SHOP], registry.recordService(title, b"\x01" * 32, 1_000))
    rows["title: service record"] = gas(w[SHOP], registry.recordService(title, b"\x02" * 32, 2_000))
    rows["title: transfer"] = gas(
        w[ALICE], registry.transferFrom(w[ALICE].address, w[BOB].address, title)
    )
    w.issue(title)
    due = latest_timestamp(chain) + 3600
    issue = w.f.issueFine(title, w.token.address, 50 * 10**6, 10**6, due, 1)
    rows["fine: issue"] = gas(w[AUTHORITY], issue)
    rows["fine: pay"] = gas(w[BOB], w.f.payFine(w.f.fineCount().call()))
    rows["fine: waive"] = gas(w[AUTHORITY], w.f.waiveFine(1))

    s = deploy_sales(chain, accounts)
    s.create(s.vehicles.mint(VINS[1], ALICE))
    car = s.vehicles.mint(VINS[3], ALICE)
    deadline = latest_timestamp(chain) + 3600
    create = s.f.createEscrow(
        car, s[BOB].address, s.token.address, PRICE, deadline, s[AUTHORITY].address
    )
    rows["escrow: create"] = gas(s[ALICE], create)
    eid = s.f.escrowCount().call()
    rows["escrow: fund"] = s.fund(eid)["gasUsed"]
    rows["escrow: deposit title"] = s.deposit(eid)["gasUsed"]
    rows["escrow: settle"] = gas(s[BOB], s.f.settle(eid))
    liened = s.vehicles.mint(VINS[4], ALICE)
    s.record_lien(liened)
    eid = s.create(liened)
    s.fund(eid)
    deposit = s.deposit(eid, *s.sign_payoff(liened, eid))
    rows["escrow: deposit title (with lien)"] = deposit["gasUsed"]
    rows["escrow: settle (with lien)"] = gas(s[BOB], s.f.settle(eid))

    v = deploy_wallet_world(chain, accounts)
    v.allow(FUEL_CATEGORY, 10**12, 10**12)
    gas(v[DEVICE], v.pay(10**6, invoice_id=1))
    rows["vehicle wallet: pay"] = gas(v[DEVICE], v.pay(10**6, invoice_id=2))
    rows["vehicle wallet: place hold"] = gas(v[DEVICE], v.f.placeHold(v.hold(10**6)))
    limits = v.f.setLimits(v.token.address, FUEL_CATEGORY, 10**9, 10**8)
    rows["vehicle wallet: set limits"] = gas(v[ALICE], limits)
    rows["vehicle wallet: rotate device key"] = gas(
        v[ALICE], v.f.rotateDeviceKey(v[NEW_DEVICE].address)
    )
    blueprint = chain.deploy(build.blueprint(build.contract("vehicle_wallet")), sender=v[OWNER])
    factory = chain.contract(
        "vehicle_wallet_factory",
        chain.deploy(
            "vehicle_wallet_factory",
            blueprint,
            v.vehicles.address,
            v.merchants.address,
            v.checkout.address,
            sender=v[OWNER],
        ),
    )
    second = v.vehicles.functions.mintTitle(v[ALICE].address, VINS[1])
    chain.transact(v[REGISTRAR], second)
    create = factory.functions.createWallet(
        v.vehicles.functions.titleOf(VINS[1]).call(), v[DEVICE].address
    )
    rows["vehicle wallet: create (factory)"] = gas(v[ALICE], create)

    i = deploy_insurance(chain, accounts)
    car = i.vehicles.mint(VINS[0], ALICE)
    i.accept(i.offer(car))
    expiry = latest_timestamp(chain) + 3600
    offer = i.f.offerPolicy(car, i.token.address, 600 * 10**6, 30, 30, 10_000, expiry)
    rows["insurance: offer"] = gas(i[INSURER], offer)
    due = i.f.policyCount().call()
    rows["insurance: accept"] = gas(i[ALICE], i.f.accept(due, 700 * 10**6))
    signed = i.offer(car)
    deadline, signature = i.sign_acceptance(signed, 600 * 10**6)
    by_signature = i.f.acceptWithSignature(
        signed, i[ALICE].address, 600 * 10**6, deadline, signature
    )
    rows["insurance: accept by signature"] = gas(i[STRANGER], by_signature)
    # A second of the term has passed on either node (anvil's clock may not have moved yet).
    advance_past(chain, i.policy(signed)["start"], i[STRANGER])
    rows["insurance: collect earned premium"] = gas(i[STRANGER], i.f.collect(signed))
    advance_past(chain, i.f.paidThrough(due).call(), i[STRANGER])
    rows["insurance: renew"] = gas(i[STRANGER], i.f.renew(due))
    rows["insurance: cancel (refund)"] = gas(i[ALICE], i.f.cancel(signed))
    rows["insurance: pay claim"] = gas(i[INSURER], i.f.payClaim(due, 10**6, b"\x01" * 32))
    rows["insurance: withdraw earnings"] = gas(i[INSURER], i.f.withdrawEarnings(i.token.address))
    return rows


def on_node(url: str, state: Path, run: Callable[[World], dict[str, float]]) -> dict[str, float]:
    chain = Chain(url, state_dir=state)
    rows = run(deploy_world(chain, dev_accounts(count=8)))
    return rows | measure_vehicles(chain)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp) / "chain", port=0).start()
        try:
            embedded = on_node(node.url, Path(tmp) / "e", measure)
        finally:
            node.stop()
        with Anvil() as anvil:
            peer = on_node(anvil.url, Path(tmp) / "a", measure)
    plain = embedded["plain ERC-20 transfer"]
    table = []
    print(f"{'operation':40s} {'gas':>9s} {'x plain':>8s} {'target':>7s} {'anvil':>6s}")
    for name, used in embedded.items():
        ratio = used / plain
        target = TARGETS.get(name)
        diff = round(peer[name]) - round(used)
        same = "same" if diff == 0 else f"{diff:+d}"
        print(
            f"{name:40s} {used:9.0f} {ratio:8.2f} "
            f"{(f'{target:.2f}' if target else ''):>7s} {same:>6s}"
        )
        table.append(
            {
                "operation": name,
                "gas": round(used),
                "ratio": round(ratio, 3),
                "target": target,
                "anvil_gas": round(peer[name]),
            }
        )
    print(
        "\nanvil: the difference on anvil, from calldata alone (timestamps and signatures have"
        "\nother zero bytes there: a zero byte costs 4 gas, another 16)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"plain_transfer_gas": plain, "rows": table}, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
    main()
