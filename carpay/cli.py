"""The carpay command line: one clear line and a non-zero exit on any error."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from carpay.errors import CarpayError, NodeError
from carpay.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="carpay: payments for the automotive world on an EVM ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def node(
    data_dir: Annotated[Path | None, typer.Option(help="where the chain lives")] = None,
    host: Annotated[str | None, typer.Option(help="interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="JSON-RPC port (HTTP and WebSocket)")] = None,
    chain_id: Annotated[int | None, typer.Option(help="the chain id")] = None,
    block_time: Annotated[
        float | None, typer.Option(help="mine every S seconds instead of on arrival")
    ] = None,
    mnemonic: Annotated[
        str | None, typer.Option(help="mnemonic of the funded development accounts")
    ] = None,
    production: Annotated[
        bool, typer.Option("--production", help="no development accounts at all")
    ] = False,
) -> None:
    """Run the embedded EVM node (JSON-RPC over HTTP and WebSocket)."""
    from carpay.chain.node.split import SplitNode

    s = Settings()
    n = SplitNode(
        data_dir or s.chain_dir,
        chain_id=chain_id or s.chain_id,
        host=host or s.node_host,
        port=s.node_port if port is None else port,
        block_time=block_time or s.block_time,
        mnemonic=None if production else (mnemonic or s.mnemonic),
    )
    n.open()
    typer.echo(f"carpay node: chain {n.chain_id} at block {n.head_number}, data in {n.data_dir}")
    for address in n.addresses:
        typer.echo(f"  funded development account {address}")
    _serve(n)


def _serve(n) -> None:
    import asyncio
    import threading

    from carpay.chain.node.server import serve

    ready = threading.Event()

    def announce() -> None:
        ready.wait()
        typer.echo(f"carpay node: JSON-RPC on {n.url} and {n.ws_url}")

    threading.Thread(target=announce, daemon=True).start()
    try:
        asyncio.run(serve(n, ready))
    except KeyboardInterrupt:
        pass
    finally:
        n.close()
    if n.engine_failed:
        raise NodeError("the node's engine process ended unexpectedly; its log is above")


@app.command()
def up(
    data_dir: Annotated[Path | None, typer.Option(help="where carpay keeps its data")] = None,
    port: Annotated[int | None, typer.Option(help="API and web port (default 8000)")] = None,
    node_port: Annotated[
        int | None, typer.Option(help="JSON-RPC port of the node (default 8545)")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="add demo data")] = False,
) -> None:
    """Run everything on the embedded defaults: node, indexer, relayer, API and web."""
    from carpay import runtime

    s = Settings(**({"data_dir": data_dir} if data_dir else {}))
    runtime.up(s, port=port, node_port=node_port, demo=demo, announce=typer.echo)


@app.command()
def serve(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL of the network")] = None,
    database: Annotated[str | None, typer.Option(help="database URL (SQLAlchemy)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="where carpay keeps its state")] = None,
    port: Annotated[int | None, typer.Option(help="API and web port (default 8000)")] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(min=0, help="blocks on top of a block before it counts (default 12)"),
    ] = None,
) -> None:
    """Run indexer, relayer, webhooks and API against an existing network and database."""
    from carpay import runtime

    given = {
        "rpc_url": rpc,
        "database_url": database,
        "data_dir": data_dir,
        "confirmations": confirmations,
    }
    s = Settings(**{k: v for k, v in given.items() if v is not None})
    runtime.serve(s, port=port, announce=typer.echo)


@app.command()
def reindex(
    data_dir: Annotated[Path | None, typer.Option(help="where carpay keeps its data")] = None,
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL of the network")] = None,
    database: Annotated[str | None, typer.Option(help="database URL (SQLAlchemy)")] = None,
) -> None:
    """Rebuild the database's indexed tables from the chain."""
    from carpay import runtime

    given = {"rpc_url": rpc, "database_url": database, "data_dir": data_dir}
    s = Settings(**{k: v for k, v in given.items() if v is not None})
    typer.echo(f"carpay: reindexed {runtime.reindex(s)} events")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except CarpayError as exc:
        typer.echo(f"carpay: {exc.message}", err=True)
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            typer.echo(f"carpay: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
