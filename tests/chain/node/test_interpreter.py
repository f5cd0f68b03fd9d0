"""Tests of carpay/chain/node/interpreter.py: the engine's opcode loop gives what py-evm's gives.

Each program runs twice on the same state, once with py-evm's Prague computation and once with
the engine's: success or the error's kind, gas left, output, logs and the storage it wrote must
be the same. Programs are random bytes (invalid opcodes, truncated PUSHes, jumps into PUSH data)
and assembled ones that reach far (valid jumps, memory growth, storage, hashing, logs, revert,
return, running out of gas part way).
"""

from __future__ import annotations

import pytest
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.message import Message
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from carpay.chain.node.engine import CarpayVM, _Computation
from carpay.chain.node.interpreter import inline_opcodes

SENDER = b"\x11" * 20
CONTRACT = b"\x22" * 20
SLOTS = range(4)

_chain = MiningChain.configure(vm_configuration=((0, CarpayVM),), chain_id=1337).from_genesis(
    AtomicDB(),
    {
        "difficulty": 0,
        "gas_limit": 30_000_000,
        "timestamp": 1,
        "nonce": b"\x00" * 8,
        "base_fee_per_gas": 1,
    },
    {SENDER: {"balance": 10**18, "nonce": 0, "code": b"", "storage": {}}},
)
_state = _chain.get_vm().state


def run(computation_class, code: bytes, data: bytes, gas: int, value: int):
    state = _state
    snapshot = state.snapshot()
    try:
        state.set_code(CONTRACT, code)
        for slot in SLOTS:
            state.set_storage(CONTRACT, slot, slot + 7)
        message = Message(gas=gas, to=CONTRACT, sender=SENDER, value=value, data=data, code=code)
        context = state.get_transaction_context_class()(gas_price=1, origin=SENDER)
        computation = computation_class.apply_message(state, message, context)
        error = type(computation._error).__name__ if computation.is_error else None
        return (
            error,
            computation.get_gas_remaining(),
            computation.output,
            computation.get_log_entries(),
            computation.get_gas_refund(),
            [state.get_storage(CONTRACT, slot) for slot in SLOTS],
        )
    finally:
        state.revert(snapshot)


def same(code: bytes, data: bytes = b"", gas: int = 1_000_000, value: int = 0) -> tuple:
    ours = run(_Computation, code, data, gas, value)
    assert ours == run(PragueComputation, code, data, gas, value)
    return ours


# -- assembling programs ---------------------------------------------------------------------

BINARY = [0x01, 0x02, 0x03, 0x04, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1B, 0x1C]
UNARY = [0x15, 0x19]
CONTEXT = [0x30, 0x33, 0x34, 0x36, 0x58, 0x59, 0x5A, 0x5F]
WORDS = st.one_of(
    st.integers(0, 40),
    st.sampled_from([0, 1, 2**255, 2**256 - 1, 2**255 - 1, 31, 32, 255, 256, 257]),
    st.integers(0, 2**256 - 1),
)


def push(value: int) -> bytes:
    width = max(1, (value.bit_length() + 7) // 8)
    return bytes([0x5F + width]) + value.to_bytes(width, "big")


@st.composite
def instruction(draw, labels: int) -> tuple:
    kind = draw(
        st.sampled_from(
            [
                "push",
                "binary",
                "unary",
                "context",
                "dup",
                "swap",
                "pop",
                "mload",
                "mstore",
                "calldataload",
                "jump",
                "jumpi",
                "jumpdest",
                "sload",
                "sstore",
                "sha3",
                "log",
                "bad",
            ]
            + ["binary"] * 6
            + ["push", "dup", "swap", "unary", "context"] * 2
        )
    )
    if kind == "push":
        return ("raw", push(draw(WORDS)))
    if kind in ("binary", "unary"):
        # On what earlier instructions left on the stack, or on fresh operands.
        op = bytes([draw(st.sampled_from(BINARY if kind == "binary" else UNARY))])
        if draw(st.booleans()):
            return ("raw", op)
        return ("raw", push(draw(WORDS)) + push(draw(WORDS)) + op)
    if kind == "context":
        return ("raw", bytes([draw(st.sampled_from(CONTEXT))]))
    if kind == "dup":
        return ("raw", bytes([0x80 + draw(st.integers(0, 15))]))
    if kind == "swap":
        return ("raw", bytes([0x90 + draw(st.integers(0, 15))]))
    if kind == "pop":
        return ("raw", b"\x50")
    offset = draw(st.integers(0, 200))
    if draw(st.integers(0, 9)) == 0:
        offset = draw(st.sampled_from([2**20, 2**64, 2**256 - 1]))
    if kind == "mload":
        return ("raw", push(offset) + b"\x51")
    if kind == "mstore":
        return ("raw", push(draw(WORDS)) + push(offset) + b"\x52")
    if kind == "calldataload":
        return ("raw", push(draw(st.one_of(st.integers(0, 80), WORDS))) + b"\x35")
    if kind in ("jump", "jumpi"):
        return (kind, draw(st.integers(0, max(0, labels - 1))), draw(st.booleans()))
    if kind == "jumpdest":
        return ("jumpdest",)
    if kind == "sload":
        return ("raw", push(draw(st.sampled_from(SLOTS))) + b"\x54")
    if kind == "sstore":
        return ("raw", push(draw(WORDS)) + push(draw(st.sampled_from(SLOTS))) + b"\x55")
    if kind == "sha3":
        # input lengths of no word, part of one, several; at offsets far out too (memory growth
        # paid for only when the input is not empty); lengths that cannot be paid for
        length = draw(
            st.one_of(st.just(0), st.integers(0, 70), st.sampled_from([2**20, 2**256 - 1]))
        )
        return ("raw", push(length) + push(offset) + b"\x20")
    if kind == "log":
        return ("raw", push(draw(st.integers(0, 40))) + push(draw(st.integers(0, 40))) + b"\xa1")
    return ("raw", bytes([draw(st.sampled_from([0x0C, 0xFE, 0x21, 0x00]))]))


@st.composite
def program(draw) -> bytes:
    labels = draw(st.integers(0, 4))
    body = draw(st.lists(instruction(labels), max_size=40))
    body += [("jumpdest",)] * labels
    order = draw(st.permutations(range(len(body))))
    body = [body[i] for i in order]
    # The stack starts with operands, and its top items end in the output (or the revert data),
    # so that what each instruction computed is seen.
    start = b"".join(push(word) for word in draw(st.lists(WORDS, min_size=4, max_size=8)))
    kept = draw(st.integers(1, 4))
    ending = b"".join(push(32 * i) + b"\x52" for i in range(kept))
    ending += push(32 * kept) + push(0) + draw(st.sampled_from([b"\xf3", b"\xfd"]))
    # Assemble twice: the first pass finds where the JUMPDESTs land (jumps are PUSH2 + op).
    places: list[int] = []
    for _ in range(2):
        code, found = start, []
        for item in body:
            if item[0] == "raw":
                code += item[1]
            elif item[0] == "jumpdest":
                found.append(len(code))
                code += b"\x5b"
            else:
                kind, label, twist = item
                target = places[label] if label < len(places) else 0
                if kind == "jumpi":
                    # The condition under the destination: taken or not.
                    code += push(1 if twist else 0) + b"\x61" + target.to_bytes(2, "big") + b"\x57"
                else:
                    # Now and then a jump one past a JUMPDEST: refused.
                    code += b"\x61" + (target + twist).to_bytes(2, "big") + b"\x56"
        places = found
    return code + ending


# -- tests -----------------------------------------------------------------------------------


def test_the_table_covers_the_opcodes_it_names():
    kinds, gas = inline_opcodes(PragueComputation.opcodes)
    assert sum(1 for kind in kinds if kind) == 98  # 32 PUSH, 16 DUP, 16 SWAP and 34 others
    assert gas[0x20] == 30  # SHA3, its words charged as it runs
    assert gas[0x60] == 3 and gas[0x56] == 8 and gas[0x57] == 10 and gas[0x5B] == 1


def test_a_simple_sum_is_returned():
    code = push(2) + push(3) + b"\x01" + push(0) + b"\x52" + push(32) + push(0) + b"\xf3"
    error, _gas, output, *_ = same(code)
    assert error is None and int.from_bytes(output, "big") == 5


def test_running_out_of_gas_on_memory_growth_burns_everything():
    code = push(1) + push(2**32) + b"\x52"
    error, gas, *_ = same(code, gas=50_000)
    assert error == "OutOfGas" and gas == 0


def test_a_jump_into_push_data_is_refused():
    code = b"\x60\x04\x56\x60\x5b"  # PUSH1 4, JUMP, PUSH1 0x5b: position 4 is PUSH data
    assert same(code)[0] == "InvalidInstruction"


def test_a_jump_to_a_jumpdest_runs_on():
    code = push(4) + b"\x56\xfe\x5b" + push(9) + push(0) + b"\x55"
    error, *_, storage = same(code)
    assert error is None and storage[0] == 9


def test_stack_underflow_and_overflow_are_the_errors_py_evm_raises():
    assert same(b"\x01")[0] == "InsufficientStack"
    assert same(b"\x90")[0] == "InsufficientStack"
    assert same(b"\x5f" * 1025)[0] == "FullStack"


@settings(max_examples=300, deadline=None)
@given(code=st.binary(max_size=80), data=st.binary(max_size=70), gas=st.integers(0, 200_000))
def test_any_bytes_run_as_on_py_evm(code, data, gas):
    same(code, data, gas)


@settings(max_examples=400, deadline=None)
@given(
    code=program(),
    data=st.binary(max_size=100),
    gas=st.one_of(st.just(200_000), st.just(200_000), st.integers(0, 60_000), st.integers(0, 400)),
    value=st.sampled_from([0, 1, 10**18]),
)
def test_assembled_programs_run_as_on_py_evm(code, data, gas, value):
    same(code, data, gas, value)


EDGES = [0, 1, 2, 3, 31, 32, 255, 256, 257, 2**128, 2**255 - 1, 2**255, 2**255 + 7, 2**256 - 1]


def returned(body: bytes, data: bytes = b"") -> int:
    error, _gas, output, *_ = same(body + push(0) + b"\x52" + push(32) + push(0) + b"\xf3", data)
    assert error is None
    return int.from_bytes(output, "big")


@pytest.mark.parametrize("op", BINARY)
def test_each_binary_operation_gives_py_evms_result_on_edge_values(op):
    results = {returned(push(b) + push(a) + bytes([op])) for a in EDGES for b in EDGES}
    assert len(results) > 1


@pytest.mark.parametrize("op", UNARY)
def test_each_unary_operation_gives_py_evms_result_on_edge_values(op):
    assert len({returned(push(a) + bytes([op])) for a in EDGES}) > 1


def test_sha3_of_nothing_far_out_grows_no_memory():
    """An empty input is hashed without memory growth, whatever its offset: the keccak of
    nothing, 30 gas, and MSIZE still 0."""
    code = push(0) + push(2**64) + b"\x20" + b"\x59" + push(32) + b"\x52" + push(0) + b"\x52"
    code += push(64) + push(0) + b"\xf3"
    error, _gas, output, *_ = same(code, gas=100_000)
    assert error is None
    assert output[:32] == keccak(b"") and int.from_bytes(output[32:], "big") == 0


def test_sha3_pays_for_each_word_it_hashes():
    # 33 bytes: two words; memory grows to 64 bytes (6 gas) before the hash (30 + 2 * 6)
    code = push(33) + push(0) + b"\x20" + b"\x00"
    error, gas, *_ = same(code, gas=100_000)
    assert error is None and 100_000 - gas == 3 + 3 + 30 + 6 + 2 * 6


def test_pc_reports_the_position_of_its_own_instruction():
    assert returned(b"\x60\x01\x5b\x58") == 3


@pytest.mark.parametrize(
    "data", [b"", b"\x01", bytes(range(31)), bytes(range(32)), bytes(range(70))]
)
def test_call_data_reads_are_padded_like_py_evms(data):
    for start in (0, 1, 31, 32, 33, 64, 2**256 - 1):
        returned(push(start) + b"\x35", data)
    assert returned(b"\x36", data) == len(data)
