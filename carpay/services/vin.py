"""Vehicle identification numbers (ISO 3779): checked here before a title is minted on-chain."""

from __future__ import annotations

from typing import Any

from eth_utils import keccak
from sqlalchemy.orm import Session

from carpay.errors import Conflict, InvalidVin, NotFound
from carpay.ledger import queries

__all__ = [
    "VIN_LENGTH",
    "check_digit",
    "is_north_american",
    "title_of",
    "validate_vin",
    "vehicle_of",
]

#: Every VIN has 17 characters.
VIN_LENGTH = 17

# ISO 3779 / 49 CFR 565: letters stand for digits in the check digit's sum; I, O and Q are
# never used (they read like 1 and 0).
_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_CHECK_POSITION = 8  # the ninth character
_NORTH_AMERICA = frozenset("12345")  # WMI regions: United States, Canada, Mexico


def check_digit(vin: str) -> str:
    """The check digit (``"0"``-``"9"`` or ``"X"``) a 17-character VIN should carry at
    position 9, computed from its other characters (49 CFR 565.15)."""
    total = sum(_VALUES[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_north_american(vin: str) -> bool:
    """Whether the VIN's manufacturer code (WMI) is North American, where the check digit
    is mandatory."""
    return vin[:1] in _NORTH_AMERICA


def validate_vin(vin: str) -> str:
    """The VIN in its canonical form (surrounding blanks removed, upper case), or
    :class:`InvalidVin` saying what is wrong.

    Any VIN must be 17 characters of ``0-9`` and ``A-Z`` without ``I``, ``O`` and ``Q``.
    The check digit (position 9) is verified for North-American VINs (first character 1-5);
    elsewhere position 9 is the manufacturer's to use, so it is not checked.
    """
    if not isinstance(vin, str):
        raise _invalid("a VIN is a string of 17 characters")
    canonical = vin.strip().upper()
    if len(canonical) != VIN_LENGTH:
        raise _invalid(f"a VIN has 17 characters, not {len(canonical)}")
    bad = sorted({c for c in canonical if c not in _VALUES})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise _invalid(f"a VIN has only digits and letters other than I, O and Q, not {shown}")
    if is_north_american(canonical):
        expected = check_digit(canonical)
        if canonical[_CHECK_POSITION] != expected:
            raise _invalid(
                f"check digit {canonical[_CHECK_POSITION]!r} does not match the VIN "
                f"(expected {expected!r})"
            )
    return canonical


def _invalid(msg: str) -> InvalidVin:
    return InvalidVin(f"invalid VIN: {msg}", errors=[{"loc": ["vin"], "msg": msg}])


def title_of(vin: str) -> int:
    """The title id the vehicle registry gives ``vin``: ``uint256(keccak256(vin))``."""
    return int.from_bytes(keccak(text=vin), "big")


def vehicle_of(
    session: Session, chain_id: int, vin: str, *, owner: str | None = None, role: str = "owner"
) -> tuple[int, dict[str, Any]]:
    """The title id and the ledger's record of the titled vehicle ``vin``: :class:`NotFound`
    if it was never titled; with ``owner``, :class:`Conflict` unless ``owner`` (the request's
    ``role``) owns it now."""
    title = title_of(vin)
    vehicle = queries.vehicle(session, chain_id, title)
    if vehicle is None or vehicle["owner"] is None:
        raise NotFound(f"no vehicle {vin}")
    if owner is not None and vehicle["owner"] != owner.lower():
        raise Conflict(f"the {role} {owner} does not own {vin}")
    return title, vehicle
