"""Talking to any EVM node: compile, deploy, call, send, wait, read logs, manage nonces.

The names below are imported on first use: web3.py takes about a second to import, which the
embedded node's processes (``carpay.chain.node``) do not need.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "Chain": "carpay.chain.client",
    "CompiledContract": "carpay.chain.build",
    "Deployment": "carpay.chain.client",
    "NonceManager": "carpay.chain.nonces",
    "compile_contract": "carpay.chain.build",
    "contract": "carpay.chain.build",
    "decode_revert": "carpay.chain.client",
    "gas_with_headroom": "carpay.chain.client",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
