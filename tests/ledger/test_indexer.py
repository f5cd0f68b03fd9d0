"""Tests of carpay/ledger/indexer.py: chain events into SQL, resumable, reorg-safe, rebuildable."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from eth_account import Account

from carpay.chain import Chain, build, compile_contract
from carpay.chain.node.node import dev_accounts
from carpay.ledger import Creates, Indexer, Watched
from carpay.ledger.tables import (
    IndexCursor,
    LedgerBalance,
    LedgerBlock,
    LedgerEvent,
    LedgerTransaction,
    LedgerTransfer,
)
from carpay.settings import DEV_MNEMONIC
from tests.contracts.vehicle_wallet_fixtures import (
    ALICE,
    DEVICE,
    deploy_factory,
    deploy_wallet_world,
)

PLAIN_ERC20 = Path(__file__).resolve().parents[1] / "contracts" / "plain_erc20.vy"
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def accounts():
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(4)
    ]


@pytest.fixture(scope="module")
def erc20():
    return compile_contract(PLAIN_ERC20)


def _deploy(chain: Chain, erc20, deployer):
    address = chain.deploy(erc20, sender=deployer)
    token = chain.contract(erc20, address)
    start = chain.deployment(erc20.name).block
    return token, start


def _pay(chain: Chain, token, sender, to, amount: int) -> str:
    receipt = chain.transact(sender, token.functions.transfer(to.address, amount))
    return receipt["transactionHash"].to_0x_hex()


def _indexer(database, chain, token, erc20, start, **kw) -> Indexer:
    watched = Watched(token.address, "EURC", erc20.abi)
    return Indexer(database, chain, [watched], start_block=start, **kw)


def _rows(database, table, *exclude: str) -> list[tuple]:
    columns = [c for c in table.__table__.columns if c.name not in ("id", "updated_at", *exclude)]
    with database.begin() as session:
        return sorted(session.execute(sa.select(*columns)).all())


def _ledger_balances(database) -> dict[str, int]:
    with database.begin() as session:
        rows = session.execute(sa.select(LedgerBalance.account, LedgerBalance.balance)).all()
    return dict(rows)


def _chain_balances(token, addresses) -> dict[str, int]:
    return {a.lower(): token.functions.balanceOf(a).call() for a in addresses}


@pytest.fixture
def chain(node_url, tmp_path) -> Chain:
    return Chain(node_url, state_dir=tmp_path / "state")


def test_transfers_mints_and_balances_match_the_chain(database, chain, accounts, erc20):
    owner, alice, bob, _ = accounts
    token, start = _deploy(chain, erc20, owner)
    hashes = [_pay(chain, token, owner, alice, 1_000), _pay(chain, token, owner, bob, 250)]
    hashes.append(_pay(chain, token, alice, bob, 400))

    indexed = _indexer(database, chain, token, erc20, start).catch_up()

    transfers = _rows(database, LedgerTransfer)
    assert len(transfers) == 4  # the mint at deployment and three transfers
    assert indexed == len(_rows(database, LedgerEvent))  # with the ownership events
    kinds = sorted(row.kind for row in transfers)
    assert kinds == ["mint", "transfer", "transfer", "transfer"]
    assert {row.tx_hash for row in transfers if row.kind == "transfer"} == set(hashes)
    mint = next(row for row in transfers if row.kind == "mint")
    assert mint.from_address == ZERO and mint.to_address == owner.address.lower()
    balances = _ledger_balances(database)
    assert balances == _chain_balances(token, [owner.address, alice.address, bob.address])
    assert balances[alice.address.lower()] == 600
    with database.begin() as session:
        txs = session.execute(sa.select(LedgerTransaction.hash)).scalars().all()
        cursor = session.get(IndexCursor, chain.chain_id)
        events = session.execute(sa.select(LedgerEvent)).scalars().all()
    assert set(hashes) <= set(txs)
    assert cursor.block_number == chain.block_number()
    transfer = next(e for e in events if e.tx_hash == hashes[2])
    assert transfer.event == "Transfer" and transfer.contract == "EURC"
    assert list(transfer.args.values()) == [alice.address.lower(), bob.address.lower(), "400"]


def test_resumes_where_it_stopped_without_counting_twice(database, chain, accounts, erc20):
    owner, alice, _, _ = accounts
    token, start = _deploy(chain, erc20, owner)
    _pay(chain, token, owner, alice, 10)
    assert _indexer(database, chain, token, erc20, start).catch_up() >= 2
    _pay(chain, token, owner, alice, 20)

    # A new indexer (a restarted process) carries on from the cursor.
    again = _indexer(database, chain, token, erc20, start)
    assert again.catch_up() == 1
    assert again.run_once() == -1
    assert _ledger_balances(database)[alice.address.lower()] == 30
    assert len(_rows(database, LedgerTransfer)) == 3


def test_leaves_unconfirmed_blocks_for_later(database, chain, accounts, erc20):
    owner, alice, _, _ = accounts
    token, start = _deploy(chain, erc20, owner)
    _pay(chain, token, owner, alice, 5)
    _pay(chain, token, owner, alice, 6)

    indexer = _indexer(database, chain, token, erc20, start, confirmations=1)
    indexer.catch_up()

    with database.begin() as session:
        assert session.get(IndexCursor, chain.chain_id).block_number == chain.block_number() - 1
    assert _ledger_balances(database)[alice.address.lower()] == 5


def test_reindex_rebuilds_identical_tables(database, chain, accounts, erc20):
    owner, alice, bob, carol = accounts
    token, start = _deploy(chain, erc20, owner)
    for to, amount in [(alice, 7), (bob, 8), (carol, 9)]:
        _pay(chain, token, owner, to, amount)
    _pay(chain, token, alice, carol, 3)
    indexer = _indexer(database, chain, token, erc20, start, batch_blocks=2)
    indexer.catch_up()
    tables = (LedgerBlock, LedgerTransaction, LedgerEvent, LedgerTransfer, LedgerBalance)
    before = {t.__tablename__: _rows(database, t) for t in tables}

    indexer.reindex()

    assert {t.__tablename__: _rows(database, t) for t in tables} == before


def test_a_reorg_rolls_back_to_the_common_ancestor(database, anvil, accounts, erc20, tmp_path):
    chain = Chain(anvil.url, state_dir=tmp_path / "state")
    owner, alice, bob, _ = accounts
    token, start = _deploy(chain, erc20, owner)
    _pay(chain, token, owner, alice, 100)
    snapshot = chain.batch([("evm_snapshot", [])])[0]
    orphaned = [_pay(chain, token, owner, alice, 1_000), _pay(chain, token, alice, bob, 50)]
    indexer = _indexer(database, chain, token, erc20, start)
    indexer.catch_up()
    assert _ledger_balances(database)[alice.address.lower()] == 1_050

    # Another history replaces the last two blocks, and grows longer than they were.
    assert chain.batch([("evm_revert", [snapshot])])[0] is True
    chain = Chain(anvil.url, state_dir=tmp_path / "after-revert")  # nonces start afresh
    canonical = [_pay(chain, token, owner, bob, 70) for _ in range(3)]
    indexer.catch_up()

    transfers = _rows(database, LedgerTransfer)
    hashes = {row.tx_hash for row in transfers}
    assert not hashes & set(orphaned)
    assert set(canonical) <= hashes
    people = [owner.address, alice.address, bob.address]
    assert _ledger_balances(database) == _chain_balances(token, people)
    with database.begin() as session:
        blocks = session.execute(sa.select(LedgerBlock.number, LedgerBlock.hash)).all()
    node = chain.batch([("eth_getBlockByNumber", [hex(n), False]) for n, _ in blocks])
    assert [h for _, h in sorted(blocks)] == [b["hash"] for b in node]


def test_a_factorys_contracts_are_followed_from_the_transaction_that_creates_them(database, chain):
    """The wallets the factory creates are indexed from their constructor's event on, across
    new indexers and a reindex; a wallet deployed by hand (not the factory's) is not."""
    accounts = dev_accounts(count=10)
    world = deploy_wallet_world(chain, accounts)
    factory, _ = deploy_factory(chain, world)
    start = chain.block_number()
    creates = Creates(
        "WalletCreated", "wallet", "vehicle_wallet", build.contract("vehicle_wallet").abi
    )
    watched = [Watched(factory.address, "factory", factory.abi, creates)]

    def index() -> list[tuple[str, str, str]]:
        Indexer(database, chain, watched, start_block=start).catch_up()
        with database.begin() as session:
            rows = session.execute(
                sa.select(LedgerEvent.contract, LedgerEvent.address, LedgerEvent.event).order_by(
                    LedgerEvent.block_number, LedgerEvent.log_index
                )
            ).all()
        return [tuple(r) for r in rows]

    alice = accounts[ALICE]
    chain.transact(alice, factory.functions.createWallet(world.title, accounts[DEVICE].address))
    wallet = chain.contract("vehicle_wallet", factory.functions.walletOf(world.title).call())
    token = world.token.address
    chain.transact(alice, wallet.functions.setLimits(token, 2, 10**8, 10**7))
    # Alice also controls the hand-deployed wallet of the world: its events are not ours.
    chain.transact(alice, world.wallet.functions.setLimits(token, 2, 10**8, 10**7))
    ours, factory_address = wallet.address.lower(), factory.address.lower()
    expected = [
        ("vehicle_wallet", ours, "DeviceKeyRotated"),  # the constructor's, before the factory's
        ("factory", factory_address, "WalletCreated"),
        ("vehicle_wallet", ours, "LimitsSet"),
    ]
    assert index() == expected  # created and used within one round

    chain.transact(alice, wallet.functions.freeze())
    chain.transact(alice, world.wallet.functions.freeze())
    expected.append(("vehicle_wallet", ours, "Frozen"))
    assert index() == expected  # a new indexer knows the wallet from the ledger

    before = _rows(database, LedgerEvent)
    Indexer(database, chain, watched, start_block=start).reindex()
    assert _rows(database, LedgerEvent) == before


def test_a_caught_up_indexer_waits_between_rounds(database, chain, accounts, erc20):
    """Nothing to index: one round per interval, not a loop asking the node all the time."""
    token, start = _deploy(chain, erc20, accounts[0])

    class Counting(Indexer):
        rounds = 0

        def run_once(self) -> int:
            Counting.rounds += 1
            return super().run_once()

    indexer = Counting(
        database, chain, [Watched(token.address, "EURC", erc20.abi)], start_block=start
    )
    indexer.catch_up()
    Counting.rounds = 0
    stop = threading.Event()
    runner = threading.Thread(target=indexer.run, args=(stop, 0.2))
    runner.start()
    time.sleep(1.0)
    stop.set()
    runner.join(5)
    assert 1 <= Counting.rounds <= 7
