"""web3.py end to end: what a Python dapp does, on the embedded node and on anvil alike."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.exceptions import ContractLogicError
from web3.middleware import SignAndSendRawMiddlewareBuilder


@pytest.fixture
def w3(rpc, funded) -> Web3:
    """web3.py over HTTP, signing locally for ``funded``, its default account."""
    w3 = Web3(Web3.HTTPProvider(rpc.url, request_kwargs={"timeout": 30}))
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(funded), layer=0)
    w3.eth.default_account = funded.address
    return w3


@pytest.fixture
def contract(w3, tester_build):
    """A tester deployed through web3.py's contract factory."""
    factory = w3.eth.contract(abi=tester_build["abi"], bytecode=tester_build["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact(), timeout=10)
    assert receipt.status == 1
    return w3.eth.contract(address=receipt.contractAddress, abi=tester_build["abi"])


def test_web3_sees_the_chain(w3):
    assert w3.is_connected()
    assert w3.eth.chain_id == 1337
    assert w3.net.version == "1337"
    assert w3.eth.block_number == w3.eth.get_block("latest").number
    assert w3.eth.get_block(0).number == 0
    assert w3.eth.syncing is False


def test_web3_fills_in_and_sends_a_transfer(w3, funded):
    recipient = Account.create().address
    before = w3.eth.get_balance(funded.address)
    # web3 picks nonce, gas (eth_estimateGas) and fees (eth_maxPriorityFeePerGas, the block)
    tx_hash = w3.eth.send_transaction({"to": recipient, "value": Web3.to_wei(1, "gwei")})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
    assert receipt.status == 1 and receipt.gasUsed == 21_000
    assert w3.eth.get_balance(recipient) == Web3.to_wei(1, "gwei")
    fee = receipt.gasUsed * receipt.effectiveGasPrice
    assert w3.eth.get_balance(funded.address) == before - Web3.to_wei(1, "gwei") - fee
    tx = w3.eth.get_transaction(tx_hash)
    assert (tx["from"], tx.to, tx.nonce, tx.type) == (funded.address, recipient, 0, 2)
    block = w3.eth.get_block(receipt.blockNumber, full_transactions=True)
    assert tx_hash in [t.hash for t in block.transactions]


def test_web3_deploys_calls_and_reads_events(w3, contract, funded):
    assert contract.functions.twice(21).call() == 42
    assert w3.eth.get_code(contract.address) != b""
    receipt = w3.eth.wait_for_transaction_receipt(contract.functions.ping(7).transact(), timeout=10)
    (event,) = contract.events.Pinged().process_receipt(receipt)
    assert event.args == {"sender": funded.address, "n": 7, "note": "tester: pinged"}
    assert contract.functions.pings().call() == 1
    (found,) = contract.events.Pinged.get_logs(from_block=receipt.blockNumber)
    assert found.args.n == 7 and found.transactionHash == receipt.transactionHash
    assert contract.events.Pinged.get_logs(argument_filters={"n": 8}, from_block=0) == []


def test_web3_decodes_a_revert(w3, contract):
    with pytest.raises(ContractLogicError) as call_failed:
        contract.functions.no().call()
    assert call_failed.value.message == "execution reverted: tester: no"
    assert call_failed.value.data.startswith("0x08c379a0")
    with pytest.raises(ContractLogicError, match="tester: no"):
        contract.functions.no().transact()  # fails in eth_estimateGas, before signing


def test_web3_filters_report_new_events_and_blocks(w3, contract):
    events = contract.events.Pinged.create_filter(from_block="latest")
    blocks = w3.eth.filter("latest")
    assert events.get_new_entries() == [] and blocks.get_new_entries() == []
    receipt = w3.eth.wait_for_transaction_receipt(contract.functions.ping(3).transact(), timeout=10)
    (entry,) = events.get_new_entries()
    assert entry.args.n == 3 and entry.blockHash == receipt.blockHash
    assert blocks.get_new_entries() == [receipt.blockHash]
    assert w3.eth.uninstall_filter(blocks.filter_id)


def test_web3_batches_requests(w3, funded):
    with w3.batch_requests() as batch:
        batch.add(w3.eth.get_block(0))
        batch.add(w3.eth.get_balance(funded.address))
        batch.add(w3.eth.get_transaction_count(funded.address))
        genesis, balance, nonce = batch.execute()
    assert genesis.number == 0 and balance == 10 * 10**18 and nonce == 0


def test_web3_reads_fee_history(w3):
    history = w3.eth.fee_history(2, "latest", [50])
    assert len(history.baseFeePerGas) == 3 and len(history.reward) == 2
    assert w3.eth.max_priority_fee == 10**9
    assert w3.eth.gas_price >= history.baseFeePerGas[-1]


def test_web3_websocket_subscriptions(rpc, funded, tester):
    async def run() -> tuple[dict, dict, dict]:
        # WebSocketProvider sends binary frames: the embedded node once ignored them
        ws_url = rpc.url.replace("http://", "ws://", 1)
        async with AsyncWeb3(WebSocketProvider(ws_url)) as w3:
            assert await w3.eth.chain_id == 1337
            heads = await w3.eth.subscribe("newHeads")
            logs = await w3.eth.subscribe("logs", {"address": tester})
            nonce = await w3.eth.get_transaction_count(funded.address, "pending")
            raw = rpc.sign(funded, nonce=nonce, to=tester, data=rpc.calldata("ping(uint256)", 5))
            tx_hash = await w3.eth.send_raw_transaction(raw)
            receipt = await w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
            got: dict = {}
            stream = w3.socket.process_subscriptions()
            while len(got) < 2:
                message = await asyncio.wait_for(stream.__anext__(), 10)
                got[message["subscription"]] = message["result"]
            assert await w3.eth.unsubscribe(heads) and await w3.eth.unsubscribe(logs)
            return receipt, got[heads], got[logs]

    receipt, head, log = asyncio.run(run())
    assert head["number"] == receipt["blockNumber"]
    assert head["hash"] == receipt["blockHash"]
    assert log["transactionHash"] == receipt["transactionHash"]
    assert log["address"] == tester
    assert int.from_bytes(log["topics"][2], "big") == 5
