"""Compiling Vyper contracts: outputs, the on-disk cache, and compiler errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from carpay.chain import build, compile_contract, contract
from carpay.errors import ContractBuildError

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"

HELPER = """# pragma version ~=0.4.3
FACTOR: constant(uint256) = {factor}

@internal
@pure
def scale(x: uint256) -> uint256:
    return x * FACTOR
"""

MAIN = """# pragma version ~=0.4.3
import helper

@external
@pure
def scaled(x: uint256) -> uint256:
    return helper.scale(x)
"""


def test_compiles_a_snekmate_based_token(tmp_path):
    token = compile_contract(CONTRACTS / "plain_erc20.vy", cache_dir=tmp_path)

    assert token.name == "plain_erc20"
    functions = {e["name"] for e in token.abi if e["type"] == "function"}
    assert {"transfer", "approve", "transferFrom", "balanceOf", "decimals"} <= functions
    assert "mint" not in functions  # only the plain ERC-20 surface is exported
    assert token.runtime_bytecode and token.runtime_bytecode in token.bytecode


def test_second_build_comes_from_the_cache(tmp_path, monkeypatch):
    first = compile_contract(CONTRACTS / "reverter.vy", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("reverter-*.json"))) == 1

    def no_compiler(*args, **kwargs):
        raise AssertionError("the compiler ran although the cache holds this build")

    monkeypatch.setattr(build, "_compile", no_compiler)
    assert compile_contract(CONTRACTS / "reverter.vy", cache_dir=tmp_path) == first


def test_cache_is_invalidated_by_an_imported_module(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "helper.vy").write_text(HELPER.format(factor=2))
    (src / "scaler.vy").write_text(MAIN)
    cache = tmp_path / "cache"

    two = compile_contract(src / "scaler.vy", cache_dir=cache)
    (src / "helper.vy").write_text(HELPER.format(factor=3))
    three = compile_contract(src / "scaler.vy", cache_dir=cache)

    assert two.runtime_bytecode != three.runtime_bytecode
    assert compile_contract(src / "scaler.vy", cache_dir=cache) == three


def test_compile_error_carries_the_compiler_message(tmp_path):
    broken = tmp_path / "broken.vy"
    broken.write_text(
        "# pragma version ~=0.4.3\n\n@external\ndef f() -> uint256:\n    return undefined_thing\n"
    )

    with pytest.raises(ContractBuildError) as caught:
        compile_contract(broken, cache_dir=tmp_path / "cache")

    message = caught.value.message
    assert message.startswith("broken.vy does not compile")
    assert "undefined_thing" in message and "line 5" in message
    assert caught.value.code == "contract-build-failed"
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_missing_source_is_a_build_error(tmp_path):
    with pytest.raises(ContractBuildError, match="cannot read contract"):
        compile_contract(tmp_path / "nowhere.vy", cache_dir=tmp_path)


def test_registry_finds_contracts_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "CONTRACTS_DIR", CONTRACTS)

    assert contract("reverter", cache_dir=tmp_path).name == "reverter"
    with pytest.raises(ContractBuildError, match="no contract named 'no_such_thing'"):
        contract("no_such_thing", cache_dir=tmp_path)
