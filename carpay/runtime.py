"""Running the platform: node, contracts, API, and (in a process of their own, see
:mod:`carpay.background`) indexer, relayers, webhooks and keeper.

``carpay up`` runs :func:`up` (the embedded node and everything on top of it, with the
contracts deployed on first start); ``carpay serve`` runs :func:`serve` against an existing
network and database. Both stop cleanly on Ctrl-C and resume where they stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from carpay.accounts import participants
from carpay.accounts.api_keys import ApiKeys
from carpay.accounts.custody import Keyring
from carpay.accounts.platform import operator_account, relayer_account
from carpay.chain import Chain
from carpay.errors import ChainError, ConfigError, DeploymentNotFound
from carpay.ledger import Database, Indexer
from carpay.services.platform import (
    CURRENCIES,
    DEMO_VINS,
    Platform,
    deploy_platform,
    deployed_address,
    seed_demo,
)
from carpay.settings import Settings

__all__ = ["DevKeys", "reindex", "serve", "up"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DevKeys:
    """The keys a development network runs with, all from the settings' mnemonic.

    Account 0 owns the contracts (and is the bank gateway), 9 is the relayer, 10-18 are the
    demo merchants (one per category) and 19 the treasury that collects fees.
    """

    owner: LocalAccount
    treasury: LocalAccount
    merchants: list[LocalAccount]

    @classmethod
    def from_mnemonic(cls, mnemonic: str) -> DevKeys:
        Account.enable_unaudited_hdwallet_features()

        def key(i: int) -> LocalAccount:
            return Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}")

        return cls(owner=key(0), treasury=key(19), merchants=[key(i) for i in range(10, 19)])


def _recorded_platform(chain: Chain) -> Platform:
    try:
        return Platform(
            registry=chain.deployment("merchant_registry").address,
            checkout=chain.deployment("checkout").address,
            tokens={
                c.code: chain.deployment(f"currency_token:{c.code}").address for c in CURRENCIES
            },
            vehicles=chain.deployment("vehicle_registry").address,
            fines=chain.deployment("traffic_fines").address,
            escrow=chain.deployment("vehicle_escrow").address,
            insurance=chain.deployment("insurance").address,
            wallets=deployed_address(chain, "vehicle_wallet_factory"),
        )
    except DeploymentNotFound as exc:
        raise ConfigError(
            f"{exc.message}: the platform's contracts are not deployed on {chain.url} "
            f"(recorded in {chain.state_dir}/deployments)"
        ) from None


def _run(
    settings: Settings,
    chain: Chain,
    platform: Platform,
    *,
    port: int,
    announce: Callable[[str], None],
    keyring: Keyring | None = None,
    demo_participants: Sequence[str] = (),
) -> None:
    """Serve ``platform`` on ``chain``, acting for the participants whose keys ``keyring``
    holds; the demo API key speaks for ``demo_participants``."""
    import uvicorn

    from carpay.api.app import create_app
    from carpay.background import Background, Plan

    db = Database.from_settings(settings)
    db.upgrade()
    if demo_participants:
        _demo_api_key(db, settings, chain, demo_participants, announce)
    keyring = keyring or Keyring()
    signers = [relayer_account(settings), operator_account(settings), *keyring]
    # Indexer, relayers, dispatcher and keeper: in a process of their own (see background.py).
    background = Background(
        Plan(settings, chain.url, platform, tuple(key.key.hex() for key in signers))
    )
    app = create_app(db, chain, settings, keyring=keyring)
    config = uvicorn.Config(
        app, host=settings.api_host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    announce(f"carpay: API on http://{settings.api_host}:{port} (docs at /docs), database {db!r}")
    try:
        server.run()  # until Ctrl-C or SIGTERM
    finally:
        background.stop()
        db.dispose()
        announce("carpay: stopped")


def _demo_api_key(
    db: Database,
    settings: Settings,
    chain: Chain,
    participants_: Sequence[str],
    announce: Callable[[str], None],
) -> None:
    """An admin API key of the owner ``demo``, made once, kept in ``<data_dir>/demo-api-key``
    (readable by its owner only): the secret is never printed. ``demo`` speaks for the demo
    merchants and vehicle owners (``participants_``), so its webhooks hear of the merchants'
    payments and it may act for the owners (pay a fine, accept the offered policy)."""
    path = Path(settings.data_dir) / "demo-api-key"
    if not path.exists():
        with db.begin() as session:
            new = ApiKeys().create(session, name="demo", owner="demo", scopes=["admin"])
            for address in participants_:
                participants.link(session, owner="demo", chain_id=chain.chain_id, address=address)
            path.touch(mode=0o600)
            path.write_text(new.secret + "\n")
    announce(f"carpay: demo API key (admin) in {path}")


def up(
    settings: Settings,
    *,
    port: int | None = None,
    node_port: int | None = None,
    demo: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """The whole platform on the embedded node, the contracts deployed on first start. The
    node runs in a process of its own (see :mod:`carpay.background`)."""
    from carpay.background import NodeProcess
    from carpay.chain.node import dev_accounts

    node = NodeProcess(
        settings.chain_dir,
        chain_id=settings.chain_id,
        host=settings.node_host,
        port=settings.node_port if node_port is None else node_port,
        block_time=settings.block_time,
        mnemonic=settings.mnemonic,
    )
    accounts = dev_accounts(settings.mnemonic)
    try:
        announce(
            f"carpay: node on {node.url} (chain {settings.chain_id}, data in {settings.chain_dir})"
        )
        chain = Chain(node.url, state_dir=settings.data_dir)
        keys = DevKeys.from_mnemonic(settings.mnemonic)
        operator = operator_account(settings)
        platform = deploy_platform(chain, operator, treasury=keys.treasury.address)
        for code, address in platform.tokens.items():
            announce(f"carpay: currency token {code} at {address}")
        announce(f"carpay: checkout at {platform.checkout}, merchants at {platform.registry}")
        owners = list(accounts[: len(DEMO_VINS)]) if demo else []
        if demo:
            holders = [a.address for a in accounts]
            seed_demo(chain, platform, operator, holders=holders, merchants=keys.merchants)
            announce(
                f"carpay: demo data: {len(holders)} development accounts hold 10,000.00 of "
                f"each currency; one merchant of every category"
            )
        _run(
            settings,
            chain,
            platform,
            port=settings.api_port if port is None else port,
            announce=announce,
            # Development keys: the platform may use them. The demo vehicles' owners too.
            keyring=Keyring([*keys.merchants, *owners]),
            demo_participants=[a.address for a in (*keys.merchants, *owners)] if demo else (),
        )
    finally:
        node.stop()


def serve(
    settings: Settings, *, port: int | None = None, announce: Callable[[str], None] = print
) -> None:
    """Indexer, relayer, webhooks and API against ``settings.rpc_url`` and its database."""
    if not settings.rpc_url:
        raise ConfigError("carpay serve needs --rpc (or CARPAY_RPC_URL): the network to serve")
    chain = Chain(settings.rpc_url, state_dir=settings.data_dir)
    platform = _recorded_platform(chain)
    _run(
        settings,
        chain,
        platform,
        port=settings.api_port if port is None else port,
        announce=announce,
    )


def reindex(settings: Settings) -> int:
    """Rebuild the indexed tables from the chain; the number of events indexed.

    The chain is ``settings.rpc_url``; else the embedded node of ``carpay up`` if it runs,
    else the embedded node's data directory opened here for the while.
    """
    node = None
    chain = Chain(settings.node_url, state_dir=settings.data_dir)
    if not settings.rpc_url:
        try:
            chain.block_number()
        except ChainError:
            from carpay.chain.node import Node

            node = Node(
                settings.chain_dir, chain_id=settings.chain_id, port=0, mnemonic=settings.mnemonic
            ).start()
            chain = Chain(node.url, state_dir=settings.data_dir)
    db = Database.from_settings(settings)
    try:
        platform = _recorded_platform(chain)
        db.upgrade()
        return Indexer(db, chain, platform.watched(), confirmations=settings.final_after).reindex()
    finally:
        db.dispose()
        if node is not None:
            node.stop()
