"""Helpers for tests and benchmarks: free ports and the anvil peer node."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["Anvil", "free_port", "wait_for_rpc"]

_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_rpc(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Block until a JSON-RPC node at ``url`` answers ``eth_chainId``."""
    import json
    import urllib.request

    deadline = time.monotonic() + timeout
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"node process exited with {proc.returncode} before answering")
        try:
            req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if "result" in json.loads(r.read()):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no JSON-RPC answer from {url} within {timeout}s")
        time.sleep(0.05)


def _anvil_binary() -> str:
    local = _ROOT / "node_modules" / ".bin" / "anvil"
    found = str(local) if local.exists() else shutil.which("anvil")
    if not found:
        raise RuntimeError(
            "anvil is missing: run ./test (it installs the npm package @foundry-rs/anvil)"
        )
    return found


class Anvil:
    """anvil from the npm package @foundry-rs/anvil, on a free port of 127.0.0.1."""

    def __init__(self, chain_id: int = 1337, *, block_time: float | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [_anvil_binary(), "--host", "127.0.0.1", "--port", str(self.port)]
        # No past states on disk: anvil would write its whole state there for every block
        # beyond the ones it keeps in memory (47 GB in minutes under this test suite).
        args += ["--chain-id", str(chain_id), "--silent", "--max-persisted-states", "0"]
        if block_time:
            args += ["--block-time", str(block_time)]
        # anvil keeps past states on disk under ~/.foundry/anvil/tmp and leaves them there
        # when it is killed (79 GB after a day of test runs): give it a home of its own,
        # removed when it stops.
        self._home = tempfile.mkdtemp(prefix="carpay-anvil-")
        env = dict(os.environ, NO_COLOR="1", HOME=self._home)
        # A file, not a pipe: an unread pipe fills up and blocks anvil mid-run.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as anvil)
        # Its own process group: the npm launcher is a Node.js script that spawns the real
        # binary, and stopping only the launcher would leave anvil running.
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            wait_for_rpc(self.url, proc=self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(5)
                break
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
