"""Vehicle wallets: the owner of a car creates its wallet, sets what its device key may
spend, and controls it.

A vehicle wallet (``vehicle_wallet``) is a smart account of one vehicle: its device key pays
merchants of the categories the owner allows, within per-category daily limits and a
per-payment limit in each currency token; the owner may freeze it and rotate the device key
(a stolen car). Whoever owns the vehicle's title controls the wallet, so these calls are sent
from the key of the vehicle's current owner (read from the wallet on chain), for that
owner's API owner (see :class:`carpay.services.participant_keys.ParticipantKeys`).
"""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from sqlalchemy.orm import Session

from carpay.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from carpay.ledger.models import OutboxIntent
from carpay.services.outbox import Outbox, checksum
from carpay.services.participant_keys import ParticipantKeys
from carpay.services.platform import CATEGORIES, require_currency
from carpay.services.vin import validate_vin, vehicle_of

__all__ = ["CREATE_KIND", "MAX_LIMIT", "ChainWalletView", "VehicleWallets"]

#: The largest limit ``vehicle_wallet`` takes.
MAX_LIMIT = 2**128 - 1
_SET_LIMITS = function_signature_to_4byte_selector("setLimits(address,uint8,uint256,uint256)")
_ALLOW = function_signature_to_4byte_selector("allowCategory(uint8,bool)")
_FREEZE = function_signature_to_4byte_selector("freeze()")
_UNFREEZE = function_signature_to_4byte_selector("unfreeze()")
_ROTATE = function_signature_to_4byte_selector("rotateDeviceKey(address)")
_CREATE = function_signature_to_4byte_selector("createWallet(uint256,address)")
CREATE_KIND = "wallet_create"


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [field], "msg": message}])


class ChainWalletView:
    """What the service reads of a vehicle wallet: its state on chain, ``None`` if
    ``wallet`` is no vehicle wallet."""

    def __init__(self, chain: Any) -> None:
        self._chain = chain

    def state(self, wallet: str, tokens: frozenset[str] | None = None) -> dict[str, Any] | None:
        """Owner, device key and frozen flag; with ``tokens``, the allowed categories and
        the limits set in those tokens too. Two JSON-RPC batches in all."""
        chain = self._chain
        contract = chain.contract("vehicle_wallet", wallet)
        basics = chain.read_all(
            [(contract, name, ()) for name in ("owner", "deviceKey", "frozen")],
            return_errors=True,
        )
        if any(isinstance(b, Exception) for b in basics):
            return None  # no code there (nothing to decode), or code that is no vehicle wallet
        owner, device_key, frozen = basics
        found = {
            "wallet": contract.address,
            "owner": to_checksum_address(owner),
            "device_key": to_checksum_address(device_key),
            "frozen": frozen,
        }
        if tokens is None:
            return found
        pairs = [(token, i) for token in sorted(tokens) for i in range(len(CATEGORIES))]
        reads = [(contract, "isCategoryAllowed", (i,)) for i in range(len(CATEGORIES))]
        reads += [(contract, "limits", pair) for pair in pairs]
        reads += [(contract, "availableToday", pair) for pair in pairs]
        answers = chain.read_all(reads)
        allowed, rest = answers[: len(CATEGORIES)], answers[len(CATEGORIES) :]
        set_limits, available = rest[: len(pairs)], rest[len(pairs) :]
        categories = [c for c, yes in zip(CATEGORIES, allowed, strict=True) if yes]
        limits = [
            {
                "token": token,
                "category": CATEGORIES[i],
                "daily": daily,
                "per_payment": per_payment,
                "available_today": today,
            }
            for (token, i), (daily, per_payment), today in zip(
                pairs, set_limits, available, strict=True
            )
            if daily or per_payment
        ]
        return found | {"categories": categories, "limits": limits}


class VehicleWallets:
    """Sets the limits of vehicle wallets and controls them, from their owners' keys."""

    def __init__(
        self,
        keys: ParticipantKeys,
        view: ChainWalletView,
        *,
        currencies: frozenset[str],
        factory: str | None = None,
    ) -> None:
        self.keys = keys
        self.view = view
        self.currencies = currencies
        self.factory = None if factory is None else checksum(factory, "factory")

    def create(
        self,
        session: Session,
        *,
        owner: str,
        holder: str,
        vin: str,
        device_key: str,
        reference: str | None = None,
    ) -> OutboxIntent:
        """The vehicle's owner ``holder`` creates the wallet of ``vin`` with the car's
        ``device_key`` (the zero address: none yet), through the platform's factory; it spends
        nothing until the owner sets limits and allows categories. Its address is in the
        vehicle's record once indexed."""
        if self.factory is None:
            raise ServiceUnavailable("the vehicle wallet factory is not deployed on this chain")
        vin = validate_vin(vin)
        outbox = self.keys.outbox(session, owner, holder, "holder")
        device_key = checksum(device_key, "device_key")
        title, vehicle = vehicle_of(
            session, self.keys.chain_id, vin, owner=outbox.sender, role="holder"
        )
        if vehicle["wallet"] is not None:
            raise Conflict(f"{vin} has a wallet: {vehicle['wallet']['wallet']}")
        if outbox.exists(session, kind=CREATE_KIND, title=str(title)):
            raise Conflict(f"the wallet of {vin} is being created already")
        return outbox.enqueue(
            session,
            kind=CREATE_KIND,
            owner=owner,
            to=self.factory,
            data=_CREATE + encode(["uint256", "address"], [title, device_key]),
            details={
                "holder": outbox.sender,
                "vin": vin,
                "title": str(title),
                "device_key": device_key,
            },
            reference=reference,
        )

    def get(self, wallet: str, *, details: bool = True) -> dict[str, Any]:
        """The wallet's owner, device key and state; with ``details``, its allowed categories
        and its limits in the platform's currencies."""
        state = self.view.state(checksum(wallet, "wallet"), self.currencies if details else None)
        if state is None:
            raise NotFound(f"no vehicle wallet at {wallet}")
        return state

    def set_limits(
        self,
        session: Session,
        *,
        owner: str,
        wallet: str,
        token: str,
        category: str,
        daily_minor: int,
        per_payment_minor: int,
        reference: str | None = None,
    ) -> OutboxIntent:
        """At most ``daily_minor`` a day and ``per_payment_minor`` a payment of ``token`` at
        merchants of ``category`` (0 stops the device key spending there)."""
        token = require_currency(token, self.currencies)
        index = _category(category)
        for field, value in (
            ("daily_minor", daily_minor),
            ("per_payment_minor", per_payment_minor),
        ):
            if not 0 <= value <= MAX_LIMIT:
                raise _invalid(field, f"{field} must be from 0 to {MAX_LIMIT}")
        if per_payment_minor > daily_minor:
            raise _invalid("per_payment_minor", "per_payment_minor must not exceed daily_minor")
        data = _SET_LIMITS + encode(
            ["address", "uint8", "uint256", "uint256"],
            [token, index, daily_minor, per_payment_minor],
        )
        details = {
            "token": token,
            "category": category,
            "daily_minor": daily_minor,
            "per_payment_minor": per_payment_minor,
        }
        return self._send(session, owner, wallet, "wallet_limits", data, details, reference)

    def allow_category(
        self,
        session: Session,
        *,
        owner: str,
        wallet: str,
        category: str,
        allowed: bool,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Let the device key pay merchants of ``category``, or no longer."""
        data = _ALLOW + encode(["uint8", "bool"], [_category(category), allowed])
        details = {"category": category, "allowed": allowed}
        return self._send(session, owner, wallet, "wallet_category", data, details, reference)

    def set_frozen(
        self,
        session: Session,
        *,
        owner: str,
        wallet: str,
        frozen: bool,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Freeze the wallet (the device key pays nothing), or unfreeze it."""
        state = self.get(wallet, details=False)
        if state["frozen"] == frozen:
            raise Conflict(f"the wallet is {'frozen' if frozen else 'not frozen'} already")
        kind, data = ("wallet_freeze", _FREEZE) if frozen else ("wallet_unfreeze", _UNFREEZE)
        return self._send(session, owner, wallet, kind, data, {"frozen": frozen}, reference)

    def rotate_device_key(
        self,
        session: Session,
        *,
        owner: str,
        wallet: str,
        device_key: str,
        reference: str | None = None,
    ) -> OutboxIntent:
        """Replace the car's device key (the zero address: none, the car pays nothing)."""
        device_key = checksum(device_key, "device_key")
        data = _ROTATE + encode(["address"], [device_key])
        details = {"device_key": device_key}
        return self._send(session, owner, wallet, "wallet_device_key", data, details, reference)

    def _send(
        self,
        session: Session,
        owner: str,
        wallet: str,
        kind: str,
        data: bytes,
        details: dict[str, Any],
        reference: str | None,
    ) -> OutboxIntent:
        outbox = self._owner_outbox(session, owner, wallet)
        return outbox.enqueue(
            session,
            kind=kind,
            owner=owner,
            to=wallet,
            data=data,
            details={"wallet": checksum(wallet, "wallet"), "owner": outbox.sender, **details},
            reference=reference,
        )

    def _owner_outbox(self, session: Session, owner: str, wallet: str) -> Outbox:
        """The outbox of the key of the wallet's vehicle's owner, if ``owner`` speaks for it."""
        holder = self.get(wallet, details=False)["owner"]
        return self.keys.outbox(session, owner, holder, "the vehicle's owner")


def _category(name: str) -> int:
    if name not in CATEGORIES:
        raise _invalid("category", f"category must be one of {', '.join(CATEGORIES)}")
    return CATEGORIES.index(name)
