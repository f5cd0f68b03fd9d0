"""Talking to any EVM node: compile, deploy, call, send, wait, read logs, manage nonces."""

from carpay.chain.build import CompiledContract, compile_contract, contract
from carpay.chain.client import Chain, Deployment, decode_revert, gas_with_headroom
from carpay.chain.nonces import NonceManager

__all__ = [
    "Chain",
    "CompiledContract",
    "Deployment",
    "NonceManager",
    "compile_contract",
    "contract",
    "decode_revert",
    "gas_with_headroom",
]
