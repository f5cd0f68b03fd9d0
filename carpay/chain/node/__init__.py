"""The embedded node: py-evm blocks on disk behind standard Ethereum JSON-RPC.

``Node`` and ``dev_accounts`` are imported on first use: importing py-evm takes about a second,
which the node's serving process spends while its engine process starts (see split.py).
"""

from importlib import import_module
from typing import Any

__all__ = ["Node", "dev_accounts"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module("carpay.chain.node.node"), name)
