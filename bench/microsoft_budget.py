"""Does teamsvoice spend Microsoft's budget? One run, figures side by side (prints figures; not a test).
See bench/README.md, section microsoft_budget.py.

    .venv/bin/python bench/microsoft_budget.py [--users 5000] [--tenants 20] [--tenant-users 250] [--naive-users 10]

Runs `teamsvoice serve` (API, job engine and the emulator as its child; embedded SQLite) with its default
settings, i.e. the budget scheduler at Microsoft's published limits, against the emulator with its Microsoft
limits ON (its default outside the test suite) and `{"profile": "microsoft"}` latencies. Then:

1. one tenant, N users: one Fusion bulk update (number + voice routing policy per user) timed from the PUT
   until the job is final, against the bound computed from the limits: the job's Teams service requests
   (Graph's Teams APIs and cmdlets that Microsoft admitted, from teamsvoice's budget metrics for that tenant)
   at 30 per second (and its directory writes at 3,000 per 2.5 minutes, whichever is longer). While it runs, a one-user
   change in the same tenant is submitted as its own job: its latency until final. Then `--naive-users`
   users one at a time (each its own one-user job, the next submitted when the previous ended), extrapolated
   linearly to N (the output says so);
2. T tenants x M users at once (T jobs submitted together): the aggregate Teams request rate against the
   app-wide bound (300 per second, or 30 x T when smaller) and each tenant's share of the requests;
3. server RSS before and at the peak of each phase: a first job of `--memory-users` (1,000), then N, then
   T x M users; and the CPU time spent (from /proc; `serve` runs the emulator in its own process only if
   it has a child process, else its share is not separable).
"""

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench.fusion_bulk import job_summary, rss_mib  # noqa: E402
from tests.e2e.test_serve import Served  # noqa: E402
from tests.support.fusion_bulk import BulkSetup, fusion_login, prepare_bulk  # noqa: E402

TEAMS_PER_TENANT, TEAMS_PER_APP = 30.0, 300.0  # Microsoft's published Teams service limits
_SAMPLE = re.compile(r'^teamsvoice_microsoft_budget_requests_total\{outcome="(\w+)",service_class="([\w-]+)",'
                     r'tenant="([^"]+)"\} ([0-9.e+]+)$')
WRITES_PER_SECOND = 3000 / 150  # directory writes per app per tenant


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


async def budget_requests(http: httpx.AsyncClient) -> dict[tuple[str, str, str], float]:
    """(service class, tenant, outcome) -> requests, from teamsvoice's /metrics."""
    counts: dict[tuple[str, str, str], float] = {}
    for line in (await http.get("/metrics")).text.splitlines():
        if match := _SAMPLE.match(line):
            counts[(match.group(2), match.group(3), match.group(1))] = float(match.group(4))
    return counts


def spent(before: dict, after: dict, service_class: str, tenant: str, outcome: str = "answered") -> float:
    key = (service_class, tenant.lower(), outcome)
    return after.get(key, 0.0) - before.get(key, 0.0)


def body(setup: BulkSetup, name: str, indexes: range) -> dict:
    return {"name": name, "data": [
        {"upn": setup.users[i]["userPrincipalName"], "displayName": setup.users[i]["displayName"],
         "number": f"+32{setup.first_number + i}", "vrp": "teamsvoice"} for i in indexes]}


async def submit(http: httpx.AsyncClient, setup: BulkSetup, payload: dict) -> str:
    accepted = await http.put(f"{setup.path}/msteams/users/bulk", headers={**setup.headers, "Prefer": "respond-async"},
                              json=payload)
    accepted.raise_for_status()
    return f"{setup.path}/msteams/users/bulk/{accepted.json()['id']}"


async def until_final(http: httpx.AsyncClient, setup: BulkSetup, job: str, served: Served, peak: list[float]) -> dict:
    refused = 0
    while True:
        try:
            summary = await job_summary(http, job, setup.headers)
        except ValueError:  # not the job's details: the session ended during a long run; sign in again
            refused += 1
            answer = await http.get(job, headers=setup.headers)
            if refused > 3:
                raise RuntimeError(f"{job}: {answer.status_code} {answer.text[:300]}") from None
            print(f"   (job details answered {answer.status_code} {answer.text[:120]!r}; signing in again)")
            reseller = next(login for login in served.credentials()["fusion"]["logins"] if login["level"] == "reseller")
            setup.headers.update(await fusion_login(http, reseller))
            continue
        peak[0] = max(peak[0], rss_mib(served.process.pid))  # type: ignore[union-attr]
        if summary["status"] not in ("queued", "running"):
            return summary
        await asyncio.sleep(0.25)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="teamsvoice-budget-") as tmp:
        served = Served(Path(tmp) / "data", {}).start()
        try:
            await run(served, args)
        finally:
            served.stop()
            if args.keep_log:  # the server's log and the job engine's database (workflow times)
                Path(args.keep_log).write_bytes((Path(tmp) / "serve.log").read_bytes())
                jobs = Path(tmp) / "data" / "teamsvoice-jobs.sqlite3"
                if jobs.exists():
                    Path(args.keep_log + ".jobs.sqlite3").write_bytes(jobs.read_bytes())


async def run(served: Served, args: argparse.Namespace) -> None:
    creds = served.credentials()
    microsoft = creds["microsoft"]
    server_pid = served.process.pid  # type: ignore[union-attr]
    emulator_pids = children(server_pid)  # `serve` runs the emulator on its own loop in-process: usually none
    async with httpx.AsyncClient(base_url=served.url, timeout=600) as http, \
            httpx.AsyncClient(base_url=microsoft["loginUrl"], verify=microsoft["caCertificate"], timeout=120) as emulator:
        extra = 1 + args.naive_users
        sizes = await prepare_bulk(http, creds, args.memory_users, first_number=23000000) if args.memory_users else None
        big = await prepare_bulk(http, creds, args.users + extra, first_number=24000000)
        fleet = [await prepare_bulk(http, creds, args.tenant_users, first_number=25000000 + t * 10000)
                 for t in range(args.tenants)]
        assert (await emulator.put("/_admin/faults", json={"profile": "microsoft", "limits": "microsoft"})).status_code == 200
        cpu_start = {pid: cpu_seconds(pid) for pid in [server_pid, *emulator_pids]}
        wall_start = time.perf_counter()

        # 0. memory at a smaller size first (the same job shape).
        rss_small = (rss_mib(server_pid), 0.0)
        if sizes is not None:
            peak = [0.0]
            await until_final(http, sizes, await submit(http, sizes, body(sizes, "budget-size", range(args.memory_users))),
                              served, peak)
            rss_small = (rss_small[0], peak[0])

        # 1. one tenant, N users; a one-user change while it runs; then the one-at-a-time sample.
        rss_before, peak = rss_mib(server_pid), [0.0]
        before = await budget_requests(http)
        started = time.perf_counter()
        job = await submit(http, big, body(big, "budget-big", range(args.users)))
        await asyncio.sleep(args.small_after)
        small_started = time.perf_counter()
        small_job = await submit(http, big, body(big, "budget-small", range(args.users, args.users + 1)))

        async def small_done() -> tuple[dict, float]:
            final = await until_final(http, big, small_job, served, [0.0])
            return final, time.perf_counter() - small_started

        small = asyncio.ensure_future(small_done())
        summary = await until_final(http, big, job, served, peak)
        elapsed = time.perf_counter() - started
        small_summary, small_latency = await small
        after = await budget_requests(http)
        teams = spent(before, after, "teams", big.tenant_id)
        writes = spent(before, after, "directory-write", big.tenant_id)
        throttled = spent(before, after, "teams", big.tenant_id, "throttled")
        bound = max(teams / TEAMS_PER_TENANT, writes / WRITES_PER_SECOND)
        naive_started = time.perf_counter()
        for i in range(args.users + 1, args.users + extra):
            await until_final(http, big, await submit(http, big, body(big, f"naive-{i}", range(i, i + 1))), served, [0.0])
        naive_per_user = (time.perf_counter() - naive_started) / args.naive_users
        rss_big = (rss_before, peak[0])
        print(f"Microsoft budget bench: emulator limits on, microsoft latency profile; {os.cpu_count()} cores")
        print(f"1. one tenant, {args.users} users (number + voice routing policy each), job {summary['status']}")
        print(f"   teamsvoice            {elapsed:8.1f} s  ({args.users / elapsed:.1f} users/s)")
        print(f"   bound from the limits {bound:8.1f} s  ({teams:.0f} Teams requests at {TEAMS_PER_TENANT:.0f}/s, "
              f"{writes:.0f} directory writes at {WRITES_PER_SECOND:.0f}/s)  -> {bound / elapsed:.0%} of the bound; "
              f"{throttled:.0f} Teams requests answered 429")
        print(f"   one at a time         {naive_per_user * args.users:8.1f} s  (extrapolated from {args.naive_users} users, "
              f"{naive_per_user:.2f} s each)  -> teamsvoice {naive_per_user * args.users / elapsed:.1f}x faster")
        print(f"   one-user change submitted {args.small_after:.0f} s into the job: final after {small_latency:.1f} s "
              f"({small_summary['status']}; a one-user job alone: {naive_per_user:.1f} s)")
        print(f"   server RSS MiB: {args.memory_users} users {rss_small[0]:.0f} -> peak {rss_small[1]:.0f}; "
              f"{args.users} users {rss_big[0]:.0f} -> peak {rss_big[1]:.0f}")

        # 2. T tenants x M users at once.
        rss_before_fleet, peak = rss_mib(server_pid), [0.0]
        before = await budget_requests(http)
        started = time.perf_counter()
        jobs = [await submit(http, setup, body(setup, f"fleet-{t}", range(args.tenant_users))) for t, setup in enumerate(fleet)]
        try:
            summaries = await asyncio.wait_for(asyncio.gather(
                *(until_final(http, setup, j, served, peak) for setup, j in zip(fleet, jobs))), args.phase_timeout)
        except asyncio.TimeoutError:
            raise SystemExit(f"2. the {args.tenants} jobs did not all end within {args.phase_timeout:.0f} s") from None
        fleet_elapsed = time.perf_counter() - started
        after = await budget_requests(http)
        shares = [spent(before, after, "teams", s.tenant_id) for s in fleet]
        fleet_throttled = sum(spent(before, after, "teams", s.tenant_id, "throttled") for s in fleet)
        faults = (await emulator.get("/_admin/faults")).json()
        if args.keep_log:
            Path(args.keep_log + ".metrics").write_text((await http.get("/metrics")).text)

        wall = time.perf_counter() - wall_start
        cpu = {pid: cpu_seconds(pid) - cpu_start[pid] for pid in cpu_start}
    emulator_cpu = sum(cpu[p] for p in emulator_pids)
    total = sum(cpu.values())

    print(f"2. {args.tenants} tenants x {args.tenant_users} users at once: {fleet_elapsed:.1f} s, "
          f"statuses {sorted({s['status'] for s in summaries})}, items in error "
          f"{sum(s.get('error_count', 0) or 0 for s in summaries)}")
    rate = sum(shares) / fleet_elapsed
    print(f"   Teams requests {sum(shares):.0f}: {rate:.1f}/s vs app-wide bound {TEAMS_PER_APP:.0f}/s "
          f"(per tenant {TEAMS_PER_TENANT:.0f}/s x {args.tenants} = {TEAMS_PER_TENANT * args.tenants:.0f}/s) "
          f"-> {rate / min(TEAMS_PER_APP, TEAMS_PER_TENANT * args.tenants):.0%}")
    mean = max(1.0, sum(shares) / len(shares))
    print(f"   tenant shares of the Teams requests: min {min(shares) / mean:.0%}, max {max(shares) / mean:.0%} of equal; "
          f"{fleet_throttled:.0f} answered 429")
    print(f"3. server RSS MiB: {args.tenants * args.tenant_users} users over {args.tenants} tenants "
          f"{rss_before_fleet:.0f} -> peak {peak[0]:.0f}")
    busy = total / (wall * (os.cpu_count() or 1))
    if emulator_pids:
        print(f"   CPU over {wall:.0f} s: teamsvoice {cpu[server_pid]:.0f} s, emulator {emulator_cpu:.0f} s "
              f"({emulator_cpu / total:.0%} of the CPU used; {busy:.0%} of the machine)")
    else:
        print(f"   CPU over {wall:.0f} s: `serve` (teamsvoice and the emulator in one process) {total:.0f} s, "
              f"{busy:.0%} of the machine; the emulator's own share is not separable here (bench/emulator_capacity.py)")
    print(f"   emulator: {faults['injected'].get('throttled', 0)} requests answered 429 (over all phases)")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--tenant-users", type=int, default=250)
    parser.add_argument("--naive-users", type=int, default=10)
    parser.add_argument("--memory-users", type=int, default=1000, help="a first job of this size, for RSS (0: none)")
    parser.add_argument("--phase-timeout", type=float, default=3600, help="longest wait for phase 2's jobs")
    parser.add_argument("--keep-log", help="copy the server's log here")
    parser.add_argument("--small-after", type=float, default=10.0, help="seconds into the big job")
    asyncio.run(main(parser.parse_args()))
