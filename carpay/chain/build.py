"""Compile Vyper contracts with the pinned compiler, caching the outputs on disk."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sysconfig
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carpay.errors import ContractBuildError

__all__ = [
    "BUILD_DIR",
    "CONTRACTS_DIR",
    "CompiledContract",
    "blueprint",
    "compile_contract",
    "contract",
]

#: Where carpay's own contracts live: one ``<name>.vy`` per contract.
CONTRACTS_DIR = Path(__file__).resolve().parents[1] / "contracts"
#: The default cache of compiler outputs (gitignored).
BUILD_DIR = CONTRACTS_DIR / "build"

# Bump when the cache file layout changes, so old entries are never misread.
_CACHE_FORMAT = 1


@dataclass(frozen=True)
class CompiledContract:
    """What the compiler produced for one contract: enough to deploy it and talk to it."""

    name: str
    abi: list[dict[str, Any]] = field(repr=False)
    bytecode: bytes = field(repr=False)
    runtime_bytecode: bytes = field(repr=False)


def blueprint(compiled: CompiledContract) -> CompiledContract:
    """``compiled`` as an ERC-5202 blueprint: deploying it stores the contract's init code
    behind the ``0xFE7100`` preamble, for ``create_from_blueprint`` (whose default code
    offset skips the preamble). Exactly what ``vyper -f blueprint_bytecode`` gives."""
    stored = b"\xfe\x71\x00" + compiled.bytecode
    deployer = b"\x61" + len(stored).to_bytes(2, "big") + b"\x3d\x81\x60\x0a\x3d\x39\xf3"
    return CompiledContract(f"{compiled.name}_blueprint", [], deployer + stored, stored)


def compile_contract(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    search_paths: Iterable[str | os.PathLike[str]] = (),
) -> CompiledContract:
    """Compile the Vyper source at ``path``, or return the cached outputs of an earlier build.

    Imports resolve against the source's own directory, ``carpay/contracts/``, the installed
    packages (so ``from snekmate.tokens import erc20`` works) and ``search_paths``. The cache
    entry is valid while the compiler version and every source file it was built from are
    unchanged. A compiler error raises :class:`ContractBuildError` with the compiler's message.
    """
    source = Path(path).resolve()
    try:
        text = source.read_text()
    except OSError as exc:
        raise ContractBuildError(f"cannot read contract {path}: {exc.strerror}") from exc
    paths = [*_default_search_paths(), *(Path(p).resolve() for p in search_paths)]
    key = _digest(_compiler_version(), str(source), text, *map(str, paths))
    entry = (
        Path(cache_dir) if cache_dir is not None else BUILD_DIR
    ) / f"{source.stem}-{key[:16]}.json"

    cached = _load(entry)
    if cached is not None:
        return cached
    compiled, sources = _compile(source, paths)
    _store(entry, compiled, sources)
    return compiled


def contract(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> CompiledContract:
    """One of carpay's own contracts, ``carpay/contracts/<name>.vy``, compiled."""
    source = CONTRACTS_DIR / f"{name}.vy"
    if not source.is_file():
        raise ContractBuildError(f"no contract named {name!r} in {CONTRACTS_DIR}")
    return compile_contract(source, cache_dir=cache_dir)


@functools.cache
def _compiler_version() -> str:
    # From the package metadata: a cache hit never pays for importing the compiler.
    return importlib.metadata.version("vyper")


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _default_search_paths() -> list[Path]:
    # The vyper compiler gives the *last* search path the highest precedence.
    paths: list[Path] = []
    spec = importlib.util.find_spec("snekmate")
    for location in (spec.submodule_search_locations or []) if spec else []:
        paths.append(Path(location).parent)
    for key in ("purelib", "platlib"):
        paths.append(Path(sysconfig.get_paths()[key]))
    paths.append(CONTRACTS_DIR)
    return list(dict.fromkeys(p.resolve() for p in paths if p.is_dir()))


def _compile(source: Path, search_paths: list[Path]) -> tuple[CompiledContract, dict[str, str]]:
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.compiler.output import build_abi_output
    from vyper.compiler.phases import CompilerData
    from vyper.exceptions import VyperException, VyperInternalException

    bundle = FilesystemInputBundle(search_paths)
    try:
        file_input = bundle.load_file(source)
        data = CompilerData(file_input, input_bundle=bundle)
        abi = build_abi_output(data)
        bytecode, runtime = data.bytecode, data.bytecode_runtime
        inputs = data.resolved_imports.compiler_inputs
    except (VyperException, VyperInternalException) as exc:
        raise ContractBuildError(f"{source.name} does not compile:\n{exc}") from exc
    # Every file the build read, so the cache entry dies when any of them changes. Built-in
    # interfaces (``ethereum.ercs``) ship inside the compiler and change with its version.
    sources = {str(source): hashlib.sha256(source.read_bytes()).hexdigest()}
    for item in inputs:
        if not item.from_builtin:
            path = Path(item.resolved_path)
            sources[str(path)] = _file_sha256(path) or ""
    return CompiledContract(source.stem, abi, bytecode, runtime), sources


def _load(entry: Path) -> CompiledContract | None:
    try:
        stored = json.loads(entry.read_text())
    except (OSError, ValueError):
        return None
    if stored.get("format") != _CACHE_FORMAT or stored.get("vyper") != _compiler_version():
        return None
    for path, sha in stored["sources"].items():
        if _file_sha256(Path(path)) != sha:
            return None
    return CompiledContract(
        stored["name"],
        stored["abi"],
        bytes.fromhex(stored["bytecode"]),
        bytes.fromhex(stored["runtime_bytecode"]),
    )


def _store(entry: Path, compiled: CompiledContract, sources: dict[str, str]) -> None:
    payload = {
        "format": _CACHE_FORMAT,
        "vyper": _compiler_version(),
        "sources": sources,
        "name": compiled.name,
        "abi": compiled.abi,
        "bytecode": compiled.bytecode.hex(),
        "runtime_bytecode": compiled.runtime_bytecode.hex(),
    }
    # The cache is an optimisation: a read-only install still compiles, it just never caches.
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
        os.replace(tmp, entry)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
