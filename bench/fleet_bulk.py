"""Bulk throughput with one worker process and with two, side by side in one run (prints figures; not a
test). See bench/README.md.

    .venv/bin/python bench/fleet_bulk.py [--users 600] [--latency-ms 100] [--tenant-concurrency 16]

Starts its own PostgreSQL, seeds it once with `teamsvoice serve`, then for each worker count W in (1, 2):
runs `teamsvoice emulator`, one `teamsvoice api` and W `teamsvoice worker` processes, onboards a fresh
emulated tenant of N users, and times one Fusion bulk update of N users (number + voice routing policy) from
the PUT until the job is final. Prints users/second per W, the ratio, and the most requests the emulator saw
in flight for the tenant (never above --tenant-concurrency, whatever W is).
"""

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tests.e2e.test_fleet import Fleet  # noqa: E402
from tests.e2e.test_serve import Served  # noqa: E402
from tests.support.fusion_bulk import prepare_bulk  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402


async def run(workers: int, root: Path, url: str, seeded: Served, first_number: int, args: argparse.Namespace) -> dict:
    fleet = Fleet(root, url, seeded.emulator_port, seeded.port)
    fleet.env["TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY"] = str(args.tenant_concurrency)
    try:
        fleet.start("emulator", "emulator", "--port", str(fleet.emulator_port))
        fleet.wait_ready(f"{fleet.emulator_url}/_admin/faults", verify=fleet.ca)
        fleet.start("api", "api", "--port", str(fleet.api_port))
        for index in range(workers):
            fleet.start(f"worker-{index + 1}", "worker")
        fleet.wait_ready(f"{fleet.api_url}/health")
        creds = json.loads((fleet.data_dir / "demo-credentials.json").read_text())
        async with httpx.AsyncClient(base_url=fleet.api_url, timeout=600) as http, \
                httpx.AsyncClient(base_url=fleet.emulator_url, verify=fleet.ca) as emulator:
            setup = await prepare_bulk(http, creds, args.users, first_number=first_number)
            await emulator.put("/_admin/faults", json={"latencyMs": args.latency_ms})
            started = time.perf_counter()
            accepted = await http.put(f"{setup.path}/msteams/users/bulk", headers={**setup.headers, "Prefer": "respond-async"},
                                      json=setup.body(f"fleet-{workers}"))
            accepted.raise_for_status()
            job = f"{setup.path}/msteams/users/bulk/{accepted.json()['id']}"
            while (details := (await http.get(job, headers=setup.headers)).json())["status"] in ("queued", "running"):
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - started
            faults = (await emulator.get("/_admin/faults")).json()
    finally:
        fleet.stop()
    return {"workers": workers, "status": details["status"], "seconds": elapsed, "users_per_s": args.users / elapsed,
            "max_in_flight": faults["concurrency"].get(setup.tenant_id, {}).get("max", 0)}


async def main(args: argparse.Namespace) -> None:
    postgres = PostgresServer()
    postgres.start()
    try:
        with tempfile.TemporaryDirectory(prefix="teamsvoice-fleet-") as tmp:
            url = postgres.create_database("fleet_bench")
            seeded = Served(Path(tmp) / "data", {"TEAMSVOICE_DATABASE_URL": url}).start()
            seeded.stop(signal.SIGINT)
            rows = [await run(w, Path(tmp), url, seeded, 26000000 + w * args.users, args) for w in (1, 2)]
    finally:
        postgres.stop()
    print(f"Fusion bulk update of {args.users} users on PostgreSQL: {args.latency_ms} ms added latency, "
          f"per-tenant concurrency {args.tenant_concurrency}")
    print(f"{'workers':>7} {'status':>8} {'seconds':>8} {'users/s':>8} {'max in flight':>13}")
    for r in rows:
        print(f"{r['workers']:>7} {r['status']:>8} {r['seconds']:>8.1f} {r['users_per_s']:>8.1f} {r['max_in_flight']:>13}")
    print(f"two workers / one worker: {rows[1]['users_per_s'] / rows[0]['users_per_s']:.2f}x")


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--tenant-concurrency", type=int, default=16)
    asyncio.run(main(parser.parse_args()))
