"""Tests of carpay/chain/node/tries.py: the same roots and values as py-evm's tries,
whatever the items."""

from __future__ import annotations

import os

import pytest
from eth.db.backends.memory import MemoryDB
from eth.db.trie import _make_trie_root_and_nodes
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie import HexaryTrie

from carpay.chain.node.tries import BLANK_ROOT, CachedTrie, ordered_trie_root


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
