"""Shared fixtures: the peer nodes every chain-level test runs against; the order files run in."""

from __future__ import annotations

import pytest

from carpay.testing import Anvil

#: Files of a few long tests each (a minute or more in all): run first, so that the workers
#: (one file at a time each) end on short tests together instead of one of them on a long
#: state machine while the others idle. (pyproject's ``--no-loadscope-reorder`` keeps xdist
#: from putting the files with the most tests first instead.)
_LONG_FILES = ("test_schemathesis.py", "test_durability.py", "test_runtime.py")


def _long(item: pytest.Item) -> bool:
    name = item.path.name
    return name.endswith("_state.py") or name in _LONG_FILES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long files first, each file's tests still in order (a stable sort)."""
    items.sort(key=lambda item: not _long(item))


@pytest.fixture(scope="session")
def anvil():
    with Anvil() as node:
        yield node


@pytest.fixture(scope="session")
def embedded(tmp_path_factory):
    """The embedded node as ``carpay node`` runs it: its engine in a process of its own."""
    from carpay.chain.node.split import SplitNode

    node = SplitNode(tmp_path_factory.mktemp("embedded-node"), port=0)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["embedded", "anvil"], scope="session")
def node_url(request) -> str:
    """The JSON-RPC URL of each peer in turn: the same test runs on both nodes."""
    return request.getfixturevalue(request.param).url
