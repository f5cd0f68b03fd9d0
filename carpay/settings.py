"""The one settings object of carpay, read from CARPAY_* variables and carpay.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

__all__ = ["DEV_MNEMONIC", "REMOTE_CONFIRMATIONS", "Settings"]

#: The test mnemonic anvil and Hardhat use, so the usual development keys work everywhere.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
#: The confirmations waited for on a remote network unless configured (Ethereum's habit).
REMOTE_CONFIRMATIONS = 12


class Settings(BaseSettings):
    """Where carpay keeps its data and which network and database it talks to.

    The defaults give the embedded setup: data under ``./.carpay/``, the embedded node on
    127.0.0.1:8545, the API on 127.0.0.1:8000 and a SQLite database.
    """

    model_config = SettingsConfigDict(env_prefix="CARPAY_", toml_file="carpay.toml", extra="ignore")

    data_dir: Path = Path(".carpay")
    rpc_url: str | None = None
    database_url: str | None = None
    chain_id: int = 1337
    node_host: str = "127.0.0.1"
    node_port: int = 8545
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    block_time: float | None = None
    mnemonic: str = DEV_MNEMONIC
    dev_accounts: int = 10
    #: The relayer's private key (hex). Unset: development account 9 of ``mnemonic``.
    relayer_key: SecretStr | None = None
    #: The platform operator's private key (hex): it owns the merchant registry and onboards
    #: merchants. Unset: development account 0 of ``mnemonic``, which deploys the contracts.
    operator_key: SecretStr | None = None
    #: Blocks a block must have on top of it before the indexer indexes it and the relayer
    #: takes a transaction in it as done. Unset: 0 on the embedded node (its blocks are
    #: final), ``REMOTE_CONFIRMATIONS`` on a network given by ``rpc_url`` (0 suits a QBFT
    #: network, whose blocks are final too).
    confirmations: int | None = Field(default=None, ge=0)
    #: Sustained requests per second each API key may make, and the burst above it.
    rate_limit: float = 20.0
    rate_burst: int = 100

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, *args, **kw):
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def chain_dir(self) -> Path:
        return self.data_dir / "chain"

    @property
    def node_url(self) -> str:
        return self.rpc_url or f"http://{self.node_host}:{self.node_port}"

    @property
    def final_after(self) -> int:
        """The confirmations to wait for (see ``confirmations``)."""
        if self.confirmations is not None:
            return self.confirmations
        return REMOTE_CONFIRMATIONS if self.rpc_url else 0
