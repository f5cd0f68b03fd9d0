"""The nonce manager: one nonce per transaction across threads, processes and restarts."""

from __future__ import annotations

import subprocess
import sys
import threading

from carpay.chain import NonceManager
from carpay.chain import nonces as nonces_module

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b0" * 20

# A worker process: loads nonces.py alone (it needs only the standard library, and the
# package's imports would take longer than the test), says it is ready, waits for "go" so
# that both workers reserve at the same time, then prints the nonces it got.
CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("nonces", sys.argv[1])
nonces = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nonces)
manager = nonces.NonceManager(sys.argv[2], chain="test")
print("ready", flush=True)
sys.stdin.readline()
print(" ".join(str(manager.reserve(sys.argv[3], pending=0)) for _ in range(int(sys.argv[4]))))
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_reserves_count_up_from_the_node_pending_count(tmp_path):
    nonces = NonceManager(tmp_path / "n.sqlite3", chain="test")

    assert [nonces.reserve(ALICE, pending=7) for _ in range(3)] == [7, 8, 9]
    assert nonces.reserve(BOB, pending=0) == 0  # senders are independent
    # Transactions sent by something else moved the node ahead: the node wins.
    assert nonces.reserve(ALICE, pending=20) == 20
    assert nonces.next_nonce(ALICE) == 21


def test_pending_count_is_asked_for_when_not_given(tmp_path):
    asked = []
    nonces = NonceManager(
        tmp_path / "n.sqlite3", chain="test", pending=lambda a: asked.append(a) or 4
    )

    mixed_case = "0x" + "A1" * 20
    assert nonces.reserve(mixed_case) == 4
    assert asked == [ALICE]  # addresses are compared in lower case


def test_a_restart_continues_where_it_stopped(tmp_path):
    path = tmp_path / "n.sqlite3"
    first = NonceManager(path, chain="test")
    assert [first.reserve(ALICE, pending=0) for _ in range(3)] == [0, 1, 2]
    first.close()

    # The node has seen none of them yet, but they may be on their way: never reuse them.
    again = NonceManager(path, chain="test")
    assert again.reserve(ALICE, pending=0) == 3


def test_chains_sharing_a_file_are_independent(tmp_path):
    path = tmp_path / "n.sqlite3"
    one, two = NonceManager(path, chain="1337:0xaa"), NonceManager(path, chain="1337:0xbb")

    assert one.reserve(ALICE, pending=0) == 0
    assert one.reserve(ALICE, pending=0) == 1
    assert two.reserve(ALICE, pending=0) == 0


def test_threads_never_share_a_nonce(tmp_path):
    path = tmp_path / "n.sqlite3"
    got: list[list[int]] = [[], [], [], []]

    def worker(out: list[int]) -> None:
        nonces = NonceManager(path, chain="test")  # like separate clients on one file
        out.extend(nonces.reserve(ALICE, pending=0) for _ in range(100))

    threads = [threading.Thread(target=worker, args=(out,)) for out in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    everything = sorted(n for out in got for n in out)
    assert everything == list(range(400))
    assert all(out == sorted(out) for out in got)


def test_processes_never_share_a_nonce(tmp_path):
    path = tmp_path / "n.sqlite3"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, nonces_module.__file__, str(path), ALICE, "300"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    assert [child.stdout.readline() for child in children] == ["ready\n", "ready\n"]
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=60)[0] for child in children]

    assert all(child.returncode == 0 for child in children)
    everything = sorted(int(n) for out in outputs for n in out.split())
    assert everything == list(range(600))


def test_released_nonces_are_handed_out_again(tmp_path):
    nonces = NonceManager(tmp_path / "n.sqlite3", chain="test")
    assert [nonces.reserve(ALICE, pending=5) for _ in range(4)] == [5, 6, 7, 8]

    nonces.release(ALICE, 6)  # refused by the node: a hole the next reservation fills
    assert nonces.reserve(ALICE, pending=5) == 6
    assert nonces.reserve(ALICE, pending=5) == 9

    nonces.release(ALICE, 9)  # the top one simply lowers the next nonce
    nonces.release(ALICE, 8)
    assert nonces.next_nonce(ALICE) == 8
    assert [nonces.reserve(ALICE, pending=5) for _ in range(2)] == [8, 9]

    nonces.release(ALICE, 50)  # never reserved: ignored
    assert nonces.reserve(ALICE, pending=5) == 10


def test_resync_after_nonce_too_low(tmp_path):
    nonces = NonceManager(tmp_path / "n.sqlite3", chain="test")
    assert [nonces.reserve(ALICE, pending=0) for _ in range(3)] == [0, 1, 2]
    nonces.release(ALICE, 1)

    # The node says the account is at 10: nonces below are spent, released ones too.
    assert nonces.resync(ALICE, pending=10) == 10
    assert nonces.reserve(ALICE, pending=3) == 10
    assert nonces.reserve(ALICE, pending=3) == 11
    # Resync never goes backwards: reservations above the node's count may be in flight.
    assert nonces.resync(ALICE, pending=4) == 12


def test_reservations_the_node_never_saw_are_reclaimed(tmp_path):
    clock = Clock()
    nonces = NonceManager(tmp_path / "n.sqlite3", chain="test", stale_after=60, clock=clock)
    assert nonces.reserve(ALICE, pending=5) == 5  # then the process died before sending it

    clock.now += 30
    assert nonces.reserve(ALICE, pending=5) == 6  # could still be on its way
    clock.now += 31
    # The node's count has not moved for over a minute while 5 and 6 are out: start again.
    assert nonces.reserve(ALICE, pending=5) == 5
    assert nonces.reserve(ALICE, pending=5) == 6

    clock.now += 10
    assert nonces.reserve(ALICE, pending=7) == 7  # the node moving on resets the clock
    clock.now += 61
    assert nonces.reserve(ALICE, pending=8) == 8
