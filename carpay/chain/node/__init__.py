"""The embedded node: py-evm blocks on disk behind standard Ethereum JSON-RPC."""

from carpay.chain.node.node import Node, dev_accounts

__all__ = ["Node", "dev_accounts"]
