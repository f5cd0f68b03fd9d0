"""Tests of carpay/chain/node/tries.py: the same roots as py-evm's tries, whatever the items."""

from __future__ import annotations

import os

import pytest
from eth.db.trie import _make_trie_root_and_nodes
from hypothesis import given, settings
from hypothesis import strategies as st

from carpay.chain.node.tries import BLANK_ROOT, ordered_trie_root


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
