"""The engine's jump analysis, done once per contract code, agrees with py-evm's own."""

from __future__ import annotations

from eth.vm.code_stream import CodeStream
from hypothesis import given, settings
from hypothesis import strategies as st

from carpay.chain.node.engine import _CodeStream

# PUSH1..PUSH32 (0x60..0x7f) and JUMPDEST (0x5b) often, so that PUSH data hides JUMPDESTs
_BYTES = st.one_of(st.integers(0x60, 0x7F), st.just(0x5B), st.integers(0, 255))


@settings(max_examples=300, deadline=None)
@given(st.lists(_BYTES, max_size=200).map(bytes))
def test_every_position_is_an_instruction_exactly_when_py_evm_says_so(code):
    ours, theirs = _CodeStream(code), CodeStream(code)
    for position in range(len(code) + 40):  # beyond the end too
        assert ours.is_valid_opcode(position) == theirs.is_valid_opcode(position), position
