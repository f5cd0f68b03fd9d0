"""Tests of carpay/chain/node/tries.py: the same roots and values as py-evm's tries,
whatever the items."""

from __future__ import annotations

import os

import pytest
import rlp
from eth.db.backends.memory import MemoryDB
from eth.db.trie import _make_trie_root_and_nodes
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie
from trie.exceptions import ValidationError

from carpay.chain.node import tries
from carpay.chain.node.tries import BLANK_ROOT, CachedTrie, encode_node, ordered_trie_root


def reference(items: list[bytes]) -> bytes:
    return _make_trie_root_and_nodes(tuple(items))[0]


def test_an_empty_trie_has_the_blank_root():
    assert ordered_trie_root([]) == BLANK_ROOT == reference([])


@pytest.mark.parametrize("count", [1, 2, 3, 15, 16, 17, 127, 128, 129, 130, 255, 256, 1000])
@pytest.mark.parametrize("size", [1, 20, 31, 32, 120])
def test_the_root_is_py_evms_at_every_shape(count, size):
    """Counts around the 1-byte/2-byte rlp(index) keys and the 16-way branches; items short
    enough to be embedded in their parents and long enough to be hashed."""
    items = [os.urandom(size) for _ in range(count)]
    assert ordered_trie_root(items) == reference(items)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=80), max_size=300))
def test_the_root_is_py_evms_for_any_items(items):
    assert ordered_trie_root(items) == reference(items)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.binary(min_size=1, max_size=3).map(lambda k: keccak(k)[: len(k) * 11]),
                st.binary(min_size=1, max_size=2),  # tiny nodes, embedded in their parents
            ),
            st.one_of(st.just(b""), st.binary(min_size=1, max_size=40), st.binary(max_size=2)),
        ),
        max_size=120,
    )
)
def test_the_caching_trie_changes_and_reads_like_py_evms(changes):
    """Keys that share long prefixes (branches, extensions, embedded leaves) and deletions (b""),
    applied to both tries: the same root after each change and the same value for each key.
    The cached nodes are shared between the changes and must not be changed by them."""
    ours, theirs = CachedTrie(MemoryDB()), HexaryTrie(MemoryDB())
    roots = []
    for key, value in changes:
        ours[key] = value
        theirs[key] = value
        assert ours.root_hash == theirs.root_hash
        roots.append(ours.root_hash)
    # Every state the tries went through still reads the same from its root: a cached node
    # changed in place by a later change would show here.
    for root in roots:
        past, reference = CachedTrie(ours.db, root_hash=root), HexaryTrie(theirs.db, root)
        for key, _ in changes:
            assert past[key] == reference[key]


_keys = st.one_of(
    st.binary(min_size=1, max_size=3).map(lambda k: keccak(k)[: len(k) * 11]),
    st.binary(min_size=1, max_size=2),
    st.binary(min_size=32, max_size=32),  # the state's and storage's keys: hashes
)
_values = st.one_of(st.just(b""), st.binary(min_size=1, max_size=40), st.binary(max_size=2))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(st.tuples(_keys, _values), max_size=60), max_size=6))
def test_changes_made_together_give_py_evms_root_and_values(batches):
    """Several changes between two reads of the root (py-evm's case: a block's writes, then
    its state root): each batch ends on py-trie's root, reads inside a batch see its changes,
    and the nodes it stores are the whole new trie (py-trie itself reads every key from them)."""
    ours, theirs = CachedTrie(MemoryDB()), HexaryTrie(MemoryDB())
    seen: set[bytes] = set()
    for batch in batches:
        for key, value in batch:
            ours[key] = value
            theirs[key] = value
            seen.add(key)
            assert ours[key] == theirs[key]
            assert (key in ours) == (key in theirs)
        assert ours.root_hash == theirs.root_hash
        stored = HexaryTrie(ours.db, ours.root_hash)
        for key in seen:
            assert stored[key] == theirs[key] == ours[key]
        # the nodes kept parsed for the next reads are those stored
        for node_hash, encoded in ours.db.kv_store.items():
            if node_hash in tries._parsed:
                assert tries._parsed[node_hash] == tries._parse(rlp.decode(encoded))


def test_changes_in_a_squash_apply_when_it_ends_and_not_after_an_error():
    trie = CachedTrie(MemoryDB())
    trie[b"a" * 32] = b"1"
    before = trie.root_hash
    with pytest.raises(RuntimeError), trie.squash_changes() as memory:
        memory[b"b" * 32] = b"2"
        raise RuntimeError
    assert trie.root_hash == before and trie[b"b" * 32] == b""
    with trie.squash_changes() as memory:
        memory[b"b" * 32] = b"2"
        del memory[b"a" * 32]
    reference = HexaryTrie(MemoryDB())
    reference[b"b" * 32] = b"2"
    assert trie.root_hash == reference.root_hash
    assert trie[b"b" * 32] == b"2" and trie[b"a" * 32] == b""


def test_setting_the_root_forgets_the_changes_not_applied():
    """As py-trie's: a root set replaces the one the changes would have built on."""
    trie = CachedTrie(MemoryDB())
    trie[b"a" * 32] = b"1"
    root = trie.root_hash
    trie[b"b" * 32] = b"2"
    trie.root_hash = root
    assert trie[b"b" * 32] == b"" and trie.root_hash == root


def test_keys_and_values_must_be_bytes_as_in_py_trie():
    trie = CachedTrie(MemoryDB())
    for bad in [("a" * 32, b"1"), (b"a" * 32, 1)]:
        with pytest.raises(ValidationError):
            trie.set(*bad)
    with pytest.raises(ValidationError):
        trie.get("a")
    assert trie.root_hash == BLANK_ROOT


# Short and long strings and lists (RLP's length forms change at 56 bytes, and at 256).
_nodes = st.recursive(
    st.one_of(st.binary(max_size=2), st.binary(max_size=60), st.binary(min_size=250, max_size=260)),
    lambda children: st.lists(children, max_size=17),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(_nodes)
def test_nodes_are_encoded_as_rlp_encodes_them(node):
    assert encode_node(node) == rlp.encode(node)


@pytest.mark.parametrize("size", [0, 1, 2, 54, 55, 56, 57, 255, 256, 65_536])
def test_nodes_are_encoded_as_rlp_encodes_them_at_each_length_boundary(size):
    """RLP's short form holds up to 55 bytes, its long form's length takes one byte up to 255."""
    text = b"\x81" * size
    assert encode_node(text) == rlp.encode(text)
    assert encode_node([text]) == rlp.encode([text])
    assert encode_node([b"\x01"] * size) == rlp.encode([b"\x01"] * size)
