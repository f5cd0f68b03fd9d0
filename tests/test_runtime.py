"""Tests of carpay/runtime.py through the command line: `carpay up`, Ctrl-C, restart, reindex."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from carpay.chain import Chain
from carpay.chain.node.node import dev_accounts
from carpay.services.platform import CATEGORIES, DEMO_BALANCE, DEMO_VINS
from carpay.testing import free_port, wait_for_rpc

DEV_ACCOUNT_3 = dev_accounts(count=4)[3].address
#: The demo data's mints: 10 development accounts x 2 currencies, and the insurer's float.
DEMO_MINTS = 10 * 2 + 1


class Up:
    """`carpay up` in a child process, as a user runs it."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port, self.node_port = free_port(), free_port()
        cmd = [sys.executable, "-m", "carpay", "up", "--data-dir", str(data_dir)]
        cmd += ["--port", str(self.port), "--node-port", str(self.node_port), *args]
        self.log_path = data_dir.parent / f"up-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, text=True)

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"carpay up exited:\n{self.output}"
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/openapi.json").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"carpay up not ready in {timeout}s:\n{self.output}")

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"carpay up still runs 30 s after Ctrl-C:\n{self.output}"
            ) from None
        finally:
            self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _children(pid: int) -> set[int]:
    """The processes ``pid`` started (Linux's /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(c) for c in (task / "children").read_text().split()}
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited, not yet reaped by its (dead) parent's reaper
            return True
        time.sleep(0.1)
    return False


def _indexed_transfers(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "carpay.sqlite3") as db:
        return db.execute("SELECT count(*) FROM ledger_transfers").fetchone()[0]


def _wait_indexed(data_dir: Path, at_least: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while (count := _indexed_transfers(data_dir)) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


def test_up_runs_everything_stops_on_ctrl_c_and_resumes(tmp_path):
    data_dir = tmp_path / "carpay"
    first = Up(data_dir, "--demo")
    try:
        first.wait_ready()
        wait_for_rpc(f"http://127.0.0.1:{first.node_port}")
        chain = Chain(f"http://127.0.0.1:{first.node_port}", state_dir=tmp_path / "client")
        tokens = {
            line.split()[3]: line.split()[-1]
            for line in first.output.splitlines()
            if line.startswith("carpay: currency token")
        }
        assert set(tokens) == {"EUR", "USD"}
        for address in tokens.values():
            token = chain.contract("currency_token", address)
            assert token.functions.balanceOf(DEV_ACCOUNT_3).call() == DEMO_BALANCE
        # The demo's mints, indexed by the running indexer.
        assert _wait_indexed(data_dir, DEMO_MINTS) == DEMO_MINTS
        key_file = data_dir / "demo-api-key"
        assert key_file.stat().st_mode & 0o077 == 0
        secret = key_file.read_text().strip()
        assert secret not in first.output
        balances = httpx.get(
            f"http://127.0.0.1:{first.port}/v1/accounts/{DEV_ACCOUNT_3}/balances",
            headers={"Authorization": f"Bearer {secret}"},
        ).json()
        assert sorted(b["token"] for b in balances) == sorted(a.lower() for a in tokens.values())
        assert {b["balance"] for b in balances} == {DEMO_BALANCE}
        # The demo key speaks for the nine demo merchants (its webhooks hear of their takings)
        # and the demo vehicles' owners: it pays the first one's fine from its held key.
        with sqlite3.connect(data_dir / "carpay.sqlite3") as db:
            owners = db.execute("SELECT owner, count(*) FROM participant_accounts GROUP BY owner")
            assert owners.fetchall() == [("demo", len(CATEGORIES) + len(DEMO_VINS))]
        api = f"http://127.0.0.1:{first.port}/v1"
        demo = {"Authorization": f"Bearer {secret}"}
        payer = dev_accounts(count=1)[0].address
        paid = httpx.post(
            f"{api}/fines/1/pay", json={"payer": payer}, headers=demo | {"Idempotency-Key": "f1"}
        )
        assert paid.status_code == 201, paid.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            intent = httpx.get(f"{api}/outbox/{paid.json()['id']}", headers=demo).json()
            if intent["state"] in ("confirmed", "failed"):
                break
            time.sleep(0.2)
        assert intent["state"] == "confirmed", intent
    finally:
        code = first.interrupt()
        first.kill()
    assert code == 0, first.output
    assert "carpay: stopped" in first.output

    second = Up(data_dir)
    try:
        second.wait_ready()
        assert [line for line in second.output.splitlines() if "currency token" in line] == [
            f"carpay: currency token {c} at {a}" for c, a in tokens.items()
        ]
    finally:
        assert second.interrupt() == 0
        second.kill()
    # Resumed: nothing counted twice (the mints and the fine's payment).
    assert _indexed_transfers(data_dir) == DEMO_MINTS + 1


def test_the_node_and_the_workers_go_with_up_even_when_it_is_killed(tmp_path):
    """The node (and its engine), and indexer, relayers and dispatcher, run in child processes
    of `carpay up`: they end with it, after Ctrl-C and after kill -9 alike, and it starts again
    on the same data (the node's lock on its data directory was let go)."""
    data_dir = tmp_path / "carpay"
    for stop in ("interrupt", "kill", "interrupt"):
        up = Up(data_dir)
        try:
            up.wait_ready()
            # The node's and the workers' processes, and multiprocessing's helper.
            children = _children(up.proc.pid)
            spawned = [c for c in children if b"spawn_main" in _cmdline(c)]
            assert len(spawned) == 2, ([_cmdline(c) for c in children], up.output)
            # ...and the node's engine, a child of the node's process
            engines = [g for c in spawned for g in _children(c) if b"node.split" in _cmdline(g)]
            assert len(engines) == 1, ([_cmdline(g) for c in spawned for g in _children(c)],)
            if stop == "interrupt":
                assert up.interrupt() == 0, up.output
            else:
                up.kill()
            for child in [*children, *engines]:
                assert _gone(child, 30), (
                    f"{_cmdline(child)!r} outlived carpay up ({stop}):\n{up.output}"
                )
        finally:
            up.kill()


def test_reindex_rebuilds_the_same_tables_from_the_chain(tmp_path):
    data_dir = tmp_path / "carpay"
    up = Up(data_dir, "--demo")
    try:
        up.wait_ready()
        _wait_indexed(data_dir, DEMO_MINTS)
    finally:
        assert up.interrupt() == 0
        up.kill()
    query = "SELECT chain_id, block_number, tx_hash, log_index, token, value FROM ledger_transfers"
    with sqlite3.connect(data_dir / "carpay.sqlite3") as db:
        before = sorted(db.execute(query).fetchall())

    done = subprocess.run(
        [sys.executable, "-m", "carpay", "reindex", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("carpay: reindexed ")
    with sqlite3.connect(data_dir / "carpay.sqlite3") as db:
        assert sorted(db.execute(query).fetchall()) == before
    assert len(before) == DEMO_MINTS


def test_serve_without_a_network_is_one_clear_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "carpay", "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "carpay: carpay serve needs --rpc (or CARPAY_RPC_URL): the network to serve"
    ]


@pytest.mark.parametrize("rpc", ["http://127.0.0.1:9"])
def test_serve_against_an_unreachable_node_is_one_clear_line(tmp_path, rpc):
    done = subprocess.run(
        [sys.executable, "-m", "carpay", "serve", "--rpc", rpc, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("carpay: "), done.stderr
