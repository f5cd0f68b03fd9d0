"""The relayer process killed outright (os._exit, no cleanup) at each step of a payment, then
restarted: the payment happens exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from carpay.chain import Chain
from carpay.services.relayer import HOOK_STEPS
from tests.services.test_relayer import (  # noqa: F401 (fixtures: plain_erc20, signer, token, tokens)
    drive,
    fresh_address,
    intent_of,
    make_relayer,
    mined_count,
    plain_erc20,
    request_transfer,
    signer,
    token,
    tokens,
)

# The relayer in a child process that dies, without unwinding anything, at one step.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from carpay.chain import Chain
    from carpay.ledger import Database
    from carpay.services.relayer import Relayer
    from tests.services.test_relayer import dev_account, RELAYER_INDEX

    database_url, node_url, state_dir, step = sys.argv[1:5]

    def die(at, intent_id):
        if at == step:
            os._exit(9)

    relayer = Relayer(
        Database(database_url), Chain(node_url, state_dir=state_dir),
        dev_account(RELAYER_INDEX), hook=die,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        relayer.run_once()
        time.sleep(0.02)
    sys.exit("the relayer never reached " + step)
    """
)


@pytest.fixture
def chain(embedded, tmp_path) -> Chain:
    return Chain(embedded.url, state_dir=tmp_path / "state")


@pytest.mark.parametrize("step", HOOK_STEPS)
def test_a_killed_relayer_pays_exactly_once_after_a_restart(
    database,
    database_url,
    chain,
    signer,  # noqa: F811 (the fixture imported above)
    token,  # noqa: F811 (the fixture imported above)
    step,
    tmp_path,
):
    payee, sent_before = fresh_address(), mined_count(chain, signer.address)
    intent_id = request_transfer(database, chain, signer, to=payee, amount=777, token=token.address)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, chain.url, str(chain.state_dir), step],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 9, child.stderr

    restarted = make_relayer(database, Chain(chain.url, state_dir=chain.state_dir), signer)
    intent = drive(restarted, database, intent_id)
    for _ in range(3):
        restarted.run_once()

    assert intent.state == "confirmed"
    assert chain.call(token.functions.balanceOf(payee)) == 777
    assert mined_count(chain, signer.address) == sent_before + 1
    assert [t.status for t in intent_of(database, intent_id).transactions] == ["mined"]
