"""Shared fixtures: the peer nodes every chain-level test runs against."""

from __future__ import annotations

import pytest

from carpay.testing import Anvil


@pytest.fixture(scope="session")
def anvil():
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    from carpay.chain.node import Node

    node = Node(tmp_path_factory.mktemp("embedded-node"), port=0)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["embedded", "anvil"], scope="session")
def node_url(request) -> str:
    """The JSON-RPC URL of each peer in turn: the same test runs on both nodes."""
    return request.getfixturevalue(request.param).url
