"""py-evm's account database with cheaper account writes, for the engine's state.

A token transfer writes accounts five times (the sender's fee and nonce, the refund, the fee
recipient's tip...). py-evm's ``Account.copy`` deep-copies the four fields and checks its
keyword arguments on each, and ``rlp.encode`` walks the account's sedes; here an account is
built from its fields and encoded by the tries' RLP encoder. ``tests/chain/node/test_state.py``
checks the encoding byte for byte against rlp's and the state roots against py-evm's
``AccountDB``.
"""

from __future__ import annotations

from eth.db.account import AccountDB
from eth.rlp.accounts import Account
from eth.validation import validate_canonical_address, validate_uint64, validate_uint256
from eth_typing import Address

from carpay.chain.node.tries import big_endian, encode_node

__all__ = ["CarpayAccountDB", "encode_account"]


def encode_account(account: Account) -> bytes:
    """``rlp.encode(account)``: a list of the nonce, the balance and two 32-byte hashes."""
    return encode_node(
        [
            big_endian(account.nonce),
            big_endian(account.balance),
            account.storage_root,
            account.code_hash,
        ]
    )


class CarpayAccountDB(AccountDB):
    """py-evm's ``AccountDB``; a balance or nonce change builds the account from its fields,
    and every account written is encoded by :func:`encode_account`."""

    def set_balance(self, address: Address, balance: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint256(balance, title="Account Balance")
        old = self._get_account(address)
        self._set_account(address, Account(old.nonce, balance, old.storage_root, old.code_hash))

    def set_nonce(self, address: Address, nonce: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint64(nonce, title="Nonce")
        old = self._get_account(address)
        self._set_account(address, Account(nonce, old.balance, old.storage_root, old.code_hash))

    def _set_account(self, address: Address, account: Account) -> None:
        self._account_cache[address] = account
        self._journaltrie[address] = encode_account(account)
