"""Projections: how decoded events become rows of the typed ledger tables.

Each projection runs inside the indexer's round transaction with that round's events, in
chain order (each event a ``ledger_events`` row's values plus the block ``timestamp``).
Tables of log rows are cleared above a block on a reorg; state tables (balances, merchants)
are then rebuilt by :func:`rebuild_state` from what is left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from carpay.ledger.db import dialect_insert
from carpay.ledger.tables import (
    INDEX_TABLES,
    LedgerBalance,
    LedgerBlock,
    LedgerEvent,
    LedgerHoldMovement,
    LedgerMerchant,
    LedgerPayment,
    LedgerRefund,
    LedgerTransfer,
    LedgerVehicleRecord,
)

__all__ = ["PROJECTIONS", "ZERO_ADDRESS", "Projection", "rebuild_state"]

ZERO_ADDRESS = "0x" + "00" * 20

#: ``(session, chain_id, events)``: writes the rows ``events`` mean.
Projection = Callable[[Session, int, list[dict[str, Any]]], None]


def _located(event: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("chain_id", "block_number", "block_hash", "tx_hash", "log_index", "timestamp")
    return {k: event[k] for k in keys}


def project_transfers(session: Session, chain_id: int, events: list[dict[str, Any]]) -> None:
    """ERC-20 ``Transfer`` events into transfers, mints, burns and running balances."""
    rows = []
    deltas: dict[tuple[str, str], int] = defaultdict(int)
    for event in events:
        if not event.get("erc20_transfer"):
            continue
        sender, receiver, value = (event["args"][k] for k in list(event["args"])[:3])
        value = int(value)
        kind = (
            "mint" if sender == ZERO_ADDRESS else "burn" if receiver == ZERO_ADDRESS else "transfer"
        )
        rows.append(
            {
                "chain_id": chain_id,
                "block_number": event["block_number"],
                "block_hash": event["block_hash"],
                "tx_hash": event["tx_hash"],
                "log_index": event["log_index"],
                "timestamp": event["timestamp"],
                "token": event["address"],
                "from_address": sender,
                "to_address": receiver,
                "value": value,
                "kind": kind,
            }
        )
        if sender != ZERO_ADDRESS:
            deltas[(event["address"], sender)] -= value
        if receiver != ZERO_ADDRESS:
            deltas[(event["address"], receiver)] += value
    if not rows:
        return
    session.execute(sa.insert(LedgerTransfer), rows)
    current = _balances(session, chain_id, deltas)
    _store_balances(
        session, chain_id, {pair: current.get(pair, 0) + delta for pair, delta in deltas.items()}
    )


def _balances(
    session: Session, chain_id: int, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    by_token: dict[str, list[str]] = defaultdict(list)
    for token, account in pairs:
        by_token[token].append(account)
    found: dict[tuple[str, str], int] = {}
    for token, accounts in by_token.items():
        for chunk in _chunks(accounts, 500):
            result = session.execute(
                sa.select(LedgerBalance.account, LedgerBalance.balance).where(
                    LedgerBalance.chain_id == chain_id,
                    LedgerBalance.token == token,
                    LedgerBalance.account.in_(chunk),
                )
            )
            found.update({(token, account): balance for account, balance in result})
    return found


def _upsert(session: Session, table: type, keys: Sequence[str], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    statement = dialect_insert(session.bind.dialect.name)(table)
    columns = [c for c in rows[0] if c not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={c: statement.excluded[c] for c in columns}
    )
    session.execute(statement, rows)


def _store_balances(
    session: Session, chain_id: int, balances: Mapping[tuple[str, str], int]
) -> None:
    rows = [
        {"chain_id": chain_id, "token": token, "account": account, "balance": balance}
        for (token, account), balance in balances.items()
    ]
    _upsert(session, LedgerBalance, ("chain_id", "token", "account"), rows)


def _recompute_balances(session: Session, chain_id: int, pairs: set[tuple[str, str]]) -> None:
    """Balances of ``pairs`` summed again from the transfers that are left."""
    balances = {}
    for token, account in pairs:
        t = LedgerTransfer
        received = session.execute(
            sa.select(t.value).where(
                t.chain_id == chain_id, t.token == token, t.to_address == account
            )
        ).scalars()
        sent = session.execute(
            sa.select(t.value).where(
                t.chain_id == chain_id, t.token == token, t.from_address == account
            )
        ).scalars()
        balances[(token, account)] = sum(received) - sum(sent)
    _store_balances(session, chain_id, balances)


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- checkout --------------------------------------------------------------------------------

_HOLD_STEPS = {
    "HoldCaptured": "captured",
    "HoldVoided": "voided",
    "HoldReclaimed": "reclaimed",
}


def project_checkout(session: Session, chain_id: int, events: list[dict[str, Any]]) -> None:
    """Invoices paid, refunds and holds into payments, refunds and hold movements."""
    payments, refunds, moves = [], [], []
    placed: dict[str, dict[str, Any]] = {}  # holds placed in this round, by id
    for event in events:
        if event["contract"] != "checkout":
            continue
        name, args = event["event"], event["args"]
        if name == "InvoicePaid":
            payments.append(
                {
                    **_located(event),
                    "kind": "invoice",
                    "reference": args["invoice_id"],
                    "payer": args["payer"],
                    "merchant": args["merchant"],
                    "token": args["token"],
                    "gross": int(args["gross"]),
                    "fee": int(args["fee"]),
                    "net": int(args["net"]),
                }
            )
        elif name == "Refunded":
            refunds.append(
                {
                    **_located(event),
                    "invoice_id": args["invoice_id"],
                    "payer": args["payer"],
                    "merchant": args["merchant"],
                    "token": args["token"],
                    "amount": int(args["amount"]),
                    "refunded": int(args["refunded"]),
                }
            )
        elif name == "HoldPlaced":
            move = {
                **_located(event),
                "hold_id": args["hold_id"],
                "kind": "placed",
                "payer": args["payer"],
                "merchant": args["merchant"],
                "token": args["token"],
                "amount": int(args["amount"]),
                "returned": 0,
                "remaining": int(args["amount"]),
                "deadline": int(args["deadline"]),
            }
            placed[args["hold_id"]] = move
            moves.append(move)
        elif name in _HOLD_STEPS:
            hold = placed.get(args["hold_id"]) or _placed_hold(session, chain_id, args["hold_id"])
            token = hold["token"] if hold else ZERO_ADDRESS
            step = {
                **_located(event),
                "hold_id": args["hold_id"],
                "kind": _HOLD_STEPS[name],
                "payer": args["payer"],
                "merchant": args["merchant"],
                "token": token,
                "amount": int(args.get("gross", args.get("returned", 0))),
                "returned": int(args.get("returned", 0)),
                "remaining": int(args.get("remaining", 0)),
                "deadline": None,
            }
            moves.append(step)
            if name == "HoldCaptured":
                payments.append(
                    {
                        **_located(event),
                        "kind": "capture",
                        "reference": args["hold_id"],
                        "payer": args["payer"],
                        "merchant": args["merchant"],
                        "token": token,
                        "gross": int(args["gross"]),
                        "fee": int(args["fee"]),
                        "net": int(args["net"]),
                    }
                )
    for table, rows in (
        (LedgerPayment, payments),
        (LedgerRefund, refunds),
        (LedgerHoldMovement, moves),
    ):
        if rows:
            session.execute(sa.insert(table), rows)


def _placed_hold(session: Session, chain_id: int, hold_id: str) -> dict[str, Any] | None:
    row = session.execute(
        sa.select(LedgerHoldMovement.token).where(
            LedgerHoldMovement.chain_id == chain_id,
            LedgerHoldMovement.hold_id == hold_id,
            LedgerHoldMovement.kind == "placed",
        )
    ).first()
    return {"token": row.token} if row else None


# -- vehicles ------------------------------------------------------------------------------

_VEHICLE_CONTRACTS = (
    "vehicle_registry",
    "traffic_fines",
    "vehicle_escrow",
    "insurance",
    "vehicle_wallet_factory",
)


def project_vehicles(session: Session, chain_id: int, events: list[dict[str, Any]]) -> None:
    """Every event about a title (its transfers, liens, service records, fines, sales by escrow,
    insurance policies and claims, its wallet) into the vehicle's record."""
    rows = []
    for event in events:
        if event["contract"] not in _VEHICLE_CONTRACTS:
            continue
        args = event["args"]
        if "title" in args:
            title = args["title"]
        elif event["event"] == "Transfer" and len(args) == 3:
            title = list(args.values())[2]  # ERC-721: from, to, token id
        else:
            continue
        rows.append(
            {
                **_located(event),
                "title": str(title),
                "contract": event["contract"],
                "kind": event["event"],
                "data": args,
            }
        )
    if rows:
        session.execute(sa.insert(LedgerVehicleRecord), rows)


# -- merchant registry -----------------------------------------------------------------------


def project_merchants(session: Session, chain_id: int, events: list[dict[str, Any]]) -> None:
    """The registry's events into the current state of each merchant."""
    changes = [e for e in events if e["contract"] == "merchant_registry"]
    if not changes:
        return
    wanted = {e["args"]["merchant"] for e in changes if "merchant" in e["args"]}
    current = {
        m.merchant: {c.name: getattr(m, c.name) for c in LedgerMerchant.__table__.columns}
        for m in session.scalars(
            sa.select(LedgerMerchant).where(
                LedgerMerchant.chain_id == chain_id, LedgerMerchant.merchant.in_(wanted)
            )
        )
    }
    _replay_merchants(current, chain_id, changes)
    _upsert(session, LedgerMerchant, ("chain_id", "merchant"), list(current.values()))


def _replay_merchants(
    merchants: dict[str, dict[str, Any]], chain_id: int, events: Iterable[Mapping[str, Any]]
) -> None:
    for event in events:
        name, args, block = event["event"], event["args"], event["block_number"]
        merchant = args.get("merchant")
        if name == "MerchantRegistered":
            merchants[merchant] = {
                "chain_id": chain_id,
                "merchant": merchant,
                "category": int(args["category"]),
                "payout": args["payout"],
                "fee_bps": int(args["fee_bps"]),
                "active": True,
                "registered_block": block,
                "updated_block": block,
            }
            continue
        row = merchants.get(merchant)
        if row is None:
            continue
        if name == "PayoutChanged":
            row["payout"] = args["payout"]
        elif name == "FeeTierChanged":
            row["fee_bps"] = int(args["fee_bps"])
        elif name == "CategoryChanged":
            row["category"] = int(args["category"])
        elif name == "ActiveChanged":
            row["active"] = bool(args["active"])
        else:
            continue
        row["updated_block"] = block


# -- after a rollback ------------------------------------------------------------------------


def rebuild_state(session: Session, chain_id: int, *, above: int) -> None:
    """Delete every row of a block above ``above`` and make the state tables agree again."""
    touched = session.execute(
        sa.select(
            LedgerTransfer.token, LedgerTransfer.from_address, LedgerTransfer.to_address
        ).where(LedgerTransfer.chain_id == chain_id, LedgerTransfer.block_number > above)
    ).all()
    for table in INDEX_TABLES:
        number = table.number if table is LedgerBlock else table.block_number
        session.execute(sa.delete(table).where(table.chain_id == chain_id, number > above))
    pairs = {(t, a) for t, f, r in touched for a in (f, r) if a != ZERO_ADDRESS}
    _recompute_balances(session, chain_id, pairs)
    session.execute(sa.delete(LedgerMerchant).where(LedgerMerchant.chain_id == chain_id))
    registry_events = session.scalars(
        sa.select(LedgerEvent)
        .where(LedgerEvent.chain_id == chain_id, LedgerEvent.contract == "merchant_registry")
        .order_by(LedgerEvent.block_number, LedgerEvent.log_index)
    )
    merchants: dict[str, dict[str, Any]] = {}
    _replay_merchants(
        merchants,
        chain_id,
        (
            {"event": e.event, "args": e.args, "block_number": e.block_number}
            for e in registry_events
        ),
    )
    _upsert(session, LedgerMerchant, ("chain_id", "merchant"), list(merchants.values()))


#: What every indexer projects, in this order.
PROJECTIONS: tuple[Projection, ...] = (
    project_transfers,
    project_checkout,
    project_merchants,
    project_vehicles,
)
