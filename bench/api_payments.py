"""Invoice payments through the REST API end to end, on the embedded node.

Each payment is a merchant-signed invoice and a payer's EIP-3009 authorization, posted to
``POST /v1/payments``; it is done when it is mined, indexed (a ``ledger_payments`` row) and its
``payment.succeeded`` webhook is queued. The node runs in its own process (``carpay node``),
the API (uvicorn) in another, and the indexer, relayer, webhook dispatcher and keeper in a
third (``carpay.background``), as ``carpay up`` runs them; the client posting the payments (an
aiohttp session), the watcher and the merchant's webhook receiver run in this one. Prints
payments/s and p50/p99 request-to-done latency, then the indexer's events/s rebuilding the same
history (``reindex``); writes bench/results/api_payments.json.

    .venv/bin/python bench/api_payments.py [--payments 1000] [--concurrency 32] [--rate R]
        [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform as host
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carpay.accounts.api_keys import ApiKeys  # noqa: E402
from carpay.api import create_app  # noqa: E402
from carpay.background import Background, Plan, _Child, _child_setup, _until_stopped  # noqa: E402
from carpay.chain import Chain  # noqa: E402
from carpay.chain.node import dev_accounts  # noqa: E402
from carpay.ledger import Database, Indexer  # noqa: E402
from carpay.ledger.models import WebhookEvent  # noqa: E402
from carpay.ledger.tables import LedgerPayment  # noqa: E402
from carpay.runtime import DevKeys  # noqa: E402
from carpay.services.checkout import Invoice  # noqa: E402
from carpay.services.platform import deploy_platform  # noqa: E402
from carpay.services.webhooks import Webhooks  # noqa: E402
from carpay.settings import Settings  # noqa: E402
from carpay.testing import free_port, wait_for_rpc  # noqa: E402
from carpay.testing.database import postgres_schema  # noqa: E402
from carpay.testing.scenarios import sign_invoice  # noqa: E402
from carpay.testing.signing import Domain, sign_receive_authorization  # noqa: E402
from carpay.testing.webhooks import WebhookReceiver  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api_payments.json"
#: Payments made before the measured ones, to warm the platform up.
WARMUP = 20
OWNER = "bench-merchant"


class ApiProcess(_Child):
    """The API (uvicorn) alone in a process of its own, as ``carpay up``'s main process serves
    it: not sharing an interpreter lock with the benchmark's client, its watcher and the
    merchant's webhook receiver, which run in this one."""

    name = "carpay-api"

    def __init__(self, settings: Settings, rpc_url: str, relayer: str, port: int) -> None:
        super().__init__(_serve_api, settings, rpc_url, relayer, port)
        if not self._reports.poll(60) or self._reports.recv() != "ready":
            self.stop()
            raise SystemExit("the API did not start")


def _serve_api(settings: Settings, rpc_url: str, relayer: str, port: int, stop, reports) -> None:
    _child_setup()
    db = Database(settings.database_url)
    chain = Chain(rpc_url, state_dir=settings.data_dir)
    app = create_app(db, chain, settings, relayer_address=relayer)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    reports.send("ready" if server.started else "failed")
    _until_stopped(stop)
    server.should_exit = True
    thread.join(10)
    db.dispose()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _bodies(chain: Chain, checkout: str, token, merchant, payers, count: int) -> list[dict]:
    expiry = int(chain.w3.eth.get_block("latest")["timestamp"]) + 6 * 3600
    domain = Domain.of(token)
    bodies = []
    for i in range(count):
        payer = payers[i % len(payers)]
        invoice = Invoice(merchant.address, 10_000 + i, token.address, f"0x{i + 1:064x}", expiry)
        signature = sign_invoice(chain, checkout, merchant, invoice.as_tuple())
        auth = sign_receive_authorization(
            payer,
            domain,
            to=checkout,
            value=invoice.amount_minor,
            valid_after=0,
            valid_before=expiry,
            nonce=invoice.struct_hash(),
        )
        bodies.append(
            {
                "invoice": {
                    "merchant": invoice.merchant,
                    "amount_minor": invoice.amount_minor,
                    "token": invoice.token,
                    "invoice_id": invoice.invoice_id,
                    "expiry": expiry,
                },
                "merchant_signature": "0x" + signature.hex(),
                "payer": payer.address,
                "authorization": {
                    "valid_after": 0,
                    "valid_before": expiry,
                    "v": auth.v,
                    "r": "0x" + auth.r.hex(),
                    "s": "0x" + auth.s.hex(),
                },
            }
        )
    return bodies


async def _post_all(
    url: str, key: str, bodies: list[dict], concurrency: int, rate: float | None
) -> dict[str, float]:
    """Post every payment, ``concurrency`` at a time; with ``rate``, the i-th not before
    ``i / rate`` seconds from the start (an offered load, not as fast as the API answers)."""
    started: dict[str, float] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for i, body in enumerate(bodies):
        queue.put_nowait((i, body))
    headers = {"Authorization": f"Bearer {key}"}
    began = time.perf_counter()

    async def worker(client: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i, body = queue.get_nowait()
            if rate:
                await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            invoice_id = body["invoice"]["invoice_id"]
            started[invoice_id] = time.perf_counter()
            async with client.post(
                f"{url}/v1/payments", json=body, headers={**headers, "Idempotency-Key": invoice_id}
            ) as response:
                if response.status != 201:
                    raise SystemExit(f"payment refused: {response.status} {await response.text()}")

    # aiohttp: a lighter client than httpx, whose CPU the API's processes share the machine with.
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return started


def _watch(db: Database, done: dict[str, float], count: int, timeout: float) -> None:
    """Fill ``done`` with when each invoice was both indexed and had its webhook queued
    (read 50 times a second, only the rows added since the last look: the watching must not
    slow the API that shares this process)."""
    indexed: dict[str, float] = {}
    webhooked: dict[str, float] = {}
    deadline = time.perf_counter() + timeout
    last_payment, last_event = 0, 0
    while len(done) < count and time.perf_counter() < deadline:
        now = time.perf_counter()
        with db.read() as session:
            for row_id, reference in session.execute(
                sa.select(LedgerPayment.id, LedgerPayment.reference).where(
                    LedgerPayment.id > last_payment
                )
            ):
                indexed.setdefault(reference, now)
                last_payment = max(last_payment, row_id)
            for seq, data in session.execute(
                sa.select(WebhookEvent.seq, WebhookEvent.data).where(
                    WebhookEvent.type == "payment.succeeded", WebhookEvent.seq > last_event
                )
            ):
                webhooked.setdefault(data["invoice"]["invoice_id"], now)
                last_event = max(last_event, seq)
        for invoice_id, at in webhooked.items():
            if invoice_id in indexed and invoice_id not in done:
                done[invoice_id] = max(at, indexed[invoice_id])
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--rate", type=float, default=None, help="payments offered per second (default: all)"
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the platform's database: SQLite in the run's directory (default), or a schema "
        "of its own in the PostgreSQL of CARPAY_TEST_POSTGRES_URL (default: the local test "
        "database), dropped after the run",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="carpay-bench-"))
        database_url = (
            stack.enter_context(postgres_schema())
            if args.database == "postgresql"
            else f"sqlite:///{tmp / 'carpay.sqlite3'}"
        )
        _run(args, tmp, database_url)


def _run(args: argparse.Namespace, tmp: Path, database_url: str) -> None:
    node_port = free_port()
    node = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "carpay",
            "node",
            "--data-dir",
            str(tmp / "chain"),
            "--port",
            str(node_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stop = threading.Event()
    try:
        url = f"http://127.0.0.1:{node_port}"
        wait_for_rpc(url, proc=node)
        chain = Chain(url, state_dir=tmp)
        keys = DevKeys.from_mnemonic(Settings().mnemonic)
        accounts = dev_accounts(count=10)
        relayer, payers, merchant = accounts[9], accounts[1:9], accounts[0]
        platform = deploy_platform(chain, keys.owner, treasury=keys.treasury.address)
        registry = chain.contract("merchant_registry", platform.registry)
        token = chain.contract("currency_token", platform.tokens["EUR"])
        chain.transact(
            keys.owner,
            registry.functions.registerMerchant(merchant.address, 5, merchant.address, 100),
        )
        for payer in payers:
            chain.transact(keys.owner, token.functions.mint(payer.address, 10**12))
        start_block = chain.deployment("merchant_registry").block

        print(f"signing {args.payments} invoices and authorizations ...", flush=True)
        signed = _bodies(chain, platform.checkout, token, merchant, payers, WARMUP + args.payments)
        warmup, bodies = signed[:WARMUP], signed[WARMUP:]

        db = Database(database_url)
        db.upgrade()
        receiver = WebhookReceiver().__enter__()
        with db.begin() as session:
            key = ApiKeys().create(session, name="bench", owner=OWNER, scopes=["payments:write"])
            Webhooks().subscribe(
                session, owner=OWNER, url=receiver.url, events=["payment.succeeded"]
            )
        settings = Settings(
            data_dir=tmp, database_url=database_url, rate_limit=1e6, rate_burst=10**6
        )
        api_port = free_port()
        api_process = ApiProcess(settings, url, relayer.address, api_port)
        # The indexer, relayer, dispatcher and keeper in a process of their own, as
        # `carpay up` runs them.
        plan = Plan(
            settings, url, platform, (relayer.key.hex(),), interval=0.02, start_block=start_block
        )
        background = Background(plan)

        # Watched from the start, beside the posting: a payment is done when it is done, not
        # when the last one has been posted.
        done: dict[str, float] = {}
        watcher = threading.Thread(target=_watch, args=(db, done, len(signed), 600))
        watcher.start()
        # A few payments first, not counted: the first of a fresh platform wait for its
        # processes' first queries, estimates and compiled statements.
        api = f"http://127.0.0.1:{api_port}"
        asyncio.run(_post_all(api, key.secret, warmup, 4, None))
        warm_ids = [b["invoice"]["invoice_id"] for b in warmup]
        while not all(i in done for i in warm_ids) and watcher.is_alive():
            time.sleep(0.05)
        print(f"posting {args.payments} payments, {args.concurrency} at a time ...", flush=True)
        began = time.perf_counter()
        started = asyncio.run(
            _post_all(
                f"http://127.0.0.1:{api_port}", key.secret, bodies, args.concurrency, args.rate
            )
        )
        accepted = time.perf_counter()
        watcher.join()
        done = {i: at for i, at in done.items() if i in started}
        finished = max(done.values()) if done else time.perf_counter()
        background.stop()
        api_process.stop()

        latencies = [(done[i] - started[i]) * 1000 for i in done]
        with db.begin() as session:
            events = session.scalar(sa.text("SELECT count(*) FROM ledger_events"))
        t0 = time.perf_counter()
        Indexer(db, chain, platform.watched(), start_block=start_block).reindex()
        reindex_s = time.perf_counter() - t0
        db.dispose()
        receiver.__exit__(None, None, None)
    finally:
        stop.set()
        node.terminate()
        node.wait(30)

    # How fast the machine is this minute, to compare runs of different hours.
    sys.path.insert(0, str(ROOT / "bench"))
    from engine_throughput import calibrate

    machine = calibrate()
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{host.machine()}, {host.python_implementation()} {host.python_version()}",
        "database": args.database,
        "payments": args.payments,
        "warmup_payments": WARMUP,
        "concurrency": args.concurrency,
        "offered_per_s": args.rate,
        "completed": len(done),
        "accepted_per_s": args.payments / (accepted - began),
        "payments_per_s": len(done) / (finished - began),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": _percentile(latencies, 0.99) if latencies else None,
        "indexer_events": events,
        "indexer_events_per_s": events / reindex_s,
        "targets": {"payments_per_s": 300, "p99_ms": 250, "indexer_events_per_s": 5000},
        "py_evm_alone_per_s": machine["transfers_per_s"],
    }
    print()
    print(f"{'payments':>10s} {'accepted/s':>11s} {'done/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}")
    print(
        f"{len(done):>10d} {result['accepted_per_s']:>11.1f} {result['payments_per_s']:>8.1f} "
        f"{result['p50_ms'] or 0:>8.0f} {result['p99_ms'] or 0:>8.0f}"
    )
    print(f"indexer: {events} events rebuilt at {result['indexer_events_per_s']:.0f} events/s")
    print("targets: 300 payments/s, p99 under 250 ms, indexer over 5,000 events/s")
    print(
        f"the machine this minute: py-evm alone mines {machine['transfers_per_s']} ERC-20 "
        "transfers/s in blocks of 100 (bench/node_throughput.py's calibration)"
    )
    path = RESULTS if not args.rate else RESULTS.with_name(f"api_payments_at_{args.rate:g}.json")
    if args.database != "sqlite":
        path = path.with_name(f"{path.stem}_{args.database}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
