"""The relayer: signs, sends, tracks and unsticks the outbox's transactions, exactly once.

Every step is recorded before the next one is taken, so a crash anywhere resumes cleanly:

- ``pending`` intent: the gas is estimated (a revert here fails the intent: nothing was
  sent; unless an earlier intent of the key is still in flight, which it may need, such as
  the approval it spends: it then waits for that one), then a nonce is chosen and the
  transaction signed, and the raw bytes and hash are committed with the intent's move to
  ``sent``, all *before* anything is broadcast.
- ``sent`` intent: if any of its recorded transactions is mined, the intent is
  ``confirmed`` (or ``failed`` if it reverted; but if it ran out of gas, which an estimate
  made in another state of the chain can give, it changed nothing, and the intent goes back
  to ``pending`` to be estimated again). Otherwise the newest one is broadcast again
  if the node does not hold it (the very same bytes: never a second payment), or replaced
  with the same nonce and higher fees once it has waited ``replace_after``.
- A transaction the node refuses on its first broadcast is marked ``rejected``; when none
  of the intent's is left alive its nonce is free again and the intent goes back to
  ``pending``, with backoff, up to ``max_attempts`` times. One refused when broadcast again
  (the node dropped it, then was offered another at its nonce) stays alive: other nodes may
  still mine it, so its nonce is kept, and it is replaced in turn. A nonce taken by someone
  else's transaction means none of ours can ever be mined: the intent is re-signed with a
  new nonce, but only once that has held for ``renonce_after``: a node may count a block's
  nonces a moment before it serves the block's receipts (anvil does: foundry-rs/foundry#10944),
  and signing again in that moment would pay twice.

One relayer runs per signing key: it owns that key's nonces. Events
``<kind>.succeeded``/``<kind>.failed`` are published, when a :class:`Webhooks` is given, in
the transaction that makes the intent final.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import selectinload
from web3 import Web3

from carpay.chain import Chain, gas_with_headroom
from carpay.errors import ChainError, TransactionReverted
from carpay.ledger.db import Database
from carpay.ledger.models import OutboxIntent, OutboxTransaction, utcnow
from carpay.services.webhooks import Webhooks

__all__ = ["HOOK_STEPS", "Relayer"]

log = logging.getLogger(__name__)

#: Where :class:`Relayer` calls its ``hook``: the crash tests stop it at each of these.
HOOK_STEPS = ("claimed", "signed", "broadcast", "mined", "recorded")
#: The least fee increase of a replacement, per mille (geth needs 10%, others 12.5%).
REPLACEMENT_BUMP_PER_MILLE = 125
_LIVE = ("signed", "broadcast")
#: A reverted transaction that used this much of its gas limit, in percent, ran out of gas.
OUT_OF_GAS_PERCENT = 95
#: What ``Relayer._gas_for`` answers for an intent it failed (its estimate reverted).
_FAILED = object()


def _bump(fee: int) -> int:
    return max(fee + 1, -(-fee * (1000 + REPLACEMENT_BUMP_PER_MILLE) // 1000))


class Relayer:
    """Moves the outbox's intents from ``sender`` through ``chain``.

    An intent is done once its transaction has ``confirmations`` blocks on top of it (0: as
    soon as it is mined), so that a reorg of a remote network cannot take back a payment
    whose ``succeeded`` event went out. ``hook(step, intent_id)`` is called at each of
    :data:`HOOK_STEPS`; tests use it to crash the relayer there. ``clock`` gives the time.
    """

    def __init__(
        self,
        db: Database,
        chain: Chain,
        signer: LocalAccount,
        *,
        webhooks: Webhooks | None = None,
        clock: Callable[[], datetime] = utcnow,
        replace_after: timedelta = timedelta(seconds=30),
        renonce_after: timedelta = timedelta(seconds=10),
        retry_delay: timedelta = timedelta(seconds=5),
        max_attempts: int = 5,
        receipt_timeout: float = 30.0,
        batch: int = 50,
        confirmations: int = 0,
        hook: Callable[[str, int], None] | None = None,
    ) -> None:
        self.db = db
        self.confirmations = confirmations
        self._pass = _Pass()
        self.chain = chain
        self.signer = signer
        self.webhooks = webhooks
        self._clock = clock
        self.replace_after = replace_after
        self.renonce_after = renonce_after
        #: When each intent's nonce was first seen used with none of its receipts found.
        self._nonce_taken: dict[int, datetime] = {}
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.receipt_timeout = receipt_timeout
        self.batch = batch
        self._hook = hook or (lambda step, intent_id: None)

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Relay until ``stop`` is set."""
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("relaying failed; retrying")
                busy = False
            if not busy:
                stop.wait(interval)

    def run_once(self) -> bool:
        """One pass over the due intents; True if any of them moved.

        What every intent of the pass needs from the node is asked once: the fees, the pending
        nonce count, and (in one batch) the receipts of every transaction being tracked.
        """
        moved = False
        due = self._due()
        self._pass = _Pass()
        sent = [i for i, state in due if state == "sent"]
        pending = [i for i, state in due if state == "pending"]
        try:
            self._prefetch(sent)
            self._estimate(pending)
        except ChainError as exc:
            log.warning("prefetching: %s; asking one by one", exc.message)
        for intent_id in sent:
            try:
                moved |= self._track(intent_id)
            except ChainError as exc:
                log.warning("intent %s: %s; will retry", intent_id, exc.message)
        for step, args in ((self._record_mined, ()), (self._send_pending, (pending,))):
            try:
                moved |= step(*args)
            except ChainError as exc:
                log.warning("relaying: %s; will retry", exc.message)
        self._pass = _Pass()
        return moved

    def _prefetch(self, intent_ids: list[int]) -> None:
        if not intent_ids:
            return
        with self.db.read() as session:
            nonces = dict(
                session.execute(
                    sa.select(OutboxIntent.id, OutboxIntent.nonce).where(
                        OutboxIntent.id.in_(intent_ids), OutboxIntent.state == "sent"
                    )
                ).all()
            )
            rows = session.execute(
                sa.select(
                    OutboxTransaction.intent_id,
                    OutboxTransaction.id,
                    OutboxTransaction.tx_hash,
                    OutboxTransaction.status,
                    OutboxTransaction.created_at,
                )
                .where(OutboxTransaction.intent_id.in_(list(nonces)))
                .order_by(OutboxTransaction.id)
            ).all()
        hashes = [row.tx_hash for row in rows]
        self._pass.sent = {intent_id: (nonce, []) for intent_id, nonce in nonces.items()}
        for row in rows:
            self._pass.sent[row.intent_id][1].append(tuple(row)[1:])
        # The count first, the receipts after its answer (see _track). Not in one batch: a
        # node may answer a batch's calls in any order.
        count = self.chain.w3.eth.get_transaction_count(self.signer.address, "latest")
        receipts = self.chain.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        self._pass.mined_count = count
        self._pass.receipts = {
            h: None if r is None else _receipt(r) for h, r in zip(hashes, receipts, strict=True)
        }

    def _estimate(self, intent_ids: list[int]) -> None:
        """Gas estimates of the pending intents that need one, in one batch."""
        if not intent_ids:
            return
        with self.db.read() as session:
            rows = session.execute(
                sa.select(
                    OutboxIntent.id, OutboxIntent.to_address, OutboxIntent.data, OutboxIntent.value
                ).where(OutboxIntent.id.in_(intent_ids), OutboxIntent.gas_limit.is_(None))
            ).all()
        calls = []
        for row in rows:
            call: dict[str, Any] = {
                "from": self.signer.address,
                "data": Web3.to_hex(row.data or b""),
                "value": hex(row.value),
            }
            if row.to_address is not None:
                call["to"] = row.to_address
            calls.append(("eth_estimateGas", [call, "pending"]))  # see Chain.estimate_gas
        answers = self.chain.batch(calls, return_errors=True)
        self._pass.estimates = {
            row.id: answer if isinstance(answer, Exception) else int(answer, 16)
            for row, answer in zip(rows, answers, strict=True)
        }

    def _due(self) -> list[tuple[int, str]]:
        with self.db.read() as session:
            rows = session.execute(
                sa.select(OutboxIntent.id, OutboxIntent.state)
                .where(
                    OutboxIntent.sender == self.signer.address,
                    OutboxIntent.chain_id == self.chain.chain_id,
                    OutboxIntent.state.in_(("pending", "sent")),
                    OutboxIntent.next_attempt_at <= self._clock(),
                )
                .order_by(OutboxIntent.id)
                .limit(self.batch)
            )
            return [(row.id, row.state) for row in rows]

    # -- pending: sign, record, broadcast ------------------------------------------------

    def _send_pending(self, intent_ids: list[int]) -> bool:
        """Sign the pending intents in one database transaction (recorded before anything is
        sent), then broadcast them in one batch: the node gets them together."""
        moved = False
        gas_of: dict[int, int] = {}
        with self.db.read() as session:
            rows = {
                row.id: row
                for row in session.execute(
                    sa.select(
                        OutboxIntent.id,
                        OutboxIntent.state,
                        OutboxIntent.to_address,
                        OutboxIntent.data,
                        OutboxIntent.value,
                        OutboxIntent.gas_limit,
                    ).where(OutboxIntent.id.in_(intent_ids))
                )
            }
        for intent_id in intent_ids:
            self._hook("claimed", intent_id)
            try:
                gas = self._gas_for(intent_id, rows.get(intent_id))
            except ChainError as exc:
                log.warning("intent %s: %s; will retry", intent_id, exc.message)
                if getattr(exc, "rpc_message", None) is not None:
                    # The node ran the estimate and refused it for another reason than a
                    # revert (an invalid instruction, say): tried again with backoff, and
                    # failed after max_attempts, where a node out of reach is waited for.
                    moved |= self._estimate_refused(intent_id, exc.message)
                continue
            if gas is _FAILED:
                moved = True  # its estimate reverted: failed without sending
            elif gas is not None:
                gas_of[intent_id] = gas
        if not gas_of:
            return moved
        if self._pass.fees is None:
            self._pass.fees = self.chain.fees()
        max_fee, tip = self._pass.fees
        made: list[tuple[int, OutboxTransaction]] = []
        with self.db.begin() as session:
            held = self._held_nonces(session)
            intents = _lock(session, list(gas_of))
            for intent_id, gas in gas_of.items():
                intent = intents.get(intent_id)
                if intent is None or intent.state != "pending":
                    continue
                nonce = self._free_nonce(held)
                held.add(nonce)
                tx: dict[str, Any] = {
                    "type": 2,
                    "chainId": intent.chain_id,
                    "nonce": nonce,
                    "gas": gas,
                    "maxFeePerGas": max_fee,
                    "maxPriorityFeePerGas": tip,
                    "value": intent.value,
                    "data": intent.data,
                }
                if intent.to_address is not None:
                    tx["to"] = intent.to_address
                attempt = self._record_signed(session, intent, tx)
                intent.state, intent.nonce, intent.gas_limit = "sent", nonce, gas
                made.append((intent_id, attempt))
            session.flush()
            signed = [(intent_id, attempt.id) for intent_id, attempt in made]
        for intent_id, _attempt_id in signed:
            self._hook("signed", intent_id)
        self._broadcast(signed)
        return moved or bool(signed)

    def _gas_for(self, intent_id: int, intent: Any) -> int | object | None:
        """The gas limit to sign ``intent_id`` (its row as read this pass) with; None if it
        is not to be sent now, ``_FAILED`` if its estimate reverted and it failed."""
        if intent is None or intent.state != "pending":
            return None
        to, data, value, gas = intent.to_address, intent.data, intent.value, intent.gas_limit
        if gas is not None:
            return gas
        try:
            estimate = self._pass.estimates.pop(intent_id, None)
            if isinstance(estimate, Exception):
                raise estimate
            if estimate is None:
                estimate = self.chain.estimate_gas(self.signer, to, data, value)
        except TransactionReverted as exc:
            if self._earlier_in_flight(intent_id):
                return None  # it may need them (an approval, then the call that spends it)
            self._finish(intent_id, None, error=exc.message)
            return _FAILED
        return gas_with_headroom(estimate)

    def _estimate_refused(self, intent_id: int, message: str) -> bool:
        with self.db.begin() as session:
            intent = _lock(session, [intent_id]).get(intent_id)
            if intent is None or intent.state != "pending":
                return False
            self._retry_later(intent, f"the node refused the estimate: {message}")
        return True

    def _earlier_in_flight(self, intent_id: int) -> bool:
        """Whether an earlier intent of this key is not final yet: a later one whose estimate
        reverts waits for it, and is estimated again once it is mined."""
        with self.db.read() as session:
            return bool(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(OutboxIntent)
                    .where(
                        OutboxIntent.sender == self.signer.address,
                        OutboxIntent.chain_id == self.chain.chain_id,
                        OutboxIntent.state.in_(("pending", "sent")),
                        OutboxIntent.id < intent_id,
                    )
                )
            )

    def _held_nonces(self, session) -> set[int]:
        """The nonces our live (``sent``) intents hold."""
        return set(
            session.scalars(
                sa.select(OutboxIntent.nonce).where(
                    OutboxIntent.sender == self.signer.address,
                    OutboxIntent.chain_id == self.chain.chain_id,
                    OutboxIntent.state == "sent",
                )
            )
        )

    def _free_nonce(self, held: set[int]) -> int:
        """The lowest nonce from the node's pending count that is not in ``held``.

        Filling from the bottom closes the gap a refused transaction leaves behind.
        """
        if self._pass.pending_count is None:
            # Asked once a pass: nonces this pass sends are "sent" intents, held above.
            self._pass.pending_count = self.chain.pending_nonce(self.signer.address)
        nonce = self._pass.pending_count
        while nonce in held:
            nonce += 1
        return nonce

    def _record_signed(
        self, session, intent: OutboxIntent, tx: dict[str, Any]
    ) -> OutboxTransaction:
        signed = self.signer.sign_transaction(tx)
        attempt = OutboxTransaction(
            intent_id=intent.id,
            nonce=tx["nonce"],
            tx_hash=Web3.to_hex(signed.hash),
            raw=bytes(signed.raw_transaction),
            max_fee=tx["maxFeePerGas"],
            priority_fee=tx["maxPriorityFeePerGas"],
            status="signed",
            created_at=self._clock(),
        )
        session.add(attempt)
        intent.tx_hash = attempt.tx_hash
        intent.updated_at = self._clock()
        return attempt

    def _broadcast(self, attempts: list[tuple[int, int]]) -> list[bool]:
        """Send the recorded bytes of ``(intent id, attempt id)``s in one batch; for each,
        True if the node holds it now."""
        if not attempts:
            return []
        with self.db.read() as session:
            raw_of = dict(
                session.execute(
                    sa.select(OutboxTransaction.id, OutboxTransaction.raw).where(
                        OutboxTransaction.id.in_([a for _i, a in attempts])
                    )
                ).all()
            )
        errors = self._send_raw([raw_of[a] for _i, a in attempts])
        for intent_id, _attempt_id in attempts:
            self._hook("broadcast", intent_id)
        with self.db.begin() as session:
            intents = _lock(session, [intent_id for intent_id, _a in attempts])
            return [
                self._record_broadcast(intents[intent_id], attempt_id, error)
                for (intent_id, attempt_id), error in zip(attempts, errors, strict=True)
            ]

    def _record_broadcast(self, intent: OutboxIntent, attempt_id: int, error: str | None) -> bool:
        [attempt] = [t for t in intent.transactions if t.id == attempt_id]
        if attempt.status not in _LIVE:
            return error is None
        if error is None:
            if attempt.status == "signed":
                attempt.status, attempt.broadcast_at = "broadcast", self._clock()
            return True
        if "nonce too low" in error.lower():
            attempt.status, attempt.error = "rejected", error
            return False  # the nonce was used: _track finds out by whom
        if attempt.status == "broadcast":
            # Sent before, dropped by this node since, refused now (say, outbid at its
            # nonce): other nodes may still hold it and mine it, so its nonce is not
            # given up. It stays alive until that nonce is used; _track replaces it.
            attempt.error = error
            return False
        attempt.status, attempt.error = "rejected", error
        alive = [t for t in intent.transactions if t.status in _LIVE]
        if not alive:
            self._retry_later(intent, error)
        return False

    def _send_raw(self, raws: list[bytes]) -> list[str | None]:
        """Broadcast in one batch; for each, None if the node holds the transaction, else the
        node's refusal.

        A node or network failure raises :class:`ChainError`: nothing is known, so nothing
        is recorded and the next pass tries again.
        """
        answers = self.chain.batch(
            [("eth_sendRawTransaction", [Web3.to_hex(raw)]) for raw in raws], return_errors=True
        )
        errors: list[str | None] = []
        for answer in answers:
            if not isinstance(answer, Exception):
                errors.append(None)
                continue
            message = getattr(answer, "rpc_message", None) or str(answer)
            errors.append(None if "already known" in message.lower() else message or "refused")
        return errors

    def _retry_later(self, intent: OutboxIntent, error: str) -> None:
        """The intent has nothing alive on the network: free its nonce and try again later."""
        intent.attempts += 1
        intent.error = error
        if intent.attempts >= self.max_attempts:
            intent.state = "failed"
            self._publish(intent)
            return
        intent.state, intent.nonce, intent.tx_hash = "pending", None, None
        intent.next_attempt_at = self._clock() + self.retry_delay * 2 ** (intent.attempts - 1)
        intent.updated_at = self._clock()

    # -- sent: track, rebroadcast, replace -----------------------------------------------

    def _track(self, intent_id: int) -> bool:
        if intent_id in self._pass.sent:  # read with the others by _prefetch
            nonce, every = self._pass.sent[intent_id]
        else:
            with self.db.read() as session:
                intent = session.get(OutboxIntent, intent_id)
                if intent is None or intent.state != "sent":
                    return False
                nonce = intent.nonce
                every = [(t.id, t.tx_hash, t.status, t.created_at) for t in intent.transactions]
        # Not those mined in an earlier round (they ran out of gas: see _finish_in).
        attempts = [a for a in every if a[2] != "mined"]
        assert nonce is not None

        # The count first, the receipts second: a transaction of ours mined in between is
        # then seen by the receipts, never mistaken for someone else's use of the nonce.
        known = self._pass.receipts
        prefetched = all(a[1] in known for a in attempts) and self._pass.mined_count is not None
        if prefetched:
            used = self._pass.mined_count > nonce
        else:
            used = self.chain.w3.eth.get_transaction_count(self.signer.address, "latest") > nonce
        for attempt_id, tx_hash, _status, _created in reversed(attempts):
            receipt = known[tx_hash] if prefetched else self.chain.receipt(tx_hash)
            if receipt is not None:
                self._nonce_taken.pop(intent_id, None)
                if (
                    self.confirmations
                    and self._head() - receipt["blockNumber"] < self.confirmations
                ):
                    return False  # mined, not final yet: tracked until it is (or is gone)
                self._hook("mined", intent_id)
                self._pass.mined.append((intent_id, attempt_id, receipt))
                return True
        alive = [a for a in attempts if a[2] in _LIVE]
        if used:
            # The nonce is used and none of our transactions has a receipt. If that holds for
            # renonce_after (a receipt may lag its block for a moment), the nonce went to
            # someone else's: ours can never be mined, so the intent may be signed again.
            seen = self._nonce_taken.setdefault(intent_id, self._clock())
            if self._clock() - seen < self.renonce_after:
                return False
            del self._nonce_taken[intent_id]
            return self._renonce(intent_id)
        if not alive:
            return False
        attempt_id, tx_hash, status, _created = alive[-1]
        if (status == "signed" or self._unknown_to_node(tx_hash)) and self._broadcast(
            [(intent_id, attempt_id)]
        )[0]:
            return True
        # Replace once the newest version of this nonce, refused ones included, has waited:
        # timing from the oldest would bid higher on every pass.
        newest = max(created for _id, _hash, _status, created in attempts)
        if self._clock() - newest >= self.replace_after:
            self._replace(intent_id, attempt_id)
            return True
        return False

    def _head(self) -> int:
        """The newest block's number, asked once a pass."""
        if self._pass.head is None:
            self._pass.head = self.chain.block_number()
        return self._pass.head

    def _unknown_to_node(self, tx_hash: str) -> bool:
        try:
            response = self.chain.w3.provider.make_request("eth_getTransactionByHash", [tx_hash])
        except (OSError, ValueError) as exc:
            raise ChainError(f"eth_getTransactionByHash failed: {exc}") from exc
        return response.get("error") is None and response.get("result") is None

    def _replace(self, intent_id: int, attempt_id: int) -> None:
        max_fee, tip = self.chain.fees()
        with self.db.begin() as session:
            intent = session.get(OutboxIntent, intent_id, with_for_update=True)
            old = session.get(OutboxTransaction, attempt_id)
            assert intent is not None and old is not None
            if intent.state != "sent":
                return
            # Bid above every version of this nonce, refused ones included: a node that wants
            # a bigger bump gets one, and the same fees would sign the very same transaction
            # again (a duplicate hash).
            versions = [t for t in intent.transactions if t.nonce == old.nonce]
            tip = max(_bump(max(t.priority_fee for t in versions)), tip)
            tx: dict[str, Any] = {
                "type": 2,
                "chainId": intent.chain_id,
                "nonce": old.nonce,
                "gas": intent.gas_limit,
                "maxFeePerGas": max(_bump(max(t.max_fee for t in versions)), max_fee, tip),
                "maxPriorityFeePerGas": tip,
                "value": intent.value,
                "data": intent.data,
            }
            if intent.to_address is not None:
                tx["to"] = intent.to_address
            attempt = self._record_signed(session, intent, tx)
            session.flush()
            new_id = attempt.id
        log.info("intent %s: replacing %s with higher fees", intent_id, attempt_id)
        self._hook("signed", intent_id)
        self._broadcast([(intent_id, new_id)])

    def _renonce(self, intent_id: int) -> bool:
        with self.db.begin() as session:
            intent = session.get(OutboxIntent, intent_id, with_for_update=True)
            if intent is None or intent.state != "sent":
                return False
            for t in intent.transactions:
                if t.status in _LIVE:
                    t.status, t.error = "rejected", "nonce used by another transaction"
            intent.state, intent.nonce, intent.tx_hash = "pending", None, None
            intent.error = "nonce used by another transaction; signing again"
            intent.updated_at = self._clock()
        return True

    def _record_mined(self) -> bool:
        """Record every intent this pass found mined, in one database transaction."""
        mined, self._pass.mined = self._pass.mined, []
        if not mined:
            return False
        outcomes = []
        for intent_id, attempt_id, receipt in mined:
            error = None
            if receipt["status"] != 1:
                try:
                    self.chain.wait(receipt["transactionHash"], timeout=self.receipt_timeout)
                    error = "reverted without a reason"
                except TransactionReverted as exc:
                    error = exc.message
            outcomes.append((intent_id, attempt_id, error, receipt))
        with self.db.begin() as session:
            intents = _lock(session, [intent_id for intent_id, *_ in outcomes])
            for intent_id, attempt_id, error, receipt in outcomes:
                self._finish_in(
                    intents[intent_id],
                    attempt_id,
                    error=error,
                    block=receipt["blockNumber"],
                    gas_used=receipt["gasUsed"],
                )
        for intent_id, _attempt_id, _error, _receipt in outcomes:
            self._hook("recorded", intent_id)
        return True

    def _finish(
        self, intent_id: int, attempt_id: int | None, *, error: str | None, block: int | None = None
    ) -> None:
        with self.db.begin() as session:
            intent = _lock(session, [intent_id])[intent_id]
            self._finish_in(intent, attempt_id, error=error, block=block)

    def _finish_in(
        self,
        intent: OutboxIntent,
        attempt_id: int | None,
        *,
        error: str | None,
        block: int | None = None,
        gas_used: int | None = None,
    ) -> None:
        """Record how ``intent`` ended, in the session that locked it (``_lock``)."""
        if intent.state in ("confirmed", "failed"):
            return
        if error and self._out_of_gas(intent, gas_used):
            [mined] = [t for t in intent.transactions if t.id == attempt_id]
            if any(t.status in _LIVE and t.nonce != mined.nonce for t in intent.transactions):
                # Signed again at another nonce (_renonce) before this receipt came: that
                # one is alive and may still be mined, so it is the one tracked from here.
                mined.status, mined.error = "mined", f"ran out of gas: used {gas_used}"
                return
            if intent.attempts + 1 < self.max_attempts:
                self._estimate_again(intent, attempt_id, gas_used)
                return
        mined = _mark_mined(intent, attempt_id)
        if mined is not None:
            intent.tx_hash = mined.tx_hash
        intent.state = "failed" if error else "confirmed"
        intent.error = error
        intent.block_number = block
        intent.updated_at = self._clock()
        self._publish(intent)

    @staticmethod
    def _out_of_gas(intent: OutboxIntent, gas_used: int | None) -> bool:
        """Whether a reverted transaction of ``intent`` ran out of gas: it used at least
        :data:`OUT_OF_GAS_PERCENT` of its limit (a call passes on at most 63/64 of the gas
        left, so a call that runs out leaves its caller little). A limit from an estimate has
        a fifth or more of headroom, so a revert for a reason uses less."""
        limit = intent.gas_limit
        return bool(limit and gas_used is not None and gas_used * 100 >= limit * OUT_OF_GAS_PERCENT)

    def _estimate_again(self, intent: OutboxIntent, attempt_id: int | None, gas_used: int) -> None:
        """``intent``'s transaction ran out of gas (its estimate was made in another state
        of the chain): it changed nothing but its sender's nonce, so the intent is estimated
        and signed again. A call that was refused for a reason, not for want of gas, fails
        at that estimate with the reason."""
        mined = _mark_mined(intent, attempt_id)
        if mined is not None:
            mined.error = f"ran out of gas: used {gas_used} of {intent.gas_limit}"
        intent.attempts += 1
        intent.error = f"ran out of gas ({gas_used} of {intent.gas_limit}); estimating again"
        intent.state, intent.nonce, intent.tx_hash, intent.gas_limit = "pending", None, None, None
        intent.updated_at = self._clock()
        log.info("intent %s: ran out of gas; estimating again", intent.id)

    def _publish(self, intent: OutboxIntent) -> None:
        if self.webhooks is None:
            return
        session = sa.inspect(intent).session
        outcome = "succeeded" if intent.state == "confirmed" else "failed"
        self.webhooks.record(
            session,
            event_id=f"evt_{intent.kind}_{intent.id}_{outcome}",
            type=f"{intent.kind}.{outcome}",
            owner=intent.owner,
            data=intent_view(intent),
        )


@dataclass
class _Pass:
    """What one pass of the relayer asked the node, so that it asks only once."""

    fees: tuple[int, int] | None = None
    head: int | None = None
    pending_count: int | None = None
    mined_count: int | None = None
    receipts: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: The ``sent`` intents' nonces and transactions (id, hash, status, created), by intent.
    sent: dict[int, tuple[int | None, list[tuple[Any, ...]]]] = field(default_factory=dict)
    estimates: dict[int, int | Exception] = field(default_factory=dict)
    #: (intent id, attempt id, receipt) of the intents found mined, recorded at the end.
    mined: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)


def _mark_mined(intent: OutboxIntent, attempt_id: int | None) -> OutboxTransaction | None:
    """Mark ``intent``'s transaction ``attempt_id`` mined and its other live ones replaced
    (they share its nonce, which it used); the mined one, if any."""
    mined = None
    for t in intent.transactions:
        if t.id == attempt_id:
            t.status, mined = "mined", t
        elif t.status in _LIVE:
            t.status = "replaced"
    return mined


def _lock(session, intent_ids: list[int]) -> dict[int, OutboxIntent]:
    """The intents ``intent_ids`` by id, locked in ``session`` and loaded with their
    transactions, in one query."""
    intents = session.scalars(
        sa.select(OutboxIntent)
        .where(OutboxIntent.id.in_(intent_ids))
        .options(selectinload(OutboxIntent.transactions))
        .with_for_update()
    )
    return {intent.id: intent for intent in intents}


def _receipt(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields of a JSON-RPC receipt the relayer reads, as web3.py would give them."""
    return {
        "status": int(raw["status"], 16),
        "blockNumber": int(raw["blockNumber"], 16),
        "transactionHash": raw["transactionHash"],
        "gasUsed": int(raw["gasUsed"], 16),
    }


def intent_view(intent: OutboxIntent) -> dict[str, Any]:
    """What an intent looks like to its owner (API responses and event data)."""
    return {
        "id": intent.id,
        "kind": intent.kind,
        "state": intent.state,
        **intent.details,
        "tx_hash": intent.tx_hash,
        "block_number": intent.block_number,
        "error": intent.error,
        "created_at": intent.created_at.isoformat(),
    }
