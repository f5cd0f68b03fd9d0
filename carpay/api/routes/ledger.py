"""GET routes over the indexed ledger: balances, histories, merchant statements, the explorer."""

from __future__ import annotations

from typing import Annotated, Any

from eth_utils import keccak
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from carpay.accounts.api_keys import Principal
from carpay.api.problems import problem_responses
from carpay.api.routes.common import After, Limit, platform
from carpay.api.schemas import List, page_of
from carpay.api.security import requires
from carpay.errors import NotFound
from carpay.ledger import queries
from carpay.ledger.queries import row_dict
from carpay.services.vin import validate_vin

router = APIRouter(tags=["ledger"], responses=problem_responses(401, 403, 422, 429))

AddressPath = Annotated[str, Path(pattern="^0x[0-9a-fA-F]{40}$")]
HashPath = Annotated[str, Path(pattern="^0x[0-9a-fA-F]{64}$")]
AddressQuery = Annotated[str | None, Query(pattern="^0x[0-9a-fA-F]{40}$")]
Timestamp = Annotated[int | None, Query(ge=0, le=2**63 - 1, description="unix seconds")]
reader = Depends(requires("ledger:read"))


class Located(BaseModel):
    """Where on the chain a record comes from."""

    id: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    timestamp: int


class TransferOut(Located):
    """Money moving between two accounts; ``kind`` is transfer, mint or burn."""

    token: str
    from_address: str
    to_address: str
    value: int
    kind: str


class PaymentOut(Located):
    """A payment a merchant received: an invoice (``reference`` its id) or a hold capture."""

    kind: str
    reference: str
    payer: str
    merchant: str
    token: str
    gross: int
    fee: int
    net: int


class HoldMovementOut(Located):
    """One step of a hold: placed, captured, voided or reclaimed."""

    hold_id: str
    kind: str
    payer: str
    merchant: str
    token: str
    amount: int
    returned: int
    remaining: int
    deadline: int | None


class HoldOut(BaseModel):
    """A hold: its steps, and whether it is still open."""

    hold_id: str
    open: bool
    remaining: int
    movements: list[HoldMovementOut]


class BalanceOut(BaseModel):
    token: str
    balance: int


class SettlementOut(BaseModel):
    """A merchant's takings in one token over a period."""

    token: str
    payments: int
    gross: int
    fee: int
    net: int
    refunded: int


class MerchantOut(BaseModel):
    merchant: str
    category: int
    payout: str
    fee_bps: int
    active: bool
    registered_block: int
    updated_block: int


class BlockOut(BaseModel):
    number: int
    hash: str
    parent_hash: str
    timestamp: int
    tx_count: int
    gas_used: int
    transactions: list[str] | None = None


class WalletEventOut(Located):
    """One event of a vehicle wallet: ``event`` is LimitsSet, CategoryAllowed, Frozen,
    Unfrozen, DeviceKeyRotated, InvoicePaid, HoldPlaced or Withdrawn; ``args`` its arguments
    (integers as decimal strings)."""

    event: str
    args: dict[str, Any]


class EventOut(BaseModel):
    log_index: int
    address: str
    contract: str
    event: str
    args: dict[str, Any]


class TransactionOut(BaseModel):
    hash: str
    block_number: int
    block_hash: str
    tx_index: int
    from_address: str
    to_address: str | None
    value: int
    nonce: int
    events: list[EventOut]


def _chain_id(request: Request) -> int:
    p = platform(request)
    return p.chain.chain_id if p.chain is not None else p.settings.chain_id


@router.get("/accounts/{address}/balances", response_model=list[BalanceOut], summary="Balances")
def get_balances(address: AddressPath, request: Request, _: Principal = reader) -> list[dict]:
    with platform(request).db.read() as session:
        found = queries.balances(session, _chain_id(request), address)
    return [{"token": t, "balance": b} for t, b in sorted(found.items())]


@router.get(
    "/accounts/{address}/transfers",
    response_model=List[TransferOut],
    summary="An account's money in and out",
)
def get_transfers(
    address: AddressPath,
    request: Request,
    token: AddressQuery = None,
    limit: Limit = 50,
    after: After = None,
    _: Principal = reader,
) -> dict:
    with platform(request).db.read() as session:
        page = queries.transfers(
            session, _chain_id(request), address, token=token, limit=limit, after=after
        )
        return page_of(page, row_dict)


@router.get("/merchants", response_model=list[MerchantOut], summary="Registered merchants")
def get_merchants(
    request: Request,
    category: Annotated[int | None, Query(ge=0, le=8)] = None,
    _: Principal = reader,
) -> list[dict]:
    with platform(request).db.read() as session:
        return [
            row_dict(m) for m in queries.merchants(session, _chain_id(request), category=category)
        ]


@router.get(
    "/merchants/{address}",
    response_model=MerchantOut,
    responses=problem_responses(404),
    summary="A merchant",
)
def get_merchant(address: AddressPath, request: Request, _: Principal = reader) -> dict:
    with platform(request).db.read() as session:
        found = queries.merchant(session, _chain_id(request), address)
        if found is None:
            raise NotFound(f"no merchant {address}")
        return row_dict(found)


@router.get(
    "/merchants/{address}/payments",
    response_model=List[PaymentOut],
    summary="Payments a merchant received",
)
def get_merchant_payments(
    address: AddressPath,
    request: Request,
    since: Timestamp = None,
    until: Timestamp = None,
    limit: Limit = 50,
    after: After = None,
    _: Principal = reader,
) -> dict:
    with platform(request).db.read() as session:
        page = queries.merchant_payments(
            session, _chain_id(request), address, since=since, until=until, limit=limit, after=after
        )
        return page_of(page, row_dict)


@router.get(
    "/vehicle-wallets/{address}/spends",
    response_model=List[PaymentOut],
    summary="What a vehicle wallet paid",
)
def get_wallet_spends(
    address: AddressPath,
    request: Request,
    limit: Limit = 50,
    after: After = None,
    _: Principal = reader,
) -> dict:
    """The invoices a vehicle wallet paid and the captures of its holds, newest first."""
    with platform(request).db.read() as session:
        page = queries.payer_payments(
            session, _chain_id(request), address, limit=limit, after=after
        )
        return page_of(page, row_dict)


@router.get(
    "/vehicle-wallets/{address}/events",
    response_model=List[WalletEventOut],
    summary="What happened to a vehicle wallet",
)
def get_wallet_events(
    address: AddressPath,
    request: Request,
    limit: Limit = 50,
    after: After = None,
    _: Principal = reader,
) -> dict:
    """A vehicle wallet's events, newest first: its owner's limits, categories, freezes and
    device keys, the car's payments and holds, withdrawals."""
    with platform(request).db.read() as session:
        chain_id = _chain_id(request)
        page = queries.contract_events(session, chain_id, address, limit=limit, after=after)
        times = queries.block_times(session, chain_id, {e.block_number for e in page.items})
        return page_of(
            page,
            lambda e: row_dict(e, "address", "contract") | {"timestamp": times[e.block_number]},
        )


@router.get(
    "/merchants/{address}/settlement",
    response_model=list[SettlementOut],
    summary="A merchant's takings per token over a period",
)
def get_merchant_settlement(
    address: AddressPath,
    request: Request,
    since: Timestamp = None,
    until: Timestamp = None,
    _: Principal = reader,
) -> list[dict]:
    with platform(request).db.read() as session:
        found = queries.merchant_settlement(
            session, _chain_id(request), address, since=since, until=until
        )
    return [s.__dict__ for s in found]


@router.get(
    "/holds/{hold_id}", response_model=HoldOut, responses=problem_responses(404), summary="A hold"
)
def get_hold(hold_id: HashPath, request: Request, _: Principal = reader) -> dict:
    with platform(request).db.read() as session:
        steps = queries.hold(session, _chain_id(request), hold_id)
        if not steps:
            raise NotFound(f"no hold {hold_id}")
        last = steps[-1]
        return {
            "hold_id": hold_id.lower(),
            "open": last.kind in ("placed", "captured") and last.remaining > 0,
            "remaining": last.remaining if last.kind in ("placed", "captured") else 0,
            "movements": [row_dict(s) for s in steps],
        }


class VehicleOut(BaseModel):
    """A vehicle's record: owners in order, the open lien, service history, fines, insurance
    policies."""

    title: str
    vin: str | None
    owner: str | None
    owners: list[dict[str, Any]]
    lien: dict[str, Any] | None
    service: list[dict[str, Any]]
    fines: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    wallet: dict[str, Any] | None = None


@router.get(
    "/vehicles/{vin}",
    response_model=VehicleOut,
    responses=problem_responses(404),
    summary="A vehicle's full record, by VIN",
)
def get_vehicle(
    vin: Annotated[str, Path(min_length=17, max_length=17, pattern="^[0-9A-Za-z]{17}$")],
    request: Request,
    _: Principal = reader,
) -> dict:
    vin = validate_vin(vin)
    title = int.from_bytes(keccak(text=vin), "big")
    with platform(request).db.read() as session:
        found = queries.vehicle(session, _chain_id(request), title)
    if found is None:
        raise NotFound(f"no vehicle {vin} is titled")
    return found


@router.get("/explorer/blocks", response_model=list[BlockOut], summary="The newest blocks")
def get_blocks(
    request: Request,
    limit: Limit = 20,
    before: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    _: Principal = reader,
) -> list[dict]:
    with platform(request).db.read() as session:
        return [
            row_dict(b)
            for b in queries.blocks(session, _chain_id(request), limit=limit, before=before)
        ]


@router.get(
    "/explorer/blocks/{number}",
    response_model=BlockOut,
    responses=problem_responses(404),
    summary="A block",
)
def get_block(
    number: Annotated[int, Path(ge=0, le=2**63 - 1)], request: Request, _: Principal = reader
) -> dict:
    with platform(request).db.read() as session:
        found = queries.block(session, _chain_id(request), number)
        if found is None:
            raise NotFound(f"block {number} is not indexed")
        return {**row_dict(found[0]), "transactions": found[1]}


@router.get(
    "/explorer/transactions/{tx_hash}",
    response_model=TransactionOut,
    responses=problem_responses(404),
    summary="A transaction and the events it emitted",
)
def get_transaction(tx_hash: HashPath, request: Request, _: Principal = reader) -> dict:
    with platform(request).db.read() as session:
        found = queries.transaction(session, _chain_id(request), tx_hash)
        if found is None:
            raise NotFound(f"transaction {tx_hash} is not indexed")
        tx, events = found
        return {**row_dict(tx), "events": [row_dict(e) for e in events]}
