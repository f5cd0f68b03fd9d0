"""currency_token.vy against a Python model: random mints, burns, transfers, blocklists, pauses and
settlements on both nodes; the balances and the supply must always match the model's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from carpay.errors import TransactionReverted
from carpay.testing.signing import signed_payment

#: A short run for every test session, and a long one for ``./test -m slow``.
SHORT = settings(
    max_examples=5,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
LONG = settings(SHORT, max_examples=100, stateful_step_count=40)

UNLIMITED = 2**256 - 1
SETTLED, BAD_SIGNATURE, EXPIRED, NONCE_USED, INSUFFICIENT_FUNDS, BLOCKLISTED = range(6)

amounts = st.integers(min_value=0, max_value=1_000)
actors = st.integers(min_value=0, max_value=4)
# Small nonces collide often; a few land in a second bitmap word.
payment_nonces = st.integers(min_value=0, max_value=6) | st.sampled_from([255, 256, 2**200])


def machine_for(deploy_token: Callable[..., Any], accounts: list[Any]) -> type:
    """A state machine class that deploys a fresh token from ``accounts[0]`` per example."""

    owner, people = accounts[0], accounts[1:6]

    class CurrencyTokenMachine(RuleBasedStateMachine):
        """The token's owner holds every role, mints, burns and settles; five people pay."""

        @initialize()
        def deploy(self) -> None:
            self.token = deploy_token(owner)
            self.token.transact(owner, "configureMinter", owner.address, 10**9)
            self.token.transact(owner, "configureSettler", owner.address, True)
            self.domain = self.token.domain()
            self.valid_before = self.token.chain.w3.eth.get_block("latest")["timestamp"] + 10**6
            self.allowances: dict[tuple[str, str], int] = {}
            self.blocklisted: set[str] = set()
            self.paused = False
            self.used_nonces: set[tuple[str, int]] = set()
            # Everyone starts with funds, so that most payments can settle.
            self.balances = {owner.address: 0}
            for person in people:
                self.token.transact(owner, "mint", person.address, 2_000)
                self.balances[person.address] = 2_000
            self.supply = 2_000 * len(people)
            self.minter_allowance = 10**9 - self.supply

        # -- helpers --------------------------------------------------------------------------

        def send(self, ok: bool, sender: Any, name: str, *args: Any) -> Any:
            """Send the transaction; it must succeed exactly when the model says it may."""
            if ok:
                return self.token.transact(sender, name, *args)
            with pytest.raises(TransactionReverted):
                self.token.transact(sender, name, *args)
            return None

        def free(self, *addresses: str) -> bool:
            return not self.paused and not any(a in self.blocklisted for a in addresses)

        # -- rules ----------------------------------------------------------------------------

        @rule(to=actors, amount=amounts)
        def mint(self, to: int, amount: int) -> None:
            to_ = people[to].address
            ok = self.free(to_) and 0 < amount <= self.minter_allowance
            if self.send(ok, owner, "mint", to_, amount):
                self.balances[to_] += amount
                self.supply += amount
                self.minter_allowance -= amount

        @rule(amount=amounts)
        def burn(self, amount: int) -> None:
            ok = self.free() and 0 < amount <= self.balances[owner.address]
            if self.send(ok, owner, "burn", amount):
                self.balances[owner.address] -= amount
                self.supply -= amount

        @rule(sender=actors, to=st.integers(min_value=-1, max_value=4), amount=amounts)
        def transfer(self, sender: int, to: int, amount: int) -> None:
            frm, to_ = people[sender], (people[to].address if to >= 0 else owner.address)
            ok = self.free(frm.address, to_) and amount <= self.balances[frm.address]
            if self.send(ok, frm, "transfer", to_, amount):
                self.balances[frm.address] -= amount
                self.balances[to_] += amount

        @rule(holder=actors, spender=actors, amount=amounts | st.just(UNLIMITED))
        def approve(self, holder: int, spender: int, amount: int) -> None:
            frm, to_ = people[holder], people[spender].address
            if self.send(self.free(frm.address, to_), frm, "approve", to_, amount):
                self.allowances[frm.address, to_] = amount

        @rule(spender=actors, holder=actors, to=actors, amount=amounts)
        def transfer_from(self, spender: int, holder: int, to: int, amount: int) -> None:
            by, frm, to_ = people[spender], people[holder].address, people[to].address
            allowed = self.allowances.get((frm, by.address), 0)
            ok = (
                self.free(by.address, frm, to_)
                and amount <= allowed
                and amount <= self.balances[frm]
            )
            if self.send(ok, by, "transferFrom", frm, to_, amount):
                if allowed != UNLIMITED:
                    self.allowances[frm, by.address] = allowed - amount
                self.balances[frm] -= amount
                self.balances[to_] += amount

        @rule(who=actors)
        def blocklist(self, who: int) -> None:
            self.token.transact(owner, "blocklist", people[who].address)
            self.blocklisted.add(people[who].address)

        @rule(who=actors)
        def unblocklist(self, who: int) -> None:
            self.token.transact(owner, "unBlocklist", people[who].address)
            self.blocklisted.discard(people[who].address)

        @precondition(lambda self: not self.paused)
        @rule()
        def pause(self) -> None:
            self.token.transact(owner, "pause")
            self.paused = True

        @precondition(lambda self: self.paused)
        @rule()
        def unpause(self) -> None:
            self.token.transact(owner, "unpause")
            self.paused = False

        @rule(
            payee=actors,
            fee_to=st.integers(min_value=-1, max_value=4),
            batch=st.lists(
                st.tuples(
                    actors,  # payer
                    amounts,  # value
                    st.integers(min_value=0, max_value=100),  # fee, in % of the value
                    payment_nonces,
                    st.sampled_from(["good"] * 6 + ["expired", "forged"]),
                ),
                max_size=6,
            ),
        )
        def settle(self, payee: int, fee_to: int, batch: list) -> None:
            to = people[payee].address
            fee_to_ = people[fee_to].address if fee_to >= 0 else owner.address
            payments, fees, expected = [], [], []
            balances, used = dict(self.balances), set(self.used_nonces)
            received = total_fee = 0
            for payer_index, value, fee_percent, nonce, kind in batch:
                payer = people[payer_index]
                signer = people[(payer_index + 1) % 5] if kind == "forged" else payer
                valid_before = 1 if kind == "expired" else self.valid_before
                payments.append(
                    signed_payment(
                        signer,
                        self.domain,
                        to=to,
                        value=value,
                        nonce=nonce,
                        valid_before=valid_before,
                        from_=payer.address,
                    )
                )
                fee = value * fee_percent // 100
                fees.append(fee)
                if kind == "expired":
                    expected.append(EXPIRED)
                elif (to, nonce) in used:
                    expected.append(NONCE_USED)
                elif kind == "forged":
                    expected.append(BAD_SIGNATURE)
                elif payer.address in self.blocklisted:
                    expected.append(BLOCKLISTED)
                elif balances[payer.address] < value:
                    expected.append(INSUFFICIENT_FUNDS)
                else:
                    expected.append(SETTLED)
                    used.add((to, nonce))
                    balances[payer.address] -= value
                    received += value
                    total_fee += fee
            balances[to] += received - total_fee
            balances[fee_to_] += total_fee
            ok = self.free(to) and (total_fee == 0 or fee_to_ not in self.blocklisted)
            args = (to, fee_to_, payments, fees)
            if ok:
                assert self.token.call("settlePayments", *args, sender=owner) == expected
            event("settlement " + ("sent" if ok else "refused"), ",".join(map(str, expected)))
            if self.send(ok, owner, "settlePayments", *args):
                self.balances, self.used_nonces = balances, used

        # -- invariants -----------------------------------------------------------------------

        @invariant()
        def supply_is_the_sum_of_balances(self) -> None:
            if not hasattr(self, "token"):
                return
            assert self.token.call("totalSupply") == self.supply == sum(self.balances.values())
            for address, balance in self.balances.items():
                assert self.token.balance(address) == balance, address

    return CurrencyTokenMachine


def test_currency_token_state(deploy_token, accounts):
    run_state_machine_as_test(machine_for(deploy_token, accounts), settings=SHORT)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_currency_token_state_long(deploy_token, accounts):
    run_state_machine_as_test(machine_for(deploy_token, accounts), settings=LONG)
