"""The one settings object of carpay, read from CARPAY_* variables and carpay.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

__all__ = ["DEV_MNEMONIC", "Settings"]

#: The test mnemonic anvil and Hardhat use, so the usual development keys work everywhere.
DEV_MNEMONIC = "test test test test test test test test test test test junk"


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
