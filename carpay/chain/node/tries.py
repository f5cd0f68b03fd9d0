"""Merkle Patricia tries for the engine, each changed node encoded and hashed once.

py-evm changes its tries one key at a time, re-encoding and re-hashing the path from the key's
leaf to the root each time (three or four nodes for a token balance, the root a branch of 17
items). Here the changes are made to nodes in memory, and each changed node is encoded and
hashed once at the end (``_apply``):
- a block's transaction and receipt tries (``ordered_trie_root``): only their roots are
  needed, as the node serves transactions and receipts from its own index;
- the state and storage tries (``CachedTrie``): they keep the changes made to them until their
  root is asked for, which py-evm does once per block, when it persists the state. The
  transfers of a block share the hashes of the paths they change.

``tests/chain/node/test_tries.py`` checks both against py-evm's tries on many shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie
from trie.constants import BLANK_NODE, BLANK_NODE_HASH
from trie.validation import validate_is_bytes

__all__ = ["CachedTrie", "big_endian", "encode_node", "ordered_trie_root"]

#: The root of an empty trie: keccak(rlp(b"")).
BLANK_ROOT = keccak(rlp.encode(b""))


def ordered_trie_root(items: Sequence[bytes]) -> bytes:
    """The root of the trie whose key ``rlp(i)`` holds ``items[i]`` (encoded items)."""
    if not items:
        return BLANK_ROOT
    changes = {rlp.encode(i): item for i, item in enumerate(items)}
    return _apply(_Discarded(), BLANK_NODE_HASH, changes, keep=False)


class _Discarded(dict):
    """Where the nodes of a trie go whose root only is needed."""

    def __setitem__(self, key: bytes, value: bytes) -> None:
        pass


class CachedTrie(HexaryTrie):
    """py-evm's state and storage trie, keeping the nodes it decodes and its changes until its
    root is asked for.

    A trie node is stored under the hash of its encoding, so the node a hash names never
    changes: each is decoded once (an RLP decode of up to 17 items, a third of a storage read)
    and then served from memory, in a parsed form that reads and changes share, as none
    changes a node. py-trie's own paths (its errors for a missing node, proofs) read the
    database as before.

    ``set``/``delete`` only record the change; reads see it at once. ``root_hash`` applies
    what was recorded (see :func:`_apply`) and writes the new nodes to ``db``; setting it
    forgets what was recorded, as it would replace the root py-trie had built. Nodes no longer
    referenced are not deleted: py-evm never applies a trie's deletes to the chain's database,
    which keeps every earlier state.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_changes"] = {}
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def root_hash(self) -> bytes:
        changes = self._changes
        if changes:
            self.__dict__["_root"] = _apply(self.db, self._root, changes)
            changes.clear()
        return self._root

    @root_hash.setter
    def root_hash(self, value: bytes) -> None:
        self._changes.clear()
        self.__dict__["_root"] = value

    def get(self, key: bytes) -> bytes:
        if key.__class__ is not bytes:
            validate_is_bytes(key)
            key = bytes(key)  # a subclass (HexBytes) may print its hex otherwise
        value = self._changes.get(key)
        if value is not None:
            return value
        try:
            return _lookup(self.db, self._root, _key_nibbles(key))
        except KeyError:
            # a node missing from the database: py-trie's read says which, in its error
            return super().get(key)

    def set(self, key: bytes, value: bytes) -> None:
        validate_is_bytes(key)
        validate_is_bytes(value)
        self._changes[bytes(key)] = bytes(value)  # b"" deletes, as in py-trie

    def delete(self, key: bytes) -> None:
        self.set(key, b"")

    @contextlib.contextmanager
    def squash_changes(self) -> Iterator[CachedTrie]:
        """py-trie's squash_changes writes the changes to a scratch database first so that
        only the final nodes are stored; these tries store only final nodes anyway. Changes
        made in the block are applied when it ends without an error."""
        memory = type(self)(self.db, self.root_hash, prune=True)
        yield memory
        self.root_hash = memory.root_hash


#: How many parsed trie nodes the engine keeps (a branch is about 1.3 kB in memory).
DECODED_NODES = 50_000


# -- changes in a batch ---------------------------------------------------------------------
#
# A node in memory is a tuple: (_LEAF, path, value), (_EXTENSION, path, child) or
# (_BRANCH, children), ``children`` 16 children and the branch's value. A path is a bytes of
# nibbles (0-15). A child is b"" (none), the 32-byte hash of a stored node, or a node tuple
# (a node embedded in its parent, or one changed in this batch and not yet encoded).

_LEAF, _EXTENSION, _BRANCH = 0, 1, 2
_HEX_TO_NIBBLE = bytes.maketrans(b"0123456789abcdef", bytes(range(16)))
_NIBBLE_TO_HEX = bytes.maketrans(bytes(range(16)), b"0123456789abcdef")
#: Parsed stored nodes by hash (immutable: shared by every reader).
_parsed: dict[bytes, tuple] = {}


def _key_nibbles(key: bytes) -> bytes:
    return key.hex().encode().translate(_HEX_TO_NIBBLE)


def _parse(raw: Any) -> tuple | None:
    """The tuple form of a decoded node (None for the blank node)."""
    if raw == BLANK_NODE:
        return None
    if len(raw) == 17:
        return (_BRANCH, tuple(_child(c) for c in raw[:16]) + (raw[16],))
    nibbles = _key_nibbles(raw[0])
    flag = nibbles[0]
    path = nibbles[1:] if flag & 1 else nibbles[2:]
    if flag & 2:
        return (_LEAF, path, raw[1])
    return (_EXTENSION, path, _child(raw[1]))


def _child(raw: Any) -> Any:
    return _parse(raw) if raw.__class__ is list else raw


def _load(db: Any, ref: Any) -> tuple | None:
    """The node a child reference names (None for none)."""
    if ref.__class__ is tuple:
        return ref
    if not ref or ref == BLANK_NODE_HASH:
        return None
    node = _parsed.get(ref)
    if node is None:
        node = _parse(rlp.decode(db[ref]))
        _remember(ref, node)
    return node


def _remember(node_hash: bytes, node: tuple | None) -> None:
    if len(_parsed) >= DECODED_NODES:
        _parsed.clear()
    _parsed[node_hash] = node


def _lookup(db: Any, root: bytes, path: bytes) -> bytes:
    node = _load(db, root)
    i = 0
    while node is not None:
        kind = node[0]
        if kind == _LEAF:
            return node[2] if node[1] == path[i:] else BLANK_NODE
        if kind == _EXTENSION:
            if not path.startswith(node[1], i):
                return BLANK_NODE
            i += len(node[1])
            node = _load(db, node[2])
        else:
            if i == len(path):
                return node[1][16]
            node = _load(db, node[1][path[i]])
            i += 1
    return BLANK_NODE


def _shared(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _put(db: Any, node: tuple | None, path: bytes, value: bytes) -> tuple:
    """``node`` with ``path`` holding ``value``."""
    if node is None:
        return (_LEAF, path, value)
    kind = node[0]
    if kind == _BRANCH:
        children = list(node[1])
        if not path:
            children[16] = value
        else:
            children[path[0]] = _put(db, _load(db, children[path[0]]), path[1:], value)
        return (_BRANCH, tuple(children))
    own = node[1]
    if kind == _LEAF and own == path:
        return (_LEAF, path, value)
    shared = _shared(own, path)
    if kind == _EXTENSION and shared == len(own):
        return (_EXTENSION, own, _put(db, _load(db, node[2]), path[shared:], value))
    # The paths part after ``shared`` nibbles: a branch there, holding both.
    children: list[Any] = [b""] * 17
    rest = own[shared:]
    if kind == _LEAF:
        if rest:
            children[rest[0]] = (_LEAF, rest[1:], node[2])
        else:
            children[16] = node[2]
    else:
        children[rest[0]] = (_EXTENSION, rest[1:], node[2]) if len(rest) > 1 else node[2]
    rest = path[shared:]
    if rest:
        children[rest[0]] = (_LEAF, rest[1:], value)
    else:
        children[16] = value
    branch = (_BRANCH, tuple(children))
    return (_EXTENSION, path[:shared], branch) if shared else branch


def _remove(db: Any, node: tuple | None, path: bytes) -> tuple | None:
    """``node`` without ``path`` (itself if it does not hold it)."""
    if node is None:
        return None
    kind = node[0]
    if kind == _LEAF:
        return None if node[1] == path else node
    if kind == _EXTENSION:
        own = node[1]
        if not path.startswith(own):
            return node
        return _joined(own, _remove(db, _load(db, node[2]), path[len(own) :]))
    children = list(node[1])
    if not path:
        children[16] = b""
    else:
        child = _remove(db, _load(db, children[path[0]]), path[1:])
        children[path[0]] = b"" if child is None else child
    left = [i for i in range(16) if children[i]]
    if children[16]:
        if left:
            return (_BRANCH, tuple(children))
        return (_LEAF, b"", children[16])
    if len(left) > 1:
        return (_BRANCH, tuple(children))
    if not left:
        return None
    (only,) = left
    return _joined(bytes((only,)), _load(db, children[only]), children[only])


def _joined(path: bytes, node: tuple | None, ref: Any = None) -> tuple | None:
    """What an extension of ``path`` over ``node`` (named by ``ref``) becomes: a leaf or an
    extension with the two paths joined, or the extension itself over a branch."""
    if node is None:
        return None
    if node[0] == _LEAF:
        return (_LEAF, path + node[1], node[2])
    if node[0] == _EXTENSION:
        return (_EXTENSION, path + node[1], node[2])
    return (_EXTENSION, path, node if ref is None else ref)


def _hex_prefix(path: bytes, leaf: bool) -> bytes:
    """Hex-prefix encoding of a path of nibbles (the yellow paper's HP)."""
    flag = 2 if leaf else 0
    prefixed = bytes((flag + 1,)) + path if len(path) % 2 else bytes((flag, 0)) + path
    return bytes.fromhex(prefixed.translate(_NIBBLE_TO_HEX).decode())


def _raw(db: Any, node: tuple, keep: bool) -> tuple[list, tuple]:
    """The RLP structure of ``node``, its changed children stored; and ``node`` as it reads
    back once stored (its children by reference)."""
    kind = node[0]
    if kind == _LEAF:
        return [_hex_prefix(node[1], True), node[2]], node
    if kind == _EXTENSION:
        raw = child = node[2]
        if child.__class__ is tuple:
            raw, child = _stored_ref(db, child, keep)
        return [_hex_prefix(node[1], False), raw], (_EXTENSION, node[1], child)
    raws: list[Any] = []
    children: list[Any] = []
    for child in node[1][:16]:
        if child.__class__ is tuple:
            raw, child = _stored_ref(db, child, keep)
            raws.append(raw)
        else:
            raws.append(child)
        children.append(child)
    value = node[1][16]
    raws.append(value)
    children.append(value)
    return raws, (_BRANCH, tuple(children))


def encode_node(item: bytes | list) -> bytes:
    """``rlp.encode(item)`` for what trie nodes are made of: bytes and lists of them."""
    if item.__class__ is bytes:
        n = len(item)
        if n == 1 and item[0] < 0x80:
            return item
        return _length(n, 0x80) + item
    payload = b"".join([encode_node(x) for x in item])
    return _length(len(payload), 0xC0) + payload


def big_endian(n: int) -> bytes:
    """An unsigned integer as RLP holds it: big-endian, no leading zero (0: empty)."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def _length(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes((offset + n,))
    raw = big_endian(n)
    return bytes((offset + 55 + len(raw),)) + raw


def _stored_ref(db: Any, child: tuple, keep: bool) -> tuple[Any, Any]:
    """How a parent holds ``child`` in its RLP structure and once read back: embedded if its
    encoding is under 32 bytes, else by the hash under which it is stored (and, if ``keep``,
    parsed: the next block reads it, and nothing else does)."""
    raw, stored = _raw(db, child, keep)
    encoded = encode_node(raw)
    if len(encoded) < 32:
        return raw, stored
    node_hash = _store(db, encoded, stored, keep)
    return node_hash, node_hash


def _store(db: Any, encoded: bytes, stored: tuple, keep: bool) -> bytes:
    """Store the node ``encoded`` under its hash, kept parsed as ``stored`` if ``keep``."""
    node_hash = keccak(encoded)
    db[node_hash] = encoded
    if keep:
        _remember(node_hash, stored)
    return node_hash


def _apply(db: Any, root: bytes, changes: dict[bytes, bytes], keep: bool = True) -> bytes:
    """The root of the trie ``root`` with ``changes`` (key: value, b"" to delete) applied, every
    new node stored in ``db`` (the root always, as py-trie does, even a small one), and kept
    parsed unless ``keep`` is false."""
    node = _load(db, root)
    for key, value in changes.items():
        path = _key_nibbles(key)
        node = _put(db, node, path, value) if value else _remove(db, node, path)
    if node is None:
        return BLANK_NODE_HASH
    raw, stored = _raw(db, node, keep)
    return _store(db, encode_node(raw), stored, keep)
