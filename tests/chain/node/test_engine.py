"""Tests of carpay/chain/node/engine.py's own encodings: byte for byte py-evm's."""

from __future__ import annotations

from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.prague.receipts import PragueReceiptBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from carpay.chain.node.engine import encode_receipt

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
