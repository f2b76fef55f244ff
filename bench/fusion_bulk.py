"""Fusion bulk update throughput at scale (prints figures; not a test). See bench/README.md.

    .venv/bin/python bench/fusion_bulk.py [--sizes 1000 5000] [--latency-ms 100] [--rate 200] [--burst 100]

Runs `teamsvoice serve` (API, emulator, job engine; embedded SQLite) as its own process, and for each size N:
seeds an emulated tenant with N users, onboards a Fusion subscription to it with N free numbers, sets the
emulator's added latency and per-(app, tenant) throttle budget, then times one bulk update of N users
(number + voice routing policy each) from the PUT (`Prefer: respond-async`) until the job is final. It
prints users/second, the Microsoft requests the job made (counted by the emulator), the throttle bound
(the best any client could do under that budget: rate / requests per user) and the server's resident
memory before and after (flat memory as N grows is the target).
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tests.e2e.test_serve import Served  # noqa: E402
from tests.support.fusion_bulk import prepare_bulk  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def job_summary(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict:
    """The details' summary fields only: stop reading the stream where the item list starts."""
    head = b""
    async with http.stream("GET", url, headers=headers) as response:
        async for chunk in response.aiter_bytes():
            head += chunk
            if b', "job_items"' in head:
                break
    return json.loads(head[: head.index(b', "job_items"')] + b"}")


async def run_size(served: Served, creds: dict, size: int, first_number: int, args: argparse.Namespace) -> dict:
    microsoft = creds["microsoft"]
    async with httpx.AsyncClient(base_url=served.url, timeout=600) as http, \
            httpx.AsyncClient(base_url=microsoft["loginUrl"], verify=microsoft["caCertificate"], timeout=60) as emulator:
        await emulator.delete("/_admin/faults")
        setup = await prepare_bulk(http, creds, size, first_number)
        await emulator.put("/_admin/faults", json={
            "latencyMs": args.latency_ms, "throttle": {"requestsPerSecond": args.rate, "burst": args.burst}})
        before_requests = (await emulator.get("/_admin/faults")).json()["injected"]["latency"]
        rss_before = rss_mib(served.process.pid)  # type: ignore[union-attr]
        started = time.perf_counter()
        accepted = await http.put(f"{setup.path}/msteams/users/bulk", headers={**setup.headers, "Prefer": "respond-async"},
                                  json=setup.body(f"bench-{size}"))
        accepted.raise_for_status()
        job_id, peak = accepted.json()["id"], rss_before
        while True:
            summary = await job_summary(http, f"{setup.path}/msteams/users/bulk/{job_id}", setup.headers)
            peak = max(peak, rss_mib(served.process.pid))  # type: ignore[union-attr]
            if summary["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(1)
        elapsed = time.perf_counter() - started
        faults = (await emulator.get("/_admin/faults")).json()
        await emulator.delete("/_admin/faults")
    requests = faults["injected"]["latency"] - before_requests
    per_user = requests / size
    return {"size": size, "job": job_id, "status": summary["status"], "seconds": elapsed, "users_per_s": size / elapsed,
            "requests": requests, "throttled": faults["injected"].get("throttled", 0),
            "bound_users_per_s": args.rate / per_user if per_user else float("inf"),
            "rss_before": rss_before, "rss_peak": peak}


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="teamsvoice-bench-") as tmp:
        served = Served(Path(tmp) / "data", {}).start()
        try:
            creds = served.credentials()
            rows, first_number = [], 23300000
            for size in args.sizes:  # each size gets its own tenant and its own block of numbers
                rows.append(await run_size(served, creds, size, first_number, args))
                first_number += size
        finally:
            served.stop()
    print(f"Fusion bulk update: {args.latency_ms} ms added latency, throttle {args.rate} req/s (burst {args.burst})")
    print(f"{'users':>6} {'status':>8} {'seconds':>8} {'users/s':>8} {'requests':>9} {'throttled':>9} "
          f"{'bound u/s':>9} {'of bound':>8} {'RSS MiB before/peak':>20}")
    for r in rows:
        print(f"{r['size']:>6} {r['status']:>8} {r['seconds']:>8.1f} {r['users_per_s']:>8.1f} {r['requests']:>9} "
              f"{r['throttled']:>9} {r['bound_users_per_s']:>9.1f} {r['users_per_s'] / r['bound_users_per_s']:>8.0%} "
              f"{r['rss_before']:>9.0f}/{r['rss_peak']:<9.0f}")


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--burst", type=int, default=100)
    asyncio.run(main(parser.parse_args()))
