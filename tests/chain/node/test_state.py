"""Tests of carpay/chain/node/state.py: accounts encoded as rlp encodes them, and the same
state as py-evm's account database after the same writes."""

from __future__ import annotations

import rlp
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.rlp.accounts import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from carpay.chain.node.state import CarpayAccountDB, encode_account

_uint256 = st.one_of(st.integers(0, 300), st.integers(0, 2**256 - 1))
_hashes = st.binary(min_size=32, max_size=32)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**64 - 1), _uint256, _hashes, _hashes)
def test_an_account_is_encoded_as_rlp_encodes_it(nonce, balance, storage_root, code_hash):
    account = Account(nonce, balance, storage_root, code_hash)
    assert encode_account(account) == rlp.encode(account)


_addresses = st.sampled_from([bytes([i]) * 20 for i in range(1, 6)])
_writes = st.lists(
    st.tuples(
        st.sampled_from(["balance", "nonce", "delta", "code", "storage"]),
        _addresses,
        st.integers(0, 2**64 - 2),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(_writes)
def test_the_same_writes_give_py_evms_state(writes):
    ours, theirs = CarpayAccountDB(AtomicDB()), AccountDB(AtomicDB())
    for db in (ours, theirs):
        for kind, address, value in writes:
            if kind == "balance":
                db.set_balance(address, value)
            elif kind == "nonce":
                db.set_nonce(address, value)
            elif kind == "delta":
                db.set_balance(address, db.get_balance(address) + value)
            elif kind == "code":
                db.set_code(address, value.to_bytes(8, "big"))
            else:
                db.set_storage(address, value % 7, value)
        db.persist()
    assert ours.state_root == theirs.state_root
    for _, address, _ in writes:
        assert ours.get_balance(address) == theirs.get_balance(address)
        assert ours.get_nonce(address) == theirs.get_nonce(address)
