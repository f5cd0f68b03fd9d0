"""EIP-712 signatures a payer gives a currency token: permit, EIP-3009, payment authorizations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from carpay.services.checkout import RECEIVE_FIELDS

__all__ = [
    "SECP256K1_N",
    "Domain",
    "Signature",
    "sign_cancel_authorization",
    "sign_payment_authorization",
    "sign_permit",
    "sign_receive_authorization",
    "sign_transfer_authorization",
    "signed_payment",
]

#: The order of secp256k1: ``(v, r, s)`` and ``(v ^ 1, r, N - s)`` recover the same signer.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

_AUTHORIZATION_FIELDS = RECEIVE_FIELDS  # the same for transfer and receive

TYPES: dict[str, list[dict[str, str]]] = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "TransferWithAuthorization": _AUTHORIZATION_FIELDS,
    "ReceiveWithAuthorization": _AUTHORIZATION_FIELDS,
    "CancelAuthorization": [
        {"name": "authorizer", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ],
    "PaymentAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain with name, version, chain id and verifying contract (ERC-5267 ``0x0f``)."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    @classmethod
    def of(cls, contract: Any) -> Domain:
        """The domain a deployed contract publishes through ERC-5267 ``eip712Domain()``."""
        fields = contract.functions.eip712Domain().call()
        return cls(*fields[1:5])

    def as_dict(self) -> dict[str, Any]:
        """The domain as eth-account's typed-data signing takes it."""
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


class Signature(NamedTuple):
    """A secp256k1 signature as contracts take it: ``token.functions.permit(..., *signature)``."""

    v: int
    r: bytes
    s: bytes

    def to_bytes(self) -> bytes:
        """``r ‖ s ‖ v``: the 65 bytes an ERC-1271 ``isValidSignature`` receives."""
        return self.r + self.s + bytes([self.v])

    def malleated(self) -> Signature:
        """The other, high-``s`` signature of the same digest (refused since EIP-2)."""
        s = SECP256K1_N - int.from_bytes(self.s, "big")
        return Signature(self.v ^ 1, self.r, s.to_bytes(32, "big"))


def _sign(signer: LocalAccount, domain: Domain, primary_type: str, message: dict) -> Signature:
    full_message = {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, primary_type: TYPES[primary_type]},
        "primaryType": primary_type,
        "domain": domain.as_dict(),
        "message": message,
    }
    signed = Account.sign_typed_data(signer.key, full_message=full_message)
    return Signature(signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big"))


def sign_permit(
    signer: LocalAccount,
    domain: Domain,
    *,
    spender: str,
    value: int,
    nonce: int,
    deadline: int,
    owner: str | None = None,
) -> Signature:
    """EIP-2612 ``Permit``; ``owner`` defaults to the signer (a wallet contract's owner signs
    for the wallet)."""
    message = {
        "owner": owner or signer.address,
        "spender": spender,
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    return _sign(signer, domain, "Permit", message)


def _authorization(
    primary_type: str,
    signer: LocalAccount,
    domain: Domain,
    to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    from_: str | None,
) -> Signature:
    message = {
        "from": from_ or signer.address,
        "to": to,
        "value": value,
        "validAfter": valid_after,
        "validBefore": valid_before,
        "nonce": nonce,
    }
    return _sign(signer, domain, primary_type, message)


def sign_transfer_authorization(
    signer: LocalAccount,
    domain: Domain,
    *,
    to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    from_: str | None = None,
) -> Signature:
    """EIP-3009 ``TransferWithAuthorization`` of the payer ``from_`` (default: the signer)."""
    return _authorization(
        "TransferWithAuthorization",
        signer,
        domain,
        to,
        value,
        valid_after,
        valid_before,
        nonce,
        from_,
    )


def sign_receive_authorization(
    signer: LocalAccount,
    domain: Domain,
    *,
    to: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: bytes,
    from_: str | None = None,
) -> Signature:
    """EIP-3009 ``ReceiveWithAuthorization``: only ``to`` may submit it."""
    return _authorization(
        "ReceiveWithAuthorization",
        signer,
        domain,
        to,
        value,
        valid_after,
        valid_before,
        nonce,
        from_,
    )


def sign_cancel_authorization(
    signer: LocalAccount, domain: Domain, *, nonce: bytes, authorizer: str | None = None
) -> Signature:
    """EIP-3009 ``CancelAuthorization`` of ``authorizer``'s unused ``nonce``."""
    message = {"authorizer": authorizer or signer.address, "nonce": nonce}
    return _sign(signer, domain, "CancelAuthorization", message)


def sign_payment_authorization(
    signer: LocalAccount,
    domain: Domain,
    *,
    to: str,
    value: int,
    nonce: int,
    valid_before: int,
    from_: str | None = None,
) -> Signature:
    """A ``PaymentAuthorization`` that ``settlePayments`` settles to ``to``."""
    message = {
        "from": from_ or signer.address,
        "to": to,
        "value": value,
        "nonce": nonce,
        "validBefore": valid_before,
    }
    return _sign(signer, domain, "PaymentAuthorization", message)


def signed_payment(
    signer: LocalAccount,
    domain: Domain,
    *,
    to: str,
    value: int,
    nonce: int,
    valid_before: int,
    from_: str | None = None,
) -> tuple[str, int, int, int, int, bytes, bytes]:
    """A signed ``PaymentAuthorization`` as one element of ``settlePayments``' ``payments``:
    ``(payer, value, nonce, valid_before, v, r, s)``."""
    payer = from_ or signer.address
    v, r, s = sign_payment_authorization(
        signer, domain, to=to, value=value, nonce=nonce, valid_before=valid_before, from_=payer
    )
    return (payer, value, nonce, valid_before, v, r, s)
