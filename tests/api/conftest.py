"""Fixtures of the API tests: the app on a clean database (SQLite, then PostgreSQL), keys."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import uvicorn
from fastapi.testclient import TestClient

from carpay.accounts import Keyring
from carpay.accounts.api_keys import ApiKeys
from carpay.api import create_app
from carpay.settings import Settings
from carpay.testing import free_port
from carpay.testing.database import database, database_url

__all__ = ["database", "database_url"]

RELAYER = "0x" + "11" * 20


class Clock:
    """The time of records: starts now, moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Ticker:
    """The time of rate limits, in seconds: moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def chain_clock(chain) -> Clock:
    """A :class:`Clock` at the chain's latest block (the embedded node's runs ahead)."""
    clock = Clock()
    clock.now = datetime.fromtimestamp(chain.w3.eth.get_block("latest")["timestamp"], UTC)
    return clock


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def settings() -> Settings:
    return Settings(rate_limit=5.0, rate_burst=1000, chain_id=1337)


@pytest.fixture
def chain():
    """No node: tests that need one override this."""
    return None


@pytest.fixture
def keyring() -> Keyring:
    """The participants' keys the platform holds: none, unless a test says."""
    return Keyring()


@pytest.fixture
def app(database, chain, settings, clock, ticker, keyring):
    return create_app(
        database,
        chain,
        settings,
        clock=clock,
        monotonic=ticker,
        relayer_address=RELAYER,
        keyring=keyring,
    )


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def make_key(database, *scopes: str, owner: str = "m1", name: str = "test") -> str:
    """A new API key's secret, made the way an operator would (not through the API)."""
    with database.begin() as s:
        return ApiKeys().create(s, name=name, owner=owner, scopes=scopes or ["admin"]).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def admin(database) -> dict[str, str]:
    """Headers of an admin key of merchant m1."""
    return bearer(make_key(database, "admin"))


@pytest.fixture
def m1(database) -> dict[str, str]:
    """Headers of an API key of the owner ``m1``, who moves money and reads the ledger."""
    return bearer(make_key(database, "payments:write", "transfers:read", "ledger:read", owner="m1"))


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The app served by uvicorn on a free port: real HTTP, real threads."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def post(client, headers: dict[str, str], path: str, body: dict, key: str):
    """POST ``body`` to ``path`` with ``headers`` and the Idempotency-Key ``key``."""
    return client.post(path, json=body, headers=headers | {"Idempotency-Key": key})


def relay_and_index(database, chain, signer, clock) -> None:
    """Everything ``signer``'s relayer has to send, sent; then the platform's events indexed
    (``chain.platform`` is the deployment)."""
    from carpay.ledger import Indexer
    from carpay.services.relayer import Relayer

    relayer = Relayer(database, chain, signer, clock=clock)
    while relayer.run_once():
        pass
    Indexer(database, chain, chain.platform.watched()).catch_up()
