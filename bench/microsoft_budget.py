"""Does teamsvoice spend Microsoft's budget? One run, figures side by side (prints figures; not a test).
See bench/README.md, section microsoft_budget.py.

    .venv/bin/python bench/microsoft_budget.py [--users 5000] [--tenants 20] [--tenant-users 250] [--naive-users 10]

Runs `teamsvoice serve` (API, job engine and the emulator as its child; embedded SQLite) with its default
settings, i.e. the budget scheduler at Microsoft's published limits, against the emulator with its Microsoft
limits ON (its default outside the test suite) and `{"profile": "microsoft"}` latencies. Then:

1. one tenant, N users: one Fusion bulk update (number + voice routing policy + Teams Phone licence per user)
   timed from the PUT until the job is final, against the bound computed from the limits: the job's Teams service requests
   (Graph's Teams APIs and cmdlets that Microsoft admitted, from teamsvoice's budget metrics for that tenant)
   at 30 per second (and its directory writes at 3,000 per 2.5 minutes, whichever is longer). While it runs, one-user
   changes in the same tenant are submitted, each as its own job (`--small-samples`, the first `--small-after` s
   into the job, then every `--small-every` s): each one's latency until final. Then `--naive-users`
   users one at a time (each its own one-user job, the next submitted when the previous ended), extrapolated
   linearly to N (the output says so);
2. T tenants x M users at once (T jobs submitted together): the aggregate Teams request rate against the
   app-wide bound (300 per second, or 30 x T when smaller) and each tenant's share of the requests;
3. server RSS before and at the peak of each phase: a first job of `--memory-users` (1,000), then N, then
   T x M users; and the CPU time spent (from /proc; `serve` runs the emulator in its own process only if
   it has a child process, else its share is not separable).

With `--fleet W` it runs the production topology instead: its own PostgreSQL (seeded once by `serve`), then
`teamsvoice emulator`, one `teamsvoice api` and W `teamsvoice worker` processes (each worker's /metrics on
its own port: the budget counters are summed over them), so the emulator's CPU is its own process's and
RSS is printed per process, and phase 2 also prints how long its items ran and waited in the queue (the job
engine's records).
"""

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench.fusion_bulk import job_summary, rss_mib  # noqa: E402
from tests.e2e.test_fleet import Fleet  # noqa: E402
from tests.e2e.test_serve import Served  # noqa: E402
from tests.support.fusion_bulk import BulkSetup, fusion_login, prepare_bulk  # noqa: E402
from tests.support.postgres import PostgresServer, free_port  # noqa: E402

TEAMS_PER_TENANT, TEAMS_PER_APP = 30.0, 300.0  # Microsoft's published Teams service limits
_SAMPLE = re.compile(r'^teamsvoice_microsoft_budget_requests_total\{outcome="(\w+)",service_class="([\w-]+)",'
                     r'tenant="([^"]+)"\} ([0-9.e+]+)$')
_ENDED = re.compile(r'^teamsvoice_bulk_items_total\{status="(success|error|cancelled)"\} ([0-9.e+]+)$')
WRITES_PER_SECOND = 3000 / 150  # directory writes per app per tenant
TEAMS_PHONE = "MCOEV"  # the Teams Phone Standard licence (the emulator's tenants hold it for four users in five)


def _stat_seconds(pid: int, first: int) -> float:
    """Two clock-tick fields of /proc/<pid>/stat from `first` on (after the command name), summed, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    return _stat_seconds(pid, 11)  # utime, stime


def ended_children_cpu_seconds(pid: int) -> float:
    """CPU seconds of `pid`'s children that ended and were reaped (PostgreSQL's backends of closed connections)."""
    return _stat_seconds(pid, 13)  # cutime, cstime


def cpu_seconds_if_alive(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile (a backend whose connection closed)
        return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


@dataclass
class Target:
    """The teamsvoice under test: its API, its credentials, the processes that run its jobs (for RSS and
    CPU), the emulator's own processes, and where each job-running process serves /metrics."""

    url: str
    data_dir: Path
    servers: dict[str, int]  # name -> pid
    emulators: list[int]
    metrics: list[str] = field(default_factory=list)  # absolute /metrics URLs (empty: the API's own)
    database: Path | None = None  # the PostgreSQL data directory of the fleet (its processes' CPU is counted apart)
    database_url: str | None = None  # the fleet's database, where pg_stat_statements counts every statement

    def credentials(self) -> dict:
        return json.loads((self.data_dir / "demo-credentials.json").read_text())

    def rss(self) -> dict[str, float]:
        return {name: rss_mib(pid) for name, pid in self.servers.items()}

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each process: the servers, the emulator, and PostgreSQL (its postmaster, every
        backend alive now, and those that ended: a connection the pool closed took its backend's CPU with it, and a
        phase that saw the connections of the one before close counted less than nothing for them)."""
        used = {name: cpu_seconds(pid) for name, pid in self.servers.items()}
        if self.emulators:  # (`serve` runs the emulator in its own process: no child to count apart)
            used["emulator"] = sum(cpu_seconds(pid) for pid in self.emulators)
        if self.database is not None:
            postmaster = int((self.database / "postmaster.pid").read_text().split()[0])
            used["PostgreSQL"] = (sum(map(cpu_seconds_if_alive, [postmaster, *children(postmaster)]))
                                  + ended_children_cpu_seconds(postmaster))
        return used


# The fleet's PostgreSQL counts its statements (pg_stat_statements; BEGIN, COMMIT and SAVEPOINT too): a figure per
# user that does not drift with the machine's speed, as times and CPU seconds do.
COUNTING = ("shared_preload_libraries=pg_stat_statements", "pg_stat_statements.max=10000")
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def start_counting(url: str) -> None:
    """pg_stat_statements' view in the database at `url` (the server preloads the module: COUNTING)."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_stat_statements")


def statements_so_far(url: str) -> dict[str, tuple[float, float]]:
    """Statement text (as pg_stat_statements normalises it) -> (times run, milliseconds spent running it) so far,
    every database of the server."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT query, sum(calls), sum(total_exec_time) FROM pg_stat_statements GROUP BY query").fetchall()
    return {query: (float(calls), float(spent)) for query, calls, spent in rows}


def statements_line(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], items: int,
                    top: int) -> list[str]:
    """What the database ran per user between two counts: the job engine's statements (DBOS's schema), ours,
    the commits (of both: the text does not say whose), and the `top` most frequent statements and the `top` that
    took the most of the server's time (milliseconds per user: wall time inside the server, a statement waiting for a
    lock included)."""
    zero = (0.0, 0.0)
    ran = {query: (after[query][0] - before.get(query, zero)[0], after[query][1] - before.get(query, zero)[1])
           for query in after}
    ran = {query: cs for query, cs in ran.items() if cs[0] > 0 and "pg_stat_statements" not in query}
    calls = {query: cs[0] for query, cs in ran.items()}
    control = {q: c for q, c in calls.items() if q.split(" ", 1)[0].upper() in CONTROL}
    engine = sum(c for q, c in calls.items() if q not in control and "dbos." in q)
    ours = sum(c for q, c in calls.items() if q not in control) - engine
    commits = sum(c for q, c in control.items() if q.upper().startswith("COMMIT"))
    spent = {side: sum(ms for q, (_, ms) in ran.items() if (q in control) == (side == "control")
                       and ("dbos." in q) == (side == "engine")) for side in ("ours", "engine", "control")}
    lines = [f"   database per user: teamsvoice {ours / items:.1f} statements, the job engine (DBOS) {engine / items:.1f}, "
             f"commits {commits / items:.1f}, other transaction control {(sum(control.values()) - commits) / items:.1f}; "
             f"time inside the server {spent['ours'] / items:.2f} ms (ours), {spent['engine'] / items:.2f} ms (DBOS), "
             f"{spent['control'] / items:.2f} ms (transaction control)"]
    if top:
        lines.append("     per user: runs, ms; the most frequent")
        for query, (runs, ms) in sorted(ran.items(), key=lambda qc: -qc[1][0])[:top]:
            lines.append(f"     {runs / items:5.2f} {ms / items:6.3f}  {' '.join(query.split())[:140]}")
        lines.append("     the most time")
        for query, (runs, ms) in sorted(ran.items(), key=lambda qc: -qc[1][1])[:top]:
            lines.append(f"     {runs / items:5.2f} {ms / items:6.3f}  {' '.join(query.split())[:140]}")
    return lines


async def read_metrics(http: httpx.AsyncClient, target: Target) -> tuple[dict[tuple[str, str, str], float], float]:
    """From teamsvoice's /metrics (summed over the workers, each page read once): (service class, tenant, outcome) ->
    requests of the budget, and the bulk items ended so far."""
    counts: dict[tuple[str, str, str], float] = {}
    ended = 0.0
    for url in target.metrics or ["/metrics"]:
        for line in (await http.get(url)).text.splitlines():
            if match := _SAMPLE.match(line):
                key = (match.group(2), match.group(3), match.group(1))
                counts[key] = counts.get(key, 0.0) + float(match.group(4))
            elif match := _ENDED.match(line):
                ended += float(match.group(2))
    return counts, ended


async def budget_requests(http: httpx.AsyncClient, target: Target) -> dict[tuple[str, str, str], float]:
    """(service class, tenant, outcome) -> requests, from teamsvoice's /metrics (summed over the workers)."""
    return (await read_metrics(http, target))[0]


def teams_answered(counts: dict[tuple[str, str, str], float]) -> float:
    return sum(n for (service, _, outcome), n in counts.items() if service == "teams" and outcome == "answered")


def spent(before: dict, after: dict, service_class: str, tenant: str, outcome: str = "answered") -> float:
    key = (service_class, tenant.lower(), outcome)
    return after.get(key, 0.0) - before.get(key, 0.0)


def body(setup: BulkSetup, name: str, indexes: range) -> dict:
    return {"name": name, "data": [
        {"upn": setup.users[i]["userPrincipalName"], "displayName": setup.users[i]["displayName"],
         "number": f"+32{setup.first_number + i}", "vrp": "teamsvoice", "licenses": [TEAMS_PHONE]} for i in indexes]}


async def sign_in_again(http: httpx.AsyncClient, setup: BulkSetup, served: "Target") -> None:
    """A Fusion session ends (its access token expires) during a long run: a new one for this setup."""
    reseller = next(login for login in served.credentials()["fusion"]["logins"] if login["level"] == "reseller")
    setup.headers.update(await fusion_login(http, reseller))


async def submit(http: httpx.AsyncClient, setup: BulkSetup, payload: dict, served: "Target") -> str:
    for attempt in range(2):
        accepted = await http.put(f"{setup.path}/msteams/users/bulk", headers={**setup.headers, "Prefer": "respond-async"},
                                  json=payload)
        if accepted.status_code == 401 and attempt == 0:
            await sign_in_again(http, setup, served)
            continue
        accepted.raise_for_status()
        break
    return f"{setup.path}/msteams/users/bulk/{accepted.json()['id']}"


def merge_peak(peak: dict[str, float], now: dict[str, float]) -> None:
    for name, mib in now.items():
        peak[name] = max(peak.get(name, 0.0), mib)


def mib(values: dict[str, float]) -> str:
    return "/".join(f"{v:.0f}" for v in values.values()) or "-"


async def until_ended(http: httpx.AsyncClient, target: Target, ended_before: float, count: int, peak: dict[str, float],
                      seen: list[tuple[float, float]] | None = None) -> None:
    """Until `count` more bulk items have ended: the workers' counters read every 0.5 s (a read of each job's
    details costs the api a query and a render per job: twenty jobs read every 2 s took a tenth of the machine);
    `seen` gets (when, Teams requests answered so far) at each read."""
    while True:
        counts, ended = await read_metrics(http, target)
        if seen is not None:
            seen.append((time.perf_counter(), teams_answered(counts)))
        if ended - ended_before >= count:
            return
        merge_peak(peak, target.rss())
        await asyncio.sleep(0.5)


def per_window(seen: list[tuple[float, float]], started: float, width: float) -> list[int]:
    """The Teams requests answered in each `width` seconds from `started`, from the counters' reads (each read's
    growth counted in the window it was read in)."""
    counts: list[float] = []
    previous = seen[0][1] if seen else 0.0
    for at, teams in seen:
        slot = int((at - started) // width)
        counts += [0.0] * (slot + 1 - len(counts))
        counts[slot] += teams - previous
        previous = teams
    return [round(c) for c in counts]


async def until_final(http: httpx.AsyncClient, setup: BulkSetup, job: str, served: Target, peak: dict[str, float],
                      every: float = 0.25) -> dict:
    """Reads the job's summary every `every` seconds until it is final (each read costs the server a query and
    a render: the many jobs of phase 2 are read less often, so that the bench does not load what it measures)."""
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
            await sign_in_again(http, setup, served)
            continue
        merge_peak(peak, served.rss())
        if summary["status"] not in ("queued", "running"):
            return summary
        await asyncio.sleep(every)


async def main(args: argparse.Namespace) -> None:
    if args.fleet:
        await main_fleet(args)
        return
    with tempfile.TemporaryDirectory(prefix="teamsvoice-budget-") as tmp:
        served = Served(Path(tmp) / "data", {}).start()
        pid = served.process.pid  # type: ignore[union-attr]
        try:
            # `serve` runs the emulator on its own loop in-process: usually no child
            await run(Target(served.url, served.data_dir, {"serve": pid}, children(pid)), args)
        finally:
            served.stop()
            if args.keep_log:  # the server's log and the job engine's database (workflow times)
                Path(args.keep_log).write_bytes((Path(tmp) / "serve.log").read_bytes())
                jobs = Path(tmp) / "data" / "teamsvoice-jobs.sqlite3"
                if jobs.exists():
                    Path(args.keep_log + ".jobs.sqlite3").write_bytes(jobs.read_bytes())


def wait_ready(fleet: Fleet, url: str, **kwargs: object) -> None:
    """Fleet.wait_ready, patient on a loaded machine: up to five minutes while every process is alive."""
    for attempt in range(5):
        try:
            return fleet.wait_ready(url, **kwargs)
        except AssertionError:
            if attempt == 4 or any(p.poll() is not None for p in fleet.processes.values()):
                raise


async def main_fleet(args: argparse.Namespace) -> None:
    """PostgreSQL, `teamsvoice emulator`, one `api` and `--fleet` `worker` processes, default settings."""
    postgres = PostgresServer(COUNTING)
    postgres.start()
    try:
        with tempfile.TemporaryDirectory(prefix="teamsvoice-budget-fleet-") as tmp:
            url = postgres.create_database("budget_bench")
            start_counting(url)
            seeded = Served(Path(tmp) / "data", {"TEAMSVOICE_DATABASE_URL": url}).start()
            seeded.stop(signal.SIGINT)
            fleet = Fleet(Path(tmp), url, seeded.emulator_port, seeded.port)
            for setting in ("TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY", "TEAMSVOICE_JOB_EXECUTOR_TIMEOUT_SECONDS"):
                fleet.env.pop(setting)  # the test's small values: the bench runs the defaults
            # Settings given to the bench (e.g. TEAMSVOICE_DATABASE_POOL_SIZE=20) reach the api and the workers.
            fleet.env |= {k: v for k, v in os.environ.items() if k.startswith("TEAMSVOICE_") and k not in fleet.env}
            fleet.env["M365_EMULATOR_LIMITS"] = "microsoft"
            try:
                emulator = fleet.start("emulator", "emulator", "--port", str(fleet.emulator_port))
                wait_ready(fleet, f"{fleet.emulator_url}/_admin/faults", verify=fleet.ca)
                servers = {"api": fleet.start("api", "api", "--port", str(fleet.api_port)).pid}
                metrics = []
                for index in range(args.fleet):
                    port = free_port()
                    servers[f"worker-{index + 1}"] = fleet.start(f"worker-{index + 1}", "worker", "--metrics-port", str(port)).pid
                    metrics.append(f"http://127.0.0.1:{port}/metrics")
                wait_ready(fleet, f"{fleet.api_url}/health")
                for url_ in metrics:
                    wait_ready(fleet, url_)
                await run(Target(fleet.api_url, fleet.data_dir, servers, [emulator.pid], metrics, postgres.root / "data", url), args)
                print_pool_waits(fleet.root)
            finally:
                fleet.stop()
                if args.keep_log:
                    Path(args.keep_log).write_text(fleet.logs())
    finally:
        postgres.stop()


TRANSIENT = "the database failed transiently"


def print_pool_waits(root: Path) -> None:
    """The workers' retried steps, from their logs: each is a step whose database work failed transiently
    (mostly `TimeoutError`, no pooled connection within the pool timeout) and ran again. Unlike the times,
    this figure does not grow with the machine's load from other processes as directly."""
    counts = {}
    for log in sorted(root.glob("worker-*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines() if TRANSIENT in line]
        counts[log.stem] = (len(lines), sum("TimeoutError" in line for line in lines))
    print("   steps run again after a transient database failure (pool timeouts among them): "
          + ", ".join(f"{name} {total} ({timeouts})" for name, (total, timeouts) in counts.items()))


async def one_user_changes(http: httpx.AsyncClient, setup: BulkSetup, served: "Target",
                           args: argparse.Namespace, timelines: list[str]) -> list[tuple[float, float, str]]:
    """`--small-samples` one-user changes in the big job's tenant, each its own job, the first `--small-after`
    seconds into the big job and then every `--small-every` seconds: (submitted at, latency until final, status)
    of each. Submitted while the big job runs (the script's users after the big job's are theirs)."""
    started = time.perf_counter()

    async def one(index: int) -> tuple[float, float, str]:
        await asyncio.sleep(args.small_after + index * args.small_every)
        submitted, submitted_at = time.perf_counter(), time.time()
        user = args.users + index
        job = await submit(http, setup, body(setup, f"budget-small-{index}", range(user, user + 1)), served)
        final = await until_final(http, setup, job, served, {})
        seen = time.time()
        if served.database_url is not None:
            timelines.append(await asyncio.to_thread(small_job_timeline, served.database_url, f"budget-small-{index}",
                                                     submitted_at, seen))
        return submitted - started, time.perf_counter() - submitted, final["status"]

    return list(await asyncio.gather(*(one(index) for index in range(args.small_samples))))


def fleet_item_times(url: str, title_prefix: str, submitted_ms: float) -> str:
    """How long phase 2's items ran and waited in the queue, from the job engine's records (Little's law: items in
    flight = items per second x the time each runs, so with the workers' items capped an item's time is the rate),
    how many started and ended in each 5 s from the first submit (`submitted_ms`, the wall clock's epoch ms), and when
    each tenant's last item ended (its queue partition's: the tenants that end early leave the tail to the others)."""
    with psycopg.connect(url, autocommit=True) as connection:
        keys = [f"fusion-bulk-{key}-item-%" for (key,) in connection.execute(
            "SELECT job_key FROM fusion_bulk_jobs WHERE title LIKE %s", (f"{title_prefix}%",))]
        records = connection.execute("SELECT created_at, started_at_epoch_ms, completed_at, queue_partition_key, executor_id "
                                     "FROM dbos.workflow_status WHERE workflow_uuid LIKE ANY(%s)", (keys,)).fetchall()
    rows = [(enqueued, began, ended) for enqueued, began, ended, _, _ in records]
    last_end: dict[str, int] = {}
    first_began: dict[str, int] = {}
    ran_by: dict[str, Counter[str]] = {}
    for _, began, ended, tenant, executor in records:
        if ended:
            last_end[tenant] = max(ended, last_end.get(tenant, ended))
        if began:
            first_began[tenant] = min(began, first_began.get(tenant, began))
        ran_by.setdefault(tenant, Counter())[executor] += 1
    tenant_ends = sorted((ended - submitted_ms) / 1000 for ended in last_end.values())
    by_worker: dict[str, list[float]] = {}  # each tenant's last end, under the worker that ran most of its items
    for tenant, ended in last_end.items():
        by_worker.setdefault(ran_by[tenant].most_common(1)[0][0], []).append((ended - submitted_ms) / 1000)
    worker_ends = "; ".join(f"{len(ends)} tenants ended {min(ends):.1f}-{max(ends):.1f} s (the worker ran "
                            f"{sum(counts[worker] for counts in ran_by.values()) / len(records):.0%} of the items)"
                            for worker, ends in sorted(by_worker.items()))
    tenant_starts = sorted((began - submitted_ms) / 1000 for began in first_began.values())
    last_started = (first_began[max(last_end, key=lambda tenant: last_end[tenant])] - submitted_ms) / 1000
    ran = sorted((ended - began) / 1000 for _, began, ended in rows if began and ended)
    waited = sorted((began - enqueued) / 1000 for enqueued, began, _ in rows if enqueued and began)
    if not ran or not waited:
        return "   items: no record of their runs"
    def at(values: list[float], share: float) -> float:
        return values[min(len(values) - 1, int(len(values) * share))]

    def per_5_s(times: list[int]) -> str:  # the ramp-up, the steady part and the tail
        counts = [0] * (1 + max(int((t - submitted_ms) // 5000) for t in times))
        for t in times:
            counts[max(0, int((t - submitted_ms) // 5000))] += 1
        return " ".join(str(n) for n in counts)

    enqueued = [e for e, _, _ in rows if e]
    began = [b for _, b, _ in rows if b]
    return (f"   items (the job engine's records, {len(ran)}): each ran {at(ran, 0.5):.2f} s at the median, "
            f"{at(ran, 0.9):.2f} s at the 90th percentile; waited in the queue {at(waited, 0.5):.1f} s at the median; "
            f"the first enqueued {(min(enqueued) - submitted_ms) / 1000:.2f} s and started {(min(began) - submitted_ms) / 1000:.2f} s "
            f"after the first submit\n"
            f"   items started per 5 s from the first submit: {per_5_s(began)}\n"
            f"   items ended per 5 s from the first submit: {per_5_s([d for _, _, d in rows if d])}\n"
            f"   each tenant's first item started (s after the first submit): first {tenant_starts[0]:.1f}, median "
            f"{at(tenant_starts, 0.5):.1f}, last {tenant_starts[-1]:.1f}\n"
            f"   each tenant's last item ended (s after the first submit): first {tenant_ends[0]:.1f}, median "
            f"{at(tenant_ends, 0.5):.1f}, last {tenant_ends[-1]:.1f} (its first item started {last_started:.1f}); by the "
            f"worker that ran most of their items: "
            f"{worker_ends}")


def small_job_timeline(url: str, title: str, submitted: float, seen: float) -> str:
    """Where a one-user job's time went, from the job engine's records (seconds since the bench's submit): its job
    workflow enqueued, started, ended; its item's workflow enqueued, started, ended; the bench saw it final."""
    with psycopg.connect(url, autocommit=True) as connection:
        key = connection.execute("SELECT job_key FROM fusion_bulk_jobs WHERE title = %s", (title,)).fetchone()[0]
        rows = connection.execute(
            "SELECT workflow_uuid, created_at, started_at_epoch_ms, completed_at, updated_at FROM dbos.workflow_status "
            "WHERE workflow_uuid LIKE %s ORDER BY created_at", (f"fusion-bulk-{key}%",)).fetchall()
    def at(ms: int | None) -> str:
        return "-" if ms is None else f"{ms / 1000 - submitted:.2f}"
    parts = [f"{'item' if '-item-' in uuid else 'job'} {at(created)}/{at(began)}/{at(ended or updated)}"
             for uuid, created, began, ended, updated in rows]
    return f"{title}: enqueued/started/ended s after submit: " + ", ".join(parts) + f"; seen final {seen - submitted:.2f}"


async def run(served: Target, args: argparse.Namespace) -> None:
    creds = served.credentials()
    microsoft = creds["microsoft"]
    emulator_pids = served.emulators
    async with httpx.AsyncClient(base_url=served.url, timeout=600) as http, \
            httpx.AsyncClient(base_url=microsoft["loginUrl"], verify=microsoft["caCertificate"], timeout=120) as emulator:
        extra = args.small_samples + args.naive_users
        sizes = await prepare_bulk(http, creds, args.memory_users, first_number=23000000) if args.memory_users else None
        big = await prepare_bulk(http, creds, args.users + extra, first_number=24000000)
        fleet = [await prepare_bulk(http, creds, args.tenant_users, first_number=25000000 + t * 10000)
                 for t in range(args.tenants)]
        assert (await emulator.put("/_admin/faults", json={"profile": "microsoft", "limits": "microsoft"})).status_code == 200
        cpu_start = {pid: cpu_seconds(pid) for pid in [*served.servers.values(), *emulator_pids]}
        load_start = f"{os.getloadavg()[0]:.0f}"
        wall_start = time.perf_counter()

        # 0. memory at a smaller size first (the same job shape).
        rss_small: tuple[dict[str, float], dict[str, float]] = (served.rss(), {})
        if sizes is not None:
            sized = await submit(http, sizes, body(sizes, "budget-size", range(args.memory_users)), served)
            await until_final(http, sizes, sized, served, rss_small[1])

        # 1. one tenant, N users; a one-user change while it runs; then the one-at-a-time sample.
        rss_before, peak = served.rss(), {}
        before = await budget_requests(http, served)
        started = time.perf_counter()
        job = await submit(http, big, body(big, "budget-big", range(args.users)), served)
        timelines: list[str] = []  # (with --fleet: where each one-user change's time went)
        small_jobs = asyncio.ensure_future(one_user_changes(http, big, served, args, timelines))
        summary = await until_final(http, big, job, served, peak)
        elapsed = time.perf_counter() - started
        smalls = await small_jobs
        after = await budget_requests(http, served)
        teams = spent(before, after, "teams", big.tenant_id)
        writes = spent(before, after, "directory-write", big.tenant_id)
        throttled = spent(before, after, "teams", big.tenant_id, "throttled")
        bound = max(teams / TEAMS_PER_TENANT, writes / WRITES_PER_SECOND)
        naive_started = time.perf_counter()
        for i in range(args.users + args.small_samples, args.users + extra):
            naive = await submit(http, big, body(big, f"naive-{i}", range(i, i + 1)), served)
            await until_final(http, big, naive, served, {})
        naive_per_user = (time.perf_counter() - naive_started) / args.naive_users
        rss_big = (rss_before, peak)
        topology = (f"PostgreSQL, emulator, api and {args.fleet} workers ({', '.join(served.servers)})" if args.fleet else
                    "`serve` on SQLite")
        print(f"Microsoft budget bench: emulator limits on, microsoft latency profile; {os.cpu_count()} cores; {topology}; "
              f"load average at the start and now: {load_start} / {os.getloadavg()[0]:.0f}")
        print(f"1. one tenant, {args.users} users (number + voice routing policy + Teams Phone licence each), job "
              f"{summary['status']}")
        print(f"   teamsvoice            {elapsed:8.1f} s  ({args.users / elapsed:.1f} users/s)")
        print(f"   bound from the limits {bound:8.1f} s  ({teams:.0f} Teams requests at {TEAMS_PER_TENANT:.0f}/s, "
              f"{writes:.0f} directory writes at {WRITES_PER_SECOND:.0f}/s)  -> {bound / elapsed:.0%} of the bound; "
              f"{throttled:.0f} Teams requests answered 429")
        print(f"   one at a time         {naive_per_user * args.users:8.1f} s  (extrapolated from {args.naive_users} users, "
              f"{naive_per_user:.2f} s each)  -> teamsvoice {naive_per_user * args.users / elapsed:.1f}x faster")
        latencies = ", ".join(f"{latency:.1f} s at {at:.0f} s" + ("" if status == "success" else f" ({status})")
                              for at, latency, status in smalls)
        if smalls:
            print(f"   one-user changes during the job (final after, submitted at): {latencies}; "
                  f"worst {max(latency for _, latency, _ in smalls):.1f} s (a one-user job alone: {naive_per_user:.1f} s)")
        for line in sorted(timelines):
            print(f"     {line}")
        print(f"   server RSS MiB ({'/'.join(served.servers)}): {args.memory_users} users {mib(rss_small[0])} -> peak "
              f"{mib(rss_small[1])}; {args.users} users {mib(rss_big[0])} -> peak {mib(rss_big[1])}")

        # 2. T tenants x M users at once.
        rss_before_fleet, peak = served.rss(), {}
        before, ended_before = await read_metrics(http, served)
        phase_cpu = served.cpu()
        statements_before = statements_so_far(served.database_url) if served.database_url else None
        started, submitted_ms = time.perf_counter(), time.time() * 1000
        teams_seen = [(started, teams_answered(before))]
        jobs = [await submit(http, setup, body(setup, f"fleet-{t}", range(args.tenant_users)), served)
                for t, setup in enumerate(fleet)]
        all_submitted = time.perf_counter() - started
        try:
            await asyncio.wait_for(until_ended(http, served, ended_before, args.tenants * args.tenant_users, peak, teams_seen),
                                   args.phase_timeout)
            summaries = await asyncio.wait_for(asyncio.gather(  # each job once (then every 2 s if one is not final)
                *(until_final(http, setup, j, served, peak, every=2.0) for setup, j in zip(fleet, jobs))), args.phase_timeout)
        except asyncio.TimeoutError:
            raise SystemExit(f"2. the {args.tenants} jobs did not all end within {args.phase_timeout:.0f} s") from None
        fleet_elapsed = time.perf_counter() - started
        phase_cpu = {name: used - phase_cpu[name] for name, used in served.cpu().items()}
        statements_after = statements_so_far(served.database_url) if served.database_url else None
        item_times = await asyncio.to_thread(fleet_item_times, served.database_url, "fleet-", submitted_ms) if served.database_url else None
        after = await budget_requests(http, served)
        shares = [spent(before, after, "teams", s.tenant_id) for s in fleet]
        fleet_throttled = sum(spent(before, after, "teams", s.tenant_id, "throttled") for s in fleet)
        directory_reads = sum(spent(before, after, "directory", s.tenant_id) for s in fleet)
        directory_writes = sum(spent(before, after, "directory-write", s.tenant_id) for s in fleet)
        faults = (await emulator.get("/_admin/faults")).json()
        if args.keep_log:
            Path(args.keep_log + ".metrics").write_text((await http.get("/metrics")).text)

        wall = time.perf_counter() - wall_start
        cpu = {pid: cpu_seconds(pid) - cpu_start[pid] for pid in cpu_start}
    emulator_cpu = sum(cpu[p] for p in emulator_pids)
    total = sum(cpu.values())

    print(f"2. {args.tenants} tenants x {args.tenant_users} users at once (the jobs submitted one after another in "
          f"{all_submitted:.1f} s): {fleet_elapsed:.1f} s, "
          f"statuses {sorted({s['status'] for s in summaries})}, items in error "
          f"{sum(s.get('error_count', 0) or 0 for s in summaries)}")
    rate = sum(shares) / fleet_elapsed
    print(f"   Teams requests {sum(shares):.0f}: {rate:.1f}/s vs app-wide bound {TEAMS_PER_APP:.0f}/s "
          f"(per tenant {TEAMS_PER_TENANT:.0f}/s x {args.tenants} = {TEAMS_PER_TENANT * args.tenants:.0f}/s) "
          f"-> {rate / min(TEAMS_PER_APP, TEAMS_PER_TENANT * args.tenants):.0%}")
    items = args.tenants * args.tenant_users
    print(f"   directory requests: {directory_reads:.0f} reads, {directory_writes:.0f} writes "
          f"({directory_reads / items:.2f} and {directory_writes / items:.2f} per user)")
    print(f"   CPU during it: {', '.join(f'{name} {used:.0f} s' for name, used in phase_cpu.items())} "
          f"({sum(phase_cpu.values()) / (fleet_elapsed * (os.cpu_count() or 1)):.0%} of the machine); per user "
          f"{', '.join(f'{name} {1000 * used / items:.0f} ms' for name, used in phase_cpu.items())}")
    if statements_before is not None and statements_after is not None:
        print("\n".join(statements_line(statements_before, statements_after, items, args.statements)))
    if item_times is not None:
        print(item_times)
    per_second = per_window(teams_seen, started, 1.0)
    print(f"   Teams requests answered per 5 s from the first submit: {' '.join(str(n) for n in per_window(teams_seen, started, 5.0))}"
          f" (the whole bound: {min(TEAMS_PER_APP, TEAMS_PER_TENANT * args.tenants) * 5:.0f}); in each of the first 10 s: "
          f"{' '.join(str(n) for n in per_second[:10])}; of the last 10 s: {' '.join(str(n) for n in per_second[-10:])}")
    mean = max(1.0, sum(shares) / len(shares))
    print(f"   tenant shares of the Teams requests: min {min(shares) / mean:.0%}, max {max(shares) / mean:.0%} of equal; "
          f"{fleet_throttled:.0f} answered 429")
    print(f"3. server RSS MiB ({'/'.join(served.servers)}): {args.tenants * args.tenant_users} users over {args.tenants} "
          f"tenants {mib(rss_before_fleet)} -> peak {mib(peak)}")
    busy = total / (wall * (os.cpu_count() or 1))
    if emulator_pids:
        ours = " + ".join(f"{name} {cpu[pid]:.0f} s" for name, pid in served.servers.items())
        print(f"   CPU over {wall:.0f} s: teamsvoice {ours}, emulator {emulator_cpu:.0f} s "
              f"({emulator_cpu / total:.0%} of the CPU used; {busy:.0%} of the machine)")
    else:
        print(f"   CPU over {wall:.0f} s: `serve` (teamsvoice and the emulator in one process) {total:.0f} s, "
              f"{busy:.0%} of the machine; the emulator's own share is not separable here (bench/emulator_capacity.py)")
    print(f"   emulator: {faults['injected'].get('throttled', 0)} requests answered 429 (over all phases)")


if __name__ == "__main__":
    from harness import end_children_on_exit  # bench/harness.py: what this script starts ends with it

    end_children_on_exit()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--tenant-users", type=int, default=250)
    parser.add_argument("--naive-users", type=int, default=10)
    parser.add_argument("--memory-users", type=int, default=1000, help="a first job of this size, for RSS (0: none)")
    parser.add_argument("--phase-timeout", type=float, default=3600, help="longest wait for phase 2's jobs")
    parser.add_argument("--keep-log", help="copy the server's log here")
    parser.add_argument("--small-after", type=float, default=10.0, help="seconds into the big job of the first one-user change")
    parser.add_argument("--small-samples", type=int, default=5, help="one-user changes during the big job")
    parser.add_argument("--small-every", type=float, default=60.0, help="seconds between two one-user changes")
    parser.add_argument("--statements", type=int, default=0, metavar="N",
                        help="with --fleet: the N statements phase 2 ran most often, per user")
    parser.add_argument("--fleet", type=int, default=0, metavar="W",
                        help="PostgreSQL, `teamsvoice emulator`, one `api` and W `worker` processes instead of `serve`")
    asyncio.run(main(parser.parse_args()))
