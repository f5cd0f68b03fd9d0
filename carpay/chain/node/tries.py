"""The root of a block's transaction or receipt trie, built in one pass.

py-evm inserts the items one by one into a ``HexaryTrie``, re-encoding and re-hashing the path
to each, and keeps every node to store it. A block's tries are written once and never read
back here (the node serves transactions and receipts from its own index), so only the root is
needed: this builds each node of the Merkle Patricia trie once, from the sorted keys, and
hashes it once. ``tests/chain/node/test_tries.py`` checks it against py-evm's on many shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.constants import BLANK_NODE, BLANK_NODE_HASH

__all__ = ["CachedTrie", "ordered_trie_root"]

#: The root of an empty trie: keccak(rlp(b"")).
BLANK_ROOT = keccak(rlp.encode(b""))


def ordered_trie_root(items: Sequence[bytes]) -> bytes:
    """The root of the trie whose key ``rlp(i)`` holds ``items[i]`` (encoded items)."""
    if not items:
        return BLANK_ROOT
    pairs = sorted((_nibbles(rlp.encode(i)), item) for i, item in enumerate(items))
    return keccak(rlp.encode(_node(pairs, 0)))


def _nibbles(key: bytes) -> tuple[int, ...]:
    out: list[int] = []
    for byte in key:
        out += (byte >> 4, byte & 0x0F)
    return tuple(out)


def _compact(nibbles: Sequence[int], leaf: bool) -> bytes:
    """Hex-prefix encoding of a path (the yellow paper's HP)."""
    flag = 2 if leaf else 0
    nibbles = (flag + 1, *nibbles) if len(nibbles) % 2 else (flag, 0, *nibbles)
    return bytes(nibbles[i] << 4 | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _ref(node: list) -> list | bytes:
    """How a parent holds ``node``: itself if its encoding is under 32 bytes, else its hash."""
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def _node(pairs: list[tuple[tuple[int, ...], bytes]], depth: int) -> list:
    """The node under which the (sorted, distinct) ``pairs`` share their first ``depth``
    nibbles."""
    if len(pairs) == 1:
        key, value = pairs[0]
        return [_compact(key[depth:], leaf=True), value]
    first, last = pairs[0][0], pairs[-1][0]
    # Sorted keys: the prefix all share is the one the first and the last share.
    shared = 0
    limit = min(len(first), len(last)) - depth
    while shared < limit and first[depth + shared] == last[depth + shared]:
        shared += 1
    if shared:
        child = _node(pairs, depth + shared)
        return [_compact(first[depth : depth + shared], leaf=False), _ref(child)]
    branch: list = [b""] * 17
    start = 0
    if len(first) == depth:  # a key that ends here holds the branch's value
        branch[16] = pairs[0][1]
        start = 1
    while start < len(pairs):
        nibble = pairs[start][0][depth]
        end = start + 1
        while end < len(pairs) and pairs[end][0][depth] == nibble:
            end += 1
        branch[nibble] = _ref(_node(pairs[start:end], depth + 1))
        start = end
    return branch


class CachedTrie(HexaryTrie):
    """py-evm's state and storage trie, keeping the nodes it decodes.

    A trie node is stored under the hash of its encoding, so the node a hash names never
    changes: each is decoded once (an RLP decode of up to 17 items, a third of a storage read)
    and then served from memory. Callers change the nodes they are given in place (a branch's
    child on an update), so each gets a copy of its own.
    """

    def get_node(self, node_hash: Any) -> Any:
        if node_hash.__class__ is not bytes or len(node_hash) != 32:
            return super().get_node(node_hash)
        if node_hash == BLANK_NODE_HASH:
            return BLANK_NODE
        node = _decoded.get(node_hash)
        if node is None:
            node = super().get_node(node_hash)
            if len(_decoded) >= DECODED_NODES:
                _decoded.clear()
            _decoded[node_hash] = node
        return _copy(node)


#: How many decoded trie nodes the engine keeps (a branch is about 1.3 kB in memory).
DECODED_NODES = 50_000
_decoded: dict[bytes, Any] = {}


def _copy(node: Any) -> Any:
    if node.__class__ is not list:
        return node
    return [_copy(item) if item.__class__ is list else item for item in node]
