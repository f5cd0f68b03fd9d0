"""The Node object: data directory ownership, chain identity, block interval, production mode."""

from __future__ import annotations

import asyncio
import time

import pytest
from eth_account import Account
from web3 import Web3

from carpay.chain.node import Node, dev_accounts
from carpay.chain.node.pool import Rejected
from carpay.chain.node.split import SplitNode
from carpay.errors import NodeError

#: The node in one process, and as ``carpay node`` runs it.
BOTH = pytest.mark.parametrize("kind", [Node, SplitNode], ids=["one-process", "split"])


def test_a_second_node_on_the_same_data_directory_is_refused(tmp_path):
    first = Node(tmp_path, port=0)
    first.open()
    try:
        with pytest.raises(NodeError, match="another node is using"):
            Node(tmp_path, port=0).open()
    finally:
        first.close()
    again = Node(tmp_path, port=0)
    again.open()  # the lock goes with the node that held it
    again.close()


def test_the_data_directory_keeps_its_chain_id(tmp_path):
    node = Node(tmp_path, port=0, chain_id=1337)
    node.open()
    node.close()
    other = Node(tmp_path, port=0, chain_id=5)
    with pytest.raises(NodeError, match="holds chain id 1337, not 5"):
        other.open()
    retry = Node(tmp_path, port=0, chain_id=1337)  # the refused node let go of the directory
    retry.open()
    retry.close()


@BOTH
def test_block_time_mines_blocks_without_transactions(tmp_path, kind):
    node = kind(tmp_path, port=0, block_time=0.2).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deadline = time.monotonic() + 30
        while w3.eth.block_number < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w3.eth.block_number >= 3
        latest = w3.eth.get_block("latest")
        assert latest.transactions == []
        assert latest.timestamp > w3.eth.get_block(1).timestamp
    finally:
        node.stop()


@BOTH
def test_block_time_mode_still_mines_sent_transactions(tmp_path, kind):
    node = kind(tmp_path, port=0, block_time=0.2).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        sender, recipient = dev_accounts(count=2)
        tx = {
            "to": recipient.address,
            "value": 5,
            "gas": 21_000,
            "nonce": 0,
            "chainId": 1337,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
        }
        tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30).status == 1
    finally:
        node.stop()


@BOTH
def test_production_mode_funds_no_account(tmp_path, kind):
    node = kind(tmp_path, port=0, mnemonic=None).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        assert node.addresses == []
        assert w3.eth.get_balance(dev_accounts(count=1)[0].address) == 0
        assert w3.eth.accounts == []
    finally:
        node.stop()


def test_the_block_gas_limit_holds_steady_over_many_blocks(tmp_path):
    # Empty blocks once made py-evm lower the limit by 1/1024 each, until deployments no
    # longer fitted in a long-running node.
    node = Node(tmp_path, port=0, block_time=0.02).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        deadline = time.monotonic() + 60
        while w3.eth.block_number < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        limits = {w3.eth.get_block(n).gasLimit for n in range(w3.eth.block_number + 1)}
        assert w3.eth.block_number >= 40
        assert limits == {30_000_000}
    finally:
        node.stop()


def test_calls_on_the_head_see_the_time_move_on(tmp_path):
    """A call runs in a pending block stamped when the node made the state it runs in; the
    node makes that state again each second, so that deadlines checked by calls keep up with
    the clock while no block is mined."""
    node = Node(tmp_path, port=0).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url))
        # Creation code that returns the block's timestamp (TIMESTAMP PUSH0 MSTORE PUSH1 32
        # PUSH0 RETURN): a call of it answers with that word.
        now = {"data": "0x425f5260205ff3"}
        # A pending block is stamped at least a second after its parent: once the clock is
        # past that, the stamp is the clock's.
        time.sleep(max(0.0, w3.eth.get_block("latest").timestamp + 1.2 - time.time()))
        before = int.from_bytes(w3.eth.call(now), "big")
        assert abs(before - time.time()) < 2
        time.sleep(1.1)
        assert int.from_bytes(w3.eth.call(now), "big") > before
    finally:
        node.stop()


@pytest.mark.parametrize("replaced", [False, True], ids=["sent-again", "replaced-first"])
def test_a_transaction_a_block_dropped_may_be_sent_again_and_survives_a_restart(tmp_path, replaced):
    """A block drops a transfer its sender could no longer pay for; once the sender is
    funded, the same signed bytes are accepted again (as any node would), and once
    acknowledged they are not lost: the node stopped before mining them replays them.
    If another transfer with its nonce was pooled first, sending it again is refused (an
    underpriced replacement), and it stays dropped: the restart mines the other one."""
    bank = dev_accounts(count=1)[0]
    payer, payee = Account.create(), Account.create()
    fee = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1, "chainId": 1337, "gas": 21_000}
    cost = 21_000 * 10**10

    def signed(sender, nonce: int, to: str, value: int) -> bytes:
        tx = {"to": to, "value": value, "nonce": nonce, **fee}
        return bytes(sender.sign_transaction(tx).raw_transaction)

    node = Node(tmp_path, port=0, block_time=3600)  # mines only when told to
    node.open()
    try:

        def send(raw: bytes) -> None:
            node.run(node.submit, raw).result()
            asyncio.run(node.journaled(raw))

        def send_and_mine(*raws: bytes) -> None:
            for raw in raws:
                send(raw)
            node.run(node.mine).result()

        send_and_mine(signed(bank, 0, payer.address, 2 * cost))
        dropped = signed(payer, 1, payee.address, 1)
        send_and_mine(signed(payer, 0, payee.address, cost), dropped)
        payer_key = bytes.fromhex(payer.address[2:])
        nonce, balance = node.engine.account(payer_key)
        assert nonce == 1 and balance < cost  # the second could not be paid for: dropped

        send_and_mine(signed(bank, 1, payer.address, cost))
        if replaced:
            send(signed(payer, 1, payee.address, 2))
            with pytest.raises(Rejected, match="underpriced"):
                node.run(node.submit, dropped).result()
        else:
            send(dropped)
    finally:
        node.close()  # before the block that would have held it

    again = Node(tmp_path, port=0)
    again.open()
    try:
        assert again.engine.account(payer_key)[0] == 2
        payee_balance = again.engine.account(bytes.fromhex(payee.address[2:]))[1]
        assert payee_balance == cost + (2 if replaced else 1)
    finally:
        again.close()
