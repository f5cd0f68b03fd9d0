"""Tests of carpay/services/relayer.py on real nodes: sent once, mined, confirmed, whatever happens.

Every test runs on the embedded node and on anvil, each with SQLite and PostgreSQL. Payees
are fresh random addresses, so "paid exactly once" is a plain balance check.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from eth_account import Account
from eth_utils import to_checksum_address

from carpay.chain import Chain, compile_contract
from carpay.chain.node import Node
from carpay.ledger.models import OutboxIntent, OutboxTransaction, WebhookEvent, utcnow
from carpay.services.outbox import Outbox
from carpay.services.relayer import HOOK_STEPS, Relayer
from carpay.services.transfers import Transfers
from carpay.services.webhooks import Webhooks
from carpay.settings import DEV_MNEMONIC
from carpay.testing import Anvil

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
#: The relayer's key in these tests: development account 9, like the platform's default.
RELAYER_INDEX = 9


class Crash(Exception):
    """Stands for the process dying at a hook step."""


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def dev_account(index: int):
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


def fresh_address() -> str:
    return to_checksum_address(os.urandom(20))


@pytest.fixture(scope="session")
def signer():
    return dev_account(RELAYER_INDEX)


@pytest.fixture(scope="session")
def plain_erc20():
    return compile_contract(CONTRACTS / "plain_erc20.vy")


@pytest.fixture(scope="session")
def tokens():
    """The token deployed by the relayer on each node, deployed once per node."""
    return {}


@pytest.fixture
def chain(node_url, tmp_path) -> Chain:
    return Chain(node_url, state_dir=tmp_path / "state")


@pytest.fixture
def token(chain, signer, plain_erc20, tokens):
    """The plain ERC-20 whose whole supply the relayer's account holds."""
    if chain.url not in tokens:
        tokens[chain.url] = chain.deploy(plain_erc20, sender=signer)
    return chain.contract(plain_erc20, tokens[chain.url])


@pytest.fixture
def clock():
    return Clock()


def crash_at(step: str):
    """A relayer hook that dies at ``step``."""

    def hook(at: str, _intent_id: int) -> None:
        if at == step:
            raise Crash(at)

    return hook


def make_relayer(database, chain, signer, **kw) -> Relayer:
    kw.setdefault("retry_delay", timedelta(0))
    return Relayer(database, chain, signer, **kw)


def request_transfer(
    database, chain, signer, *, to, amount, token=None, gas_limit=None, clock=utcnow
):
    transfers = Transfers(Outbox(sender=signer.address, chain_id=chain.chain_id, clock=clock))
    with database.begin() as s:
        intent = transfers.request(s, owner="m1", to=to, amount_minor=amount, token=token)
        if gas_limit is not None:
            intent.gas_limit = gas_limit
        return intent.id


def intent_of(database, intent_id) -> OutboxIntent:
    with database.begin() as s:
        intent = s.get(OutboxIntent, intent_id)
        intent.transactions  # noqa: B018 (loaded while the session is open)
        return intent


def drive(relayer, database, intent_id, *, timeout=30.0) -> OutboxIntent:
    """Run the relayer until the intent is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        relayer.run_once()
        intent = intent_of(database, intent_id)
        if intent.state in ("confirmed", "failed"):
            return intent
        time.sleep(0.02)
    raise AssertionError(f"intent {intent_id} still {intent_of(database, intent_id).state}")


def mined_count(chain, address) -> int:
    return chain.w3.eth.get_transaction_count(address, "latest")


# -- the happy path and reverts -------------------------------------------------------------


def test_ether_transfer_is_sent_mined_and_confirmed(database, chain, signer):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    intent_id = request_transfer(database, chain, signer, to=payee, amount=12_345)
    webhooks = Webhooks()
    relayer = make_relayer(database, chain, signer, webhooks=webhooks)

    intent = drive(relayer, database, intent_id)

    assert intent.state == "confirmed" and intent.error is None
    assert chain.w3.eth.get_balance(payee) == 12_345
    assert mined_count(chain, signer.address) == sent_before + 1
    [tx] = intent.transactions
    assert (tx.status, tx.tx_hash, tx.nonce) == ("mined", intent.tx_hash, intent.nonce)
    receipt = chain.receipt(intent.tx_hash)
    assert receipt["status"] == 1 and receipt["blockNumber"] == intent.block_number
    with database.begin() as s:
        [event] = s.scalars(sa.select(WebhookEvent)).all()
        assert (event.id, event.type) == (
            f"evt_transfer_{intent_id}_succeeded",
            "transfer.succeeded",
        )
        assert event.data["state"] == "confirmed" and event.data["tx_hash"] == intent.tx_hash
    assert relayer.run_once() is False  # nothing left to do


def test_token_transfer_is_confirmed(database, chain, signer, token):
    payee = fresh_address()
    intent_id = request_transfer(
        database, chain, signer, to=payee, amount=2_500_000, token=token.address
    )

    intent = drive(make_relayer(database, chain, signer), database, intent_id)

    assert intent.state == "confirmed"
    assert chain.call(token.functions.balanceOf(payee)) == 2_500_000


def test_a_transfer_that_would_revert_fails_without_sending(database, chain, signer, token):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    supply = chain.call(token.functions.totalSupply())
    intent_id = request_transfer(
        database, chain, signer, to=payee, amount=supply + 1, token=token.address
    )
    webhooks = Webhooks()

    intent = drive(make_relayer(database, chain, signer, webhooks=webhooks), database, intent_id)

    assert intent.state == "failed"
    assert "erc20" in intent.error and "balance" in intent.error
    assert intent.transactions == [] and intent.tx_hash is None
    assert mined_count(chain, signer.address) == sent_before
    with database.begin() as s:
        assert s.scalars(sa.select(WebhookEvent.type)).all() == ["transfer.failed"]


def test_a_call_that_needs_an_earlier_intent_waits_for_it(database, chain, signer, token):
    """An approval, then the transferFrom that spends it: the second one's estimate reverts
    until the first is mined, so it waits instead of failing; paid once."""
    payee = fresh_address()
    outbox = Outbox(sender=signer.address, chain_id=chain.chain_id)
    spend = bytes.fromhex(
        token.functions.transferFrom(signer.address, payee, 7)._encode_transaction_data()[2:]
    )
    with database.begin() as s:
        approval = outbox.approve(
            s,
            owner="m1",
            contract=token.address,
            spender=signer.address,
            amount_or_id=7,
            purpose="spend",
        )
        spent = outbox.enqueue(s, kind="spend", owner="m1", to=token.address, data=spend)
        approval_id, spent_id = approval.id, spent.id

    intent = drive(make_relayer(database, chain, signer), database, spent_id)

    assert intent.state == "confirmed", intent.error
    assert intent_of(database, approval_id).state == "confirmed"
    assert chain.call(token.functions.balanceOf(payee)) == 7
    # Nothing in flight before it: the same call now reverts and fails, sending nothing.
    with database.begin() as s:
        again = outbox.enqueue(s, kind="spend", owner="m1", to=token.address, data=spend).id
    intent = drive(make_relayer(database, chain, signer), database, again)
    assert intent.state == "failed" and intent.transactions == []
    assert chain.call(token.functions.balanceOf(payee)) == 7


def test_a_transfer_reverted_on_chain_fails_and_is_not_sent_again(database, chain, signer, token):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    supply = chain.call(token.functions.totalSupply())
    # A gas limit given up front skips the estimate: the transaction is mined, and reverts.
    intent_id = request_transfer(
        database,
        chain,
        signer,
        to=payee,
        amount=supply + 1,
        token=token.address,
        gas_limit=100_000,
    )
    relayer = make_relayer(database, chain, signer)

    intent = drive(relayer, database, intent_id)
    for _ in range(5):
        relayer.run_once()

    assert intent.state == "failed" and "balance" in intent.error
    [tx] = intent_of(database, intent_id).transactions
    assert tx.status == "mined" and chain.receipt(tx.tx_hash)["status"] == 0
    assert mined_count(chain, signer.address) == sent_before + 1
    assert chain.call(token.functions.balanceOf(payee)) == 0


def test_a_transaction_that_ran_out_of_gas_is_estimated_and_sent_again(
    database, chain, signer, token
):
    """A gas limit from an estimate made in another state of the chain can fall short: the
    transaction runs out of gas and changes nothing, so the intent is estimated and sent
    again, and paid exactly once."""
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    # Enough to start (the intrinsic gas), not to finish: the token's write to a fresh slot.
    intent_id = request_transfer(
        database, chain, signer, to=payee, amount=5, token=token.address, gas_limit=30_000
    )
    signings = []

    def die_before_broadcasting_the_second(step: str, _intent_id: int) -> None:
        signings.extend([step] if step == "signed" else [])
        if len(signings) == 2:
            raise Crash(step)

    with pytest.raises(Crash):
        drive(
            make_relayer(database, chain, signer, hook=die_before_broadcasting_the_second),
            database,
            intent_id,
        )
    # Restarted with the second transaction signed, not sent: the first one's receipt (out of
    # gas) belongs to the round before, and the second is sent as recorded.
    relayer = make_relayer(database, chain, signer)
    intent = drive(relayer, database, intent_id)
    for _ in range(3):
        relayer.run_once()

    assert intent.state == "confirmed" and intent.attempts == 1
    assert chain.call(token.functions.balanceOf(payee)) == 5
    assert mined_count(chain, signer.address) == sent_before + 2
    short, enough = intent_of(database, intent_id).transactions
    assert chain.receipt(short.tx_hash)["status"] == 0
    assert short.status == "mined" and "ran out of gas: used 30000 of 30000" in short.error
    assert (enough.status, enough.tx_hash) == ("mined", intent.tx_hash)
    assert intent.gas_limit > 30_000


def test_an_estimate_the_node_refuses_without_a_revert_fails_after_max_attempts(
    database, chain, signer
):
    """A call that hits an invalid instruction is no revert: the node's refusal of its
    estimate is tried again, with backoff, and the intent fails after ``max_attempts``,
    sending nothing (a node out of reach, on the other hand, is waited for)."""
    # Creation code of a contract whose code is INVALID (0xfe): PUSH1 fe, PUSH0, MSTORE8,
    # PUSH1 1, PUSH0, RETURN.
    created = chain.transact(signer, None, bytes.fromhex("60fe5f5360015ff3"))
    invalid, sent_before = created["contractAddress"], mined_count(chain, signer.address)
    outbox = Outbox(sender=signer.address, chain_id=chain.chain_id)
    with database.begin() as s:
        intent_id = outbox.enqueue(s, kind="call", owner="m1", to=invalid, data=b"\x01").id
    relayer = make_relayer(database, chain, signer, max_attempts=3, webhooks=Webhooks())

    intent = drive(relayer, database, intent_id)

    assert intent.state == "failed" and intent.attempts == 3
    assert "the node refused the estimate" in intent.error
    assert intent.transactions == [] and mined_count(chain, signer.address) == sent_before
    with database.begin() as s:
        assert s.scalars(sa.select(WebhookEvent.type)).all() == ["call.failed"]


def test_out_of_gas_with_the_intent_signed_again_at_another_nonce_tracks_that_one(
    database, chain, signer
):
    """A receipt of an earlier nonce that comes after the intent was signed again at another
    nonce (_renonce) and ran out of gas: the later transaction is alive and may still be
    mined, so the intent is not signed a third time; it keeps tracking that one."""
    relayer = make_relayer(database, chain, signer)
    intent = OutboxIntent(
        id=1, kind="transfer", owner="m1", state="sent", nonce=8, gas_limit=50_000, attempts=0
    )
    early = OutboxTransaction(id=1, nonce=7, tx_hash="0x01", status="rejected")
    later = OutboxTransaction(id=2, nonce=8, tx_hash="0x02", status="broadcast")
    intent.transactions = [early, later]

    relayer._finish_in(intent, early.id, error="reverted without a reason", gas_used=50_000)

    assert (intent.state, intent.nonce, intent.attempts) == ("sent", 8, 0)
    assert (early.status, later.status) == ("mined", "broadcast")
    assert "ran out of gas" in early.error


def test_intents_of_another_sender_are_left_alone(database, chain, signer):
    other = dev_account(RELAYER_INDEX - 1)
    intent_id = request_transfer(database, chain, other, to=fresh_address(), amount=1)

    assert make_relayer(database, chain, signer).run_once() is False
    assert intent_of(database, intent_id).state == "pending"


def test_several_intents_take_consecutive_nonces(database, chain, signer):
    payees = [fresh_address() for _ in range(4)]
    ids = [request_transfer(database, chain, signer, to=p, amount=7) for p in payees]
    relayer = make_relayer(database, chain, signer)

    intents = [drive(relayer, database, i) for i in ids]

    assert all(i.state == "confirmed" for i in intents)
    nonces = [i.nonce for i in intents]
    assert nonces == list(range(nonces[0], nonces[0] + 4))
    assert [chain.w3.eth.get_balance(p) for p in payees] == [7] * 4


class BatchLog(Chain):
    """A real client that notes the methods of every JSON-RPC batch it sends."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.batches: list[list[str]] = []

    def batch(self, calls, **kw):
        self.batches.append([method for method, _params in calls])
        return super().batch(calls, **kw)


def test_a_pass_sends_its_pending_intents_in_one_batch(database, chain, signer):
    """One pass signs every pending intent (one database transaction) and broadcasts them
    in one JSON-RPC batch, so the node gets them together."""
    payees = [fresh_address() for _ in range(5)]
    ids = [request_transfer(database, chain, signer, to=p, amount=3) for p in payees]
    logged = BatchLog(chain.url, state_dir=chain.state_dir)
    relayer = make_relayer(database, logged, signer)

    assert relayer.run_once() is True
    sent = [intent_of(database, i) for i in ids]
    assert [i.state for i in sent] == ["sent"] * 5
    broadcasts = [b for b in logged.batches if "eth_sendRawTransaction" in b]
    assert broadcasts == [["eth_sendRawTransaction"] * 5]
    intents = [drive(relayer, database, i) for i in ids]
    assert [i.state for i in intents] == ["confirmed"] * 5
    assert [chain.w3.eth.get_balance(p) for p in payees] == [3] * 5


def test_an_intent_is_done_only_once_its_block_has_its_confirmations(
    database, chain, signer, tmp_path
):
    """With confirmations=2 the transfer is mined at once but confirmed, and its webhook
    event published, only once two more blocks are on top of its block."""
    payee = fresh_address()
    intent_id = request_transfer(database, chain, signer, to=payee, amount=11)
    webhooks = Webhooks()
    relayer = make_relayer(database, chain, signer, webhooks=webhooks, confirmations=2)
    other, others = dev_account(3), Chain(chain.url, state_dir=tmp_path / "other")

    deadline = time.monotonic() + 30
    receipt = None
    while receipt is None and time.monotonic() < deadline:
        relayer.run_once()
        intent = intent_of(database, intent_id)
        receipt = intent.tx_hash and chain.receipt(intent.tx_hash)
    assert receipt is not None and chain.w3.eth.get_balance(payee) == 11
    for on_top in range(2):
        if on_top:
            others.transact(other, fresh_address(), value=1, gas=21_000)
        while chain.block_number() < receipt["blockNumber"] + on_top:
            time.sleep(0.02)
        relayer.run_once()
        assert intent_of(database, intent_id).state == "sent", on_top
        with database.begin() as s:
            assert s.scalars(sa.select(WebhookEvent.type)).all() == []
    others.transact(other, fresh_address(), value=1, gas=21_000)
    intent = drive(relayer, database, intent_id)
    assert (intent.state, intent.block_number) == ("confirmed", receipt["blockNumber"])
    with database.begin() as s:
        assert s.scalars(sa.select(WebhookEvent.type)).all() == ["transfer.succeeded"]


# -- crashes: a new relayer on the same database finishes the job, once ----------------------


def crash_and_restart(database, chain, signer, hook) -> Relayer:
    """Run a relayer until ``hook`` crashes it; then the relayer of a restart: a new process,
    with a new client, on the same database."""
    doomed = make_relayer(database, chain, signer, hook=hook)
    deadline = time.monotonic() + 30
    with pytest.raises(Crash):
        while time.monotonic() < deadline:
            doomed.run_once()
            time.sleep(0.02)
    return make_relayer(database, Chain(chain.url, state_dir=chain.state_dir), signer)


@pytest.mark.parametrize("step", HOOK_STEPS)
def test_a_crash_at_any_step_pays_exactly_once(database, chain, signer, token, step):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    intent_id = request_transfer(
        database, chain, signer, to=payee, amount=1_000_000, token=token.address
    )

    restarted = crash_and_restart(database, chain, signer, crash_at(step))
    intent = drive(restarted, database, intent_id)
    for _ in range(3):
        restarted.run_once()

    assert intent.state == "confirmed"
    assert chain.call(token.functions.balanceOf(payee)) == 1_000_000
    assert mined_count(chain, signer.address) == sent_before + 1
    assert [t.status for t in intent_of(database, intent_id).transactions] == ["mined"]


@pytest.mark.parametrize("step", HOOK_STEPS)
def test_a_crash_at_any_step_of_a_batch_pays_each_exactly_once(
    database, chain, signer, token, step
):
    """The crash comes at the step of the second intent of three that one pass handles."""
    payees, sent_before = [fresh_address() for _ in range(3)], mined_count(chain, signer.address)
    ids = [
        request_transfer(database, chain, signer, to=p, amount=41, token=token.address)
        for p in payees
    ]

    def crash_at_second(at, intent_id):
        if at == step and intent_id == ids[1]:
            raise Crash(at)

    restarted = crash_and_restart(database, chain, signer, crash_at_second)
    intents = [drive(restarted, database, i) for i in ids]
    for _ in range(3):
        restarted.run_once()

    assert [i.state for i in intents] == ["confirmed"] * 3
    assert [chain.call(token.functions.balanceOf(p)) for p in payees] == [41] * 3
    assert mined_count(chain, signer.address) == sent_before + 3
    for i in ids:
        assert [t.status for t in intent_of(database, i).transactions] == ["mined"]


def test_a_transaction_signed_but_never_broadcast_is_sent_as_recorded(database, chain, signer):
    payee = fresh_address()
    intent_id = request_transfer(database, chain, signer, to=payee, amount=5)

    with pytest.raises(Crash):
        make_relayer(database, chain, signer, hook=crash_at("signed")).run_once()
    recorded = intent_of(database, intent_id).transactions[0]
    assert recorded.status == "signed" and chain.receipt(recorded.tx_hash) is None

    intent = drive(make_relayer(database, chain, signer), database, intent_id)

    assert intent.tx_hash == recorded.tx_hash  # the very same bytes, not a second signature
    assert chain.w3.eth.get_balance(payee) == 5


# -- someone else takes the nonce -------------------------------------------------------------


def test_a_nonce_taken_by_another_sender_is_signed_again(database, chain, signer, tmp_path):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    intent_id = request_transfer(database, chain, signer, to=payee, amount=9)

    with pytest.raises(Crash):
        make_relayer(database, chain, signer, hook=crash_at("signed")).run_once()
    first = intent_of(database, intent_id)
    # Another program holding the same key sends first and takes the recorded nonce.
    intruder = Chain(chain.url, state_dir=tmp_path / "intruder")
    receipt = chain.wait(intruder.send(signer, fresh_address(), value=1, gas=21_000), timeout=30)
    assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == first.nonce

    relayer = make_relayer(database, chain, signer, renonce_after=timedelta(seconds=0.5))
    intent = drive(relayer, database, intent_id)

    assert intent.state == "confirmed" and intent.nonce == first.nonce + 1
    old, new = intent_of(database, intent_id).transactions
    assert (old.status, old.nonce) == ("rejected", first.nonce)
    assert (new.status, new.nonce) == ("mined", first.nonce + 1)
    assert chain.receipt(old.tx_hash) is None
    assert chain.w3.eth.get_balance(payee) == 9
    assert mined_count(chain, signer.address) == sent_before + 2


class LateReceipts(Chain):
    """A node that counts a mined transaction's nonce ``lag`` seconds before it serves the
    receipt, as anvil now and then does for a moment (foundry-rs/foundry#10944)."""

    def __init__(self, url: str, state_dir: Path, lag: float) -> None:
        super().__init__(url, state_dir=state_dir)
        self.shown_from = time.monotonic() + lag

    def _late(self) -> bool:
        return time.monotonic() < self.shown_from

    def receipt(self, tx_hash):
        return None if self._late() else super().receipt(tx_hash)

    def batch(self, calls, *, return_errors=False):
        answers = super().batch(calls, return_errors=return_errors)
        late = self._late()
        return [
            None if late and method == "eth_getTransactionReceipt" else answer
            for (method, _params), answer in zip(calls, answers, strict=True)
        ]


def test_a_receipt_late_behind_its_nonce_is_waited_for_not_paid_again(
    database, chain, signer, tmp_path
):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    intent_id = request_transfer(database, chain, signer, to=payee, amount=8)
    late = LateReceipts(chain.url, tmp_path / "late", lag=1.5)
    relayer = make_relayer(database, late, signer, renonce_after=timedelta(seconds=3))

    intent = drive(relayer, database, intent_id)

    assert intent.state == "confirmed"
    assert [t.status for t in intent.transactions] == ["mined"]
    assert chain.w3.eth.get_balance(payee) == 8
    assert mined_count(chain, signer.address) == sent_before + 1


# -- stuck transactions: nodes that mine only when told ----------------------------------------


class ManualNode:
    """A node of each kind that mines only when :meth:`mine` is called."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        if kind == "embedded":
            self._node = Node(tmp_path / "manual-node", port=0, block_time=3600)
            self._node.start()
        else:
            self._node = Anvil()
        self.url = self._node.url
        self.chain = Chain(self.url, state_dir=tmp_path / "state")
        if kind == "anvil":
            self.chain.w3.provider.make_request("evm_setAutomine", [False])

    def mine(self) -> None:
        if self.kind == "embedded":
            self._node.run(self._node.mine).result()
        else:
            self.chain.w3.provider.make_request("evm_mine", [])

    def stop(self) -> None:
        self._node.stop()


@pytest.fixture(params=["embedded", "anvil"])
def manual_node(request, tmp_path):
    node = ManualNode(request.param, tmp_path)
    yield node
    node.stop()


def send_raw(chain: Chain, signer, *, nonce: int, max_fee: int, tip: int) -> str:
    """Send 1 wei to a fresh address with ``nonce``, as another program with the key would."""
    tx = {
        "type": 2,
        "chainId": chain.chain_id,
        "nonce": nonce,
        "gas": 21_000,
        "value": 1,
        "to": fresh_address(),
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
    }
    signed = signer.sign_transaction(tx)
    answer = chain.w3.provider.make_request(
        "eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]
    )
    assert "error" not in answer, answer
    return answer["result"]


def test_a_stuck_transaction_is_replaced_with_higher_fees(database, manual_node, signer, clock):
    chain = manual_node.chain
    payee = fresh_address()
    intent_id = request_transfer(database, chain, signer, to=payee, amount=3, clock=clock)
    relayer = make_relayer(
        database, chain, signer, clock=clock, replace_after=timedelta(seconds=60)
    )

    relayer.run_once()  # signed and broadcast; nothing mines it
    assert relayer.run_once() is False
    [stuck] = intent_of(database, intent_id).transactions
    assert stuck.status == "broadcast"

    clock.now += timedelta(seconds=61)
    assert relayer.run_once() is True
    old, new = intent_of(database, intent_id).transactions
    assert new.nonce == old.nonce and new.status == "broadcast"
    assert new.priority_fee * 8 >= old.priority_fee * 9 and new.max_fee * 8 >= old.max_fee * 9
    assert relayer.run_once() is False  # the replacement has not waited long enough yet

    manual_node.mine()
    intent = drive(relayer, database, intent_id)

    assert intent.state == "confirmed" and intent.tx_hash == new.tx_hash
    statuses = [t.status for t in intent_of(database, intent_id).transactions]
    assert statuses == ["replaced", "mined"]
    assert chain.receipt(old.tx_hash) is None
    assert chain.w3.eth.get_balance(payee) == 3


def test_a_transaction_pushed_out_of_the_pool_keeps_its_nonce_until_it_is_used(
    database, manual_node, signer, clock
):
    """Another program with the key outbids ours at its nonce: paid once, whoever wins."""
    chain = manual_node.chain
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    intent_id = request_transfer(database, chain, signer, to=payee, amount=4, clock=clock)
    relayer = make_relayer(
        database, chain, signer, clock=clock, replace_after=timedelta(seconds=60)
    )
    relayer.run_once()
    [first] = intent_of(database, intent_id).transactions

    rival = send_raw(
        chain, signer, nonce=first.nonce, max_fee=first.max_fee * 3, tip=first.priority_fee * 3
    )
    # Ours is gone from this node's pool, and sending it again is refused as underpriced.
    # Other nodes may still hold it: the nonce is kept, nothing is signed at another one.
    for _ in range(3):
        relayer.run_once()
    [stuck] = intent_of(database, intent_id).transactions
    assert stuck.status == "broadcast" and "underpriced" in stuck.error
    # Once it has waited, one replacement bids above it (refused: the rival bids higher),
    # and no more until the replacement has waited in turn.
    clock.now += timedelta(seconds=61)
    for _ in range(5):
        relayer.run_once()
    attempts = intent_of(database, intent_id).transactions
    assert [(t.nonce, t.status) for t in attempts] == [
        (first.nonce, "broadcast"),
        (first.nonce, "rejected"),
    ]
    assert attempts[1].priority_fee * 8 >= first.priority_fee * 9

    manual_node.mine()  # the rival is mined: ours can never be; signed again at a new nonce
    relayer.run_once()  # once that has held for renonce_after (a receipt may be late)
    assert intent_of(database, intent_id).nonce == first.nonce
    clock.now += relayer.renonce_after
    relayer.run_once()
    relayer.run_once()
    assert intent_of(database, intent_id).nonce == first.nonce + 1
    manual_node.mine()
    intent = drive(relayer, database, intent_id)

    assert intent.state == "confirmed" and intent.nonce == first.nonce + 1
    assert [t.status for t in intent_of(database, intent_id).transactions] == [
        "rejected",
        "rejected",
        "mined",
    ]
    assert chain.receipt(rival)["status"] == 1
    assert chain.w3.eth.get_balance(payee) == 4
    assert mined_count(chain, signer.address) == sent_before + 2
