"""Tests of carpay/chain/node/engine.py's own encodings: byte for byte py-evm's."""

from __future__ import annotations

import pytest
from eth._utils.address import generate_contract_address
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.prague.receipts import PragueReceiptBuilder
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from carpay.chain.node import dev_accounts
from carpay.chain.node.engine import CarpayVM, Engine, decode_transaction, encode_receipt
from carpay.chain.node.store import Store

_logs = st.lists(
    st.builds(
        Log,
        st.binary(min_size=20, max_size=20),
        st.lists(st.integers(0, 2**256 - 1), max_size=4),
        st.binary(max_size=200),
    ),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([b"", b"\x01"]),
    st.one_of(st.integers(0, 300), st.integers(0, 2**63)),
    _logs,
    st.sampled_from([None, 1, 2, 3, 4]),
)
def test_a_receipt_is_encoded_as_py_evm_encodes_it(status, gas_used, logs, type_id):
    receipt = Receipt(state_root=status, gas_used=gas_used, logs=logs)
    if type_id is not None:
        receipt = PragueReceiptBuilder.typed_receipt_class(type_id, receipt)
    assert encode_receipt(receipt) == receipt.encode()


def test_the_next_base_fee_is_the_one_py_evm_gives_the_next_header(tmp_path):
    """Blocks emptier and fuller than their target (half the gas limit) move the base fee
    down and up: the engine says each next one as py-evm's header for the next block has it."""
    sender = dev_accounts(count=1)[0]
    alloc = {bytes.fromhex(sender.address[2:]): 10**21}
    # A gas target of 50,000: two transfers under it, three over.
    engine = Engine(Store(tmp_path), 1337, alloc, gas_limit=100_000)
    nonce = 0
    seen = set()
    for transfers in (0, 1, 3, 4, 2, 0, 4):
        txs = []
        for _ in range(transfers):
            fee = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 1, "type": 2}
            signed = sender.sign_transaction(
                {"to": sender.address, "gas": 21_000, "nonce": nonce, "chainId": 1337, **fee}
            )
            txs.append(decode_transaction(bytes(signed.raw_transaction)))
            nonce += 1
        engine.mine(txs)
        head = engine.head
        expected = engine.chain.create_header_from_parent(
            head, gas_limit=engine._next_gas_limit(head)
        ).base_fee_per_gas
        assert engine.next_base_fee() == expected
        seen.add((expected > head.base_fee_per_gas) - (expected < head.base_fee_per_gas))
    assert seen == {-1, 1}  # down after emptier blocks, up after fuller ones


def test_a_transaction_that_fails_validation_in_its_block_is_dropped_and_the_block_mined(
    tmp_path,
):
    """A sender's first transfer spends what its second needed (both were funded when they
    were pooled), and the payee's first transfer skips a nonce: the block holds the first
    transfer, the two others are dropped with py-evm's reasons (the sender's later ones wait),
    and the state is the first transfer's alone."""
    payer, payee = dev_accounts(count=2)
    alloc = {bytes.fromhex(payer.address[2:]): 10**18}
    engine = Engine(Store(tmp_path), 1337, alloc)
    fee = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1, "type": 2, "chainId": 1337}

    def transfer(sender, nonce: int, value: int):
        signed = sender.sign_transaction(
            {"to": payer.address, "value": value, "gas": 21_000, "nonce": nonce, **fee}
        )
        return decode_transaction(bytes(signed.raw_transaction))

    most = 10**18 - 21_000 * 10**10
    first = payer.sign_transaction(
        {"to": payee.address, "value": most, "gas": 21_000, "nonce": 0, **fee}
    )
    txs = [
        decode_transaction(bytes(first.raw_transaction)),
        transfer(payer, 1, 10**15),
        transfer(payer, 2, 1),
        transfer(payee, 1, 1),
    ]
    result = engine.mine(txs)

    assert result.included == txs[:1]
    assert [tx for tx, _reason in result.dropped] == [txs[1], txs[3]]
    assert result.deferred == [txs[2]]
    balance, nonce = (reason.lower() for _tx, reason in result.dropped)
    assert "balance" in balance and "nonce" in nonce
    assert engine.account(bytes.fromhex(payee.address[2:])) == (0, most)
    assert engine.account(bytes.fromhex(payer.address[2:]))[0] == 1


def test_a_transaction_the_node_fails_to_execute_is_dropped_undone_and_mining_goes_on(
    tmp_path, monkeypatch, caplog
):
    """A fault in the node while it executes one transaction (here: after the transfer has
    moved the value, execution raises) drops that transaction with every change it made, and
    its sender's later ones wait; the rest of the block is mined, and so is the next block.
    Kept, the transaction would fail every block after it and the chain would stop."""
    payer, other = dev_accounts(count=2)
    payee = dev_accounts(count=3)[2]
    alloc = {bytes.fromhex(a.address[2:]): 10**18 for a in (payer, other)}
    engine = Engine(Store(tmp_path), 1337, alloc)
    fee = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1, "type": 2, "chainId": 1337}

    def transfer(sender, nonce: int):
        signed = sender.sign_transaction(
            {"to": payee.address, "value": 5, "gas": 21_000, "nonce": nonce, **fee}
        )
        return decode_transaction(bytes(signed.raw_transaction))

    poison, after_it, fine = transfer(payer, 0), transfer(payer, 1), transfer(other, 0)
    state_class = CarpayVM.get_state_class()
    apply = state_class.apply_transaction

    def faulty(state, tx):
        computation = apply(state, tx)
        if tx.hash == poison.hash:
            raise RuntimeError("a fault in the node")
        return computation

    monkeypatch.setattr(state_class, "apply_transaction", faulty)
    with caplog.at_level("ERROR", logger="carpay.node"):
        result = engine.mine([poison, after_it, fine])

    assert result.included == [fine]
    assert result.dropped == [(poison, "the node failed to execute it")]
    assert result.deferred == [after_it]
    assert "0x" + poison.hash.hex() in caplog.text
    payee_key = bytes.fromhex(payee.address[2:])
    assert engine.account(payee_key) == (0, 5)
    assert engine.account(bytes.fromhex(payer.address[2:])) == (0, 10**18)

    monkeypatch.undo()
    again = engine.mine([transfer(payer, 0)])
    assert len(again.included) == 1 and again.number == result.number + 1
    assert engine.account(payee_key) == (0, 10)


def test_a_block_is_the_one_py_evm_mines_from_the_same_transactions(tmp_path):
    """The engine builds blocks its own way (its receipts, its tries, its opcode loop, its
    header); py-evm's own mining chain, from the same genesis, mines the same transactions
    (a deployment, transfers with logs, one that reverts, one that clears a slot for a
    refund, one paying EIP-7623's call-data floor, legacy, access-list and fee-market ones, an
    EIP-7702 delegation and a call of the delegated code, calls logging three times, with no
    topic and no data among them) into the same block, receipts included."""
    from eth.chains.base import MiningChain
    from eth.db.atomic import AtomicDB
    from eth.vm.forks import PragueVM
    from eth_abi import encode

    from carpay.chain.build import compile_contract

    alice, bob = dev_accounts(count=2)
    alloc = {bytes.fromhex(a.address[2:]): 10**21 for a in (alice, bob)}
    engine = Engine(Store(tmp_path), 1337, alloc)
    genesis = engine.chain.get_canonical_head()
    theirs = MiningChain.configure(vm_configuration=((0, PragueVM),), chain_id=1337).from_genesis(
        AtomicDB(),
        {
            "difficulty": 0,
            "gas_limit": genesis.gas_limit,
            "timestamp": genesis.timestamp,
            "coinbase": genesis.coinbase,
            "nonce": genesis.nonce,
            "extra_data": genesis.extra_data,
            "base_fee_per_gas": genesis.base_fee_per_gas,
        },
        {a: {"balance": b, "nonce": 0, "code": b"", "storage": {}} for a, b in alloc.items()},
    )
    assert theirs.get_canonical_head() == genesis

    token = compile_contract("tests/contracts/plain_erc20.vy")
    address = to_checksum_address(generate_contract_address(bytes.fromhex(alice.address[2:]), 0))
    market = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 7, "type": 2, "chainId": 1337}

    def call(fn: str, to: str, amount: int) -> bytes:
        return function_signature_to_4byte_selector(f"{fn}(address,uint256)") + encode(
            ["address", "uint256"], [to, amount]
        )

    # A contract whose every call logs three times: no topic and no data, two topics and a
    # word, one topic and a word.
    runtime = bytes.fromhex("60006000a0602a60005260bb60aa60206000a2600160206000a100")
    logger_init = bytes([0x60, len(runtime), 0x60, 12, 0x60, 0, 0x39, 0x60, len(runtime)])
    logger_init += bytes([0x60, 0, 0xF3]) + runtime
    logger = to_checksum_address(generate_contract_address(bytes.fromhex(bob.address[2:]), 0))
    # EIP-7702: alice's account runs the logger's code once her authorization is mined (its
    # nonce is hers then: four of her transactions come before it).
    delegation = alice.sign_authorization({"chainId": 1337, "address": logger, "nonce": 4})
    plan = [
        (alice, {"data": token.bytecode, "gas": 3_000_000, **market}),
        (bob, {"data": logger_init, **market}),
        (alice, {"to": logger, **market}),
        (alice, {"to": address, "data": call("transfer", bob.address, 500), **market}),
        (bob, {"to": address, "data": call("transfer", alice.address, 10**30), **market}),
        (bob, {"to": address, "data": call("transfer", alice.address, 500), **market}),
        (alice, {"to": bob.address, "value": 3, "gasPrice": 10**10, "chainId": 1337}),
        # call data that costs more at EIP-7623's floor than in execution
        (bob, {"to": alice.address, "data": b"\x01" * 3_000, **market}),
        (
            bob,
            {
                "to": address,
                "data": call("approve", alice.address, 1),
                "accessList": [{"address": address, "storageKeys": []}],
                "gasPrice": 10**10,
                "chainId": 1337,
                "type": 1,
            },
        ),
        (bob, {"to": alice.address, "authorizationList": [delegation], **market, "type": 4}),
        (bob, {"to": alice.address, **market}),  # runs alice's delegated code: three logs
    ]
    nonces = {alice.address: 0, bob.address: 0}
    txs = []
    for sender, fields in plan:
        fields = {"gas": 200_000, **fields, "nonce": nonces[sender.address]}
        nonces[sender.address] += 1
        txs.append(decode_transaction(bytes(sender.sign_transaction(fields).raw_transaction)))

    timestamp = genesis.timestamp + 12
    ours = engine.mine(txs, timestamp=timestamp)
    theirs.header = theirs.create_header_from_parent(
        genesis, timestamp=timestamp, gas_limit=engine._next_gas_limit(genesis)
    )
    block, receipts, _computations = theirs.mine_all(txs)

    assert ours.included == txs and not ours.dropped
    assert engine.head == block.imported_block.header
    statuses = [r["status"] for r in ours.receipts]
    assert statuses == ["0x1"] * 4 + ["0x0"] + ["0x1"] * 6
    assert int(ours.receipts[7]["gasUsed"], 16) == 21_000 + 10 * 4 * 3_000  # the floor
    assert [len(ours.receipts[i]["logs"]) for i in (2, 10)] == [3, 3]
    assert [log["topics"] for log in ours.receipts[10]["logs"]] == [
        [],
        ["0x" + "aa".rjust(64, "0"), "0x" + "bb".rjust(64, "0")],
        ["0x" + "1".rjust(64, "0")],
    ]
    delegated = engine.code_at(bytes.fromhex(alice.address[2:]))
    assert delegated == b"\xef\x01\x00" + bytes.fromhex(logger[2:])
    assert [r["logsBloom"] for r in ours.receipts] == [
        "0x" + r.bloom.to_bytes(256, "big").hex() for r in receipts
    ]
    assert [int(r["cumulativeGasUsed"], 16) for r in ours.receipts] == [
        r.gas_used for r in receipts
    ]


def test_a_storage_fault_while_executing_fails_the_block_and_drops_nothing(tmp_path, monkeypatch):
    """A fault of the storage or the machine (here an OSError) may pass: the block fails, to
    be tried again with its transactions, none of which is dropped for it."""
    payer, payee = dev_accounts(count=2)
    engine = Engine(Store(tmp_path), 1337, {bytes.fromhex(payer.address[2:]): 10**18})
    signed = payer.sign_transaction(
        {
            "to": payee.address,
            "value": 5,
            "gas": 21_000,
            "nonce": 0,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "chainId": 1337,
        }
    )
    tx = decode_transaction(bytes(signed.raw_transaction))

    def failing(state, tx):
        raise OSError("no space left on device")

    monkeypatch.setattr(CarpayVM.get_state_class(), "apply_transaction", failing)
    with pytest.raises(OSError, match="no space"):
        engine.mine([tx])
    assert engine.store.get_committed(engine.store.index, b"d" + tx.hash) is None
