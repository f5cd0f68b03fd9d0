"""Read queries over the indexed ledger: histories, balances, merchant statements, the explorer.

Lists are keyset-paginated (newest first) on indexed columns, so a page costs the same on the
first day and after years of history. Addresses and hashes are matched lowercase.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from carpay.ledger.pagination import Page, paginate
from carpay.ledger.tables import (
    LedgerBalance,
    LedgerBlock,
    LedgerEvent,
    LedgerHoldMovement,
    LedgerMerchant,
    LedgerPayment,
    LedgerRefund,
    LedgerTransaction,
    LedgerTransfer,
    LedgerVehicleRecord,
)

__all__ = [
    "Settlement",
    "balances",
    "block",
    "blocks",
    "escrow",
    "hold",
    "merchant",
    "merchant_payments",
    "merchant_settlement",
    "merchants",
    "payer_payments",
    "policies",
    "transaction",
    "transfers",
    "vehicle",
]


def balances(session: Session, chain_id: int, account: str) -> dict[str, int]:
    """``account``'s balance of each token it ever held, by token address."""
    rows = session.execute(
        sa.select(LedgerBalance.token, LedgerBalance.balance).where(
            LedgerBalance.chain_id == chain_id, LedgerBalance.account == account.lower()
        )
    )
    return dict(rows.all())


def transfers(
    session: Session,
    chain_id: int,
    account: str,
    *,
    token: str | None = None,
    limit: int = 50,
    after: int | None = None,
) -> Page[LedgerTransfer]:
    """Money in and out of ``account`` (transfers, mints, burns), newest first."""
    account = account.lower()
    t = LedgerTransfer
    # Two index range scans joined by id, not one OR that defeats both indexes.
    sent = sa.select(t.id).where(t.chain_id == chain_id, t.from_address == account)
    received = sa.select(t.id).where(t.chain_id == chain_id, t.to_address == account)
    if after is not None:
        sent, received = sent.where(t.id < after), received.where(t.id < after)
    if token is not None:
        sent = sent.where(t.token == token.lower())
        received = received.where(t.token == token.lower())
    sides = [q.order_by(t.id.desc()).limit(limit + 1).subquery() for q in (sent, received)]
    ids = sa.union(*(sa.select(side.c.id) for side in sides)).subquery()
    stmt = sa.select(t).where(t.id.in_(sa.select(ids.c.id)))
    return paginate(session, stmt, t.id, limit=limit, after=after)


def merchants(
    session: Session, chain_id: int, *, category: int | None = None
) -> list[LedgerMerchant]:
    """Every registered merchant, optionally of one category."""
    stmt = sa.select(LedgerMerchant).where(LedgerMerchant.chain_id == chain_id)
    if category is not None:
        stmt = stmt.where(LedgerMerchant.category == category)
    return list(session.scalars(stmt.order_by(LedgerMerchant.registered_block)))


def merchant(session: Session, chain_id: int, address: str) -> LedgerMerchant | None:
    return session.get(LedgerMerchant, (chain_id, address.lower()))


def payer_payments(
    session: Session, chain_id: int, payer: str, *, limit: int = 50, after: int | None = None
) -> Page[LedgerPayment]:
    """What ``payer`` paid through checkout (invoices, and the captures of its holds): a
    vehicle wallet's spends."""
    p = LedgerPayment
    stmt = sa.select(p).where(p.chain_id == chain_id, p.payer == payer.lower())
    return paginate(session, stmt, p.id, limit=limit, after=after)


def contract_events(
    session: Session, chain_id: int, address: str, *, limit: int = 50, after: int | None = None
) -> Page[LedgerEvent]:
    """The events of the contract at ``address``, newest first: a vehicle wallet's activity
    (its limits, categories, freezes, device keys, payments, holds and withdrawals)."""
    e = LedgerEvent
    stmt = sa.select(e).where(e.chain_id == chain_id, e.address == address.lower())
    return paginate(session, stmt, e.id, limit=limit, after=after)


def block_times(session: Session, chain_id: int, numbers: set[int]) -> dict[int, int]:
    """The timestamps of the indexed blocks ``numbers``."""
    b = LedgerBlock
    stmt = sa.select(b.number, b.timestamp).where(b.chain_id == chain_id, b.number.in_(numbers))
    return dict(session.execute(stmt).tuples().all())


def merchant_payments(
    session: Session,
    chain_id: int,
    merchant: str,
    *,
    since: int | None = None,
    until: int | None = None,
    limit: int = 50,
    after: int | None = None,
) -> Page[LedgerPayment]:
    """Payments ``merchant`` received (invoices and captures) in ``[since, until)``."""
    p = LedgerPayment
    stmt = sa.select(p).where(p.chain_id == chain_id, p.merchant == merchant.lower())
    if since is not None:
        stmt = stmt.where(p.timestamp >= since)
    if until is not None:
        stmt = stmt.where(p.timestamp < until)
    return paginate(session, stmt, p.id, limit=limit, after=after)


@dataclass(frozen=True)
class Settlement:
    """What a merchant took in one token over a period, in the token's smallest unit."""

    token: str
    payments: int
    gross: int
    fee: int
    net: int
    refunded: int


def merchant_settlement(
    session: Session,
    chain_id: int,
    merchant: str,
    *,
    since: int | None = None,
    until: int | None = None,
) -> list[Settlement]:
    """Per token: the count, gross, fees, net and refunds of ``merchant`` in ``[since, until)``."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for table, columns in (
        (LedgerPayment, ("gross", "fee", "net")),
        (LedgerRefund, ("amount",)),
    ):
        stmt = sa.select(table.token, *(getattr(table, c) for c in columns)).where(
            table.chain_id == chain_id, table.merchant == merchant.lower()
        )
        if since is not None:
            stmt = stmt.where(table.timestamp >= since)
        if until is not None:
            stmt = stmt.where(table.timestamp < until)
        for token, *amounts in session.execute(stmt):
            row = totals[token]
            if table is LedgerPayment:
                row[0] += 1
                row[1] += amounts[0]
                row[2] += amounts[1]
                row[3] += amounts[2]
            else:
                row[4] += amounts[0]
    return [Settlement(token, *values) for token, values in sorted(totals.items())]


def hold(session: Session, chain_id: int, hold_id: str) -> list[LedgerHoldMovement]:
    """Every step of one hold, oldest first (empty if there is no such hold)."""
    m = LedgerHoldMovement
    stmt = sa.select(m).where(m.chain_id == chain_id, m.hold_id == hold_id.lower())
    return list(session.scalars(stmt.order_by(m.id)))


def blocks(
    session: Session, chain_id: int, *, limit: int = 20, before: int | None = None
) -> list[LedgerBlock]:
    """The newest indexed blocks, below ``before`` when given."""
    stmt = sa.select(LedgerBlock).where(LedgerBlock.chain_id == chain_id)
    if before is not None:
        stmt = stmt.where(LedgerBlock.number < before)
    return list(session.scalars(stmt.order_by(LedgerBlock.number.desc()).limit(limit)))


def block(session: Session, chain_id: int, number: int) -> tuple[LedgerBlock, list[str]] | None:
    """An indexed block and the hashes of its transactions in order."""
    found = session.get(LedgerBlock, (chain_id, number))
    if found is None:
        return None
    t = LedgerTransaction
    hashes = session.scalars(
        sa.select(t.hash)
        .where(t.chain_id == chain_id, t.block_number == number)
        .order_by(t.tx_index)
    )
    return found, list(hashes)


def transaction(
    session: Session, chain_id: int, tx_hash: str
) -> tuple[LedgerTransaction, list[LedgerEvent]] | None:
    """An indexed transaction and the decoded events of carpay's contracts it emitted."""
    found = session.get(LedgerTransaction, (chain_id, tx_hash.lower()))
    if found is None:
        return None
    e = LedgerEvent
    events = session.scalars(
        sa.select(e).where(e.chain_id == chain_id, e.tx_hash == found.hash).order_by(e.log_index)
    )
    return found, list(events)


def vehicle(session: Session, chain_id: int, title: int) -> dict[str, Any] | None:
    """A vehicle's full record from its title's events: VIN, owners in order, the open lien,
    service history, fines and insurance policies with their state, its wallet (None if the
    title was never seen)."""
    r = LedgerVehicleRecord
    rows = list(
        session.scalars(
            sa.select(r).where(r.chain_id == chain_id, r.title == str(title)).order_by(r.id)
        )
    )
    if not rows:
        return None
    record: dict[str, Any] = {
        "title": str(title),
        "vin": None,
        "owner": None,
        "owners": [],
        "lien": None,
        "service": [],
        "fines": [],
        "policies": [],
        "wallet": None,
    }
    fines: dict[str, dict[str, Any]] = {}
    policies: dict[str, dict[str, Any]] = {}
    for row in rows:
        data, at = row.data, {"block_number": row.block_number, "tx_hash": row.tx_hash}
        if row.kind == "TitleMinted":
            record["vin"] = data["vin"]
        elif row.kind == "Transfer":
            owner = list(data.values())[1]
            record["owner"] = owner
            record["owners"].append({"owner": owner, "since": row.timestamp, **at})
        elif row.kind == "LienRecorded":
            record["lien"] = {"lender": data["lender"], "payoff": int(data["amount"])}
        elif row.kind == "LienPayoffChanged" and record["lien"]:
            record["lien"]["payoff"] = int(data["amount"])
        elif row.kind == "LienReleased":
            record["lien"] = None
        elif row.kind == "ServiceRecorded":
            record["service"].append(
                {
                    "shop": data["shop"],
                    "document_hash": data["document_hash"],
                    "odometer": int(data["odometer"]),
                    "timestamp": int(data["timestamp"]),
                    **at,
                }
            )
        elif row.kind == "FineIssued":
            fines[data["fine_id"]] = {
                "fine_id": int(data["fine_id"]),
                "authority": data["authority"],
                "token": data["token"],
                "amount": int(data["amount"]),
                "late_fee": int(data["late_fee"]),
                "due": int(data["due"]),
                "status": "unpaid",
                "paid": None,
                **at,
            }
        elif row.kind in ("FinePaid", "FineWaived") and data["fine_id"] in fines:
            fine = fines[data["fine_id"]]
            fine["status"] = "paid" if row.kind == "FinePaid" else "waived"
            fine["paid"] = int(data["paid"]) if row.kind == "FinePaid" else None
        elif row.contract == "insurance":
            _policy_event(policies, row.kind, data, at)
        elif row.kind == "WalletCreated":
            record["wallet"] = {"wallet": data["wallet"], "created_by": data["creator"], **at}
    record["fines"] = list(fines.values())
    record["policies"] = list(policies.values())
    return record


def policies(session: Session, chain_id: int, *, status: str | None = None) -> list[dict[str, Any]]:
    """Every insurance policy with its state (as :func:`vehicle` gives them), oldest first;
    with ``status`` (``offered``, ``active``, ``lapsed``, ...) only those in it."""
    r = LedgerVehicleRecord
    found: dict[str, dict[str, Any]] = {}
    for row in session.scalars(
        sa.select(r).where(r.chain_id == chain_id, r.contract == "insurance").order_by(r.id)
    ):
        at = {"block_number": row.block_number, "tx_hash": row.tx_hash}
        _policy_event(found, row.kind, row.data, at)
    return [p for p in found.values() if status is None or p["status"] == status]


_POLICY_ENDINGS = {
    "OfferWithdrawn": "withdrawn",
    "PolicyLapsed": "lapsed",
    "PolicyCancelled": "cancelled",
}


def _policy_event(
    policies: dict[str, dict[str, Any]], kind: str, data: dict[str, Any], at: dict[str, Any]
) -> None:
    """One insurance event about a vehicle into its policies: offered, accepted (holder and the
    term paid through), renewed, ended, and the claims paid under it."""
    if kind == "PolicyOffered":
        policies[data["policy_id"]] = {
            "policy_id": int(data["policy_id"]),
            "title": data["title"],
            "insurer": data["insurer"],
            "token": data["token"],
            "premium": int(data["premium"]),
            "term": int(data["term"]),
            "grace": int(data["grace"]),
            "status": "offered",
            "holder": None,
            "paid_through": None,
            "claims_paid": 0,
            **at,
        }
        return
    policy = policies.get(data["policy_id"])
    if policy is None:
        return
    if kind == "PolicyAccepted":
        policy.update(
            status="active",
            holder=data["holder"],
            premium=int(data["premium"]),
            paid_through=int(data["paid_through"]),
        )
    elif kind == "PolicyRenewed":
        policy.update(premium=int(data["premium"]), paid_through=int(data["paid_through"]))
    elif kind in _POLICY_ENDINGS:
        policy["status"] = _POLICY_ENDINGS[kind]
    elif kind == "ClaimPaid":
        policy["claims_paid"] += int(data["amount"])


def row_dict(row: Any, *exclude: str) -> dict[str, Any]:
    """A table row as a dict of its columns."""
    return {
        c.name: getattr(row, c.name)
        for c in row.__table__.columns
        if c.name not in ("chain_id", *exclude)
    }


def escrow(session: Session, chain_id: int, escrow_id: int) -> dict[str, Any] | None:
    """An escrow's terms and state from its events (None if it was never created): ``state``
    is ``open``, ``disputed``, ``settled`` or ``unwound``; ``funded`` and ``deposited`` say
    which sides are in."""
    e = LedgerEvent
    rows = list(
        session.scalars(
            sa.select(e)
            .where(
                e.chain_id == chain_id,
                e.contract == "vehicle_escrow",
                e.args["escrow_id"].as_string() == str(escrow_id),
            )
            .order_by(e.id)
        )
    )
    if not rows or rows[0].event != "EscrowCreated":
        return None
    args = rows[0].args
    found: dict[str, Any] = {
        "escrow_id": escrow_id,
        "title": args["title"],
        "seller": args["seller"],
        "buyer": args["buyer"],
        "token": args["token"],
        "arbiter": args["arbiter"],
        "price": int(args["price"]),
        "deadline": int(args["deadline"]),
        "fee_bps": int(args["fee_bps"]),
        "state": "open",
        "funded": False,
        "deposited": False,
        "lender": None,
        "payoff": 0,
        "block_number": rows[0].block_number,
        "tx_hash": rows[0].tx_hash,
    }
    for row in rows[1:]:
        if row.event == "EscrowFunded":
            found["funded"] = True
        elif row.event == "TitleDeposited":
            found["deposited"] = True
            lender = row.args["lender"]
            found["lender"] = None if int(lender, 16) == 0 else lender
            found["payoff"] = int(row.args["payoff"])
        elif row.event == "EscrowDisputed":
            found["state"] = "disputed"
        elif row.event == "EscrowSettled":
            found["state"] = "settled"
        elif row.event == "EscrowUnwound":
            found["state"] = "unwound"
            found["funded"] = found["deposited"] = False
    return found
