"""Tests of carpay/background.py: the embedded node in a child process, and its failures."""

from __future__ import annotations

import pytest

from carpay.background import NodeProcess
from carpay.chain import Chain
from carpay.chain.node import Node
from carpay.errors import NodeError


def test_the_node_serves_from_its_own_process_and_stops(tmp_path):
    node = NodeProcess(tmp_path / "chain", port=0)
    try:
        assert node.alive
        assert Chain(node.url, state_dir=tmp_path).chain_id == 1337
    finally:
        node.stop()
    assert not node.alive
    # The data directory was let go: another node opens it.
    again = Node(tmp_path / "chain", port=0).start()
    again.stop()


def test_a_node_that_cannot_start_says_why(tmp_path):
    holder = Node(tmp_path / "chain", port=0).start()
    try:
        with pytest.raises(NodeError, match="another node is using the data directory"):
            NodeProcess(tmp_path / "chain", port=0)
    finally:
        holder.stop()
