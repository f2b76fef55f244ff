"""The Microsoft request budget: every request to Microsoft waits here for a slot and for tokens.

Microsoft throttles per app per tenant and per app across all tenants (Graph throttling documentation):
Teams service requests (Graph's Teams APIs and Teams PowerShell) 30 per second per tenant and 300 per
second across tenants; directory requests by resource units (3,500 per 10 s per tenant for tenants under
50 users: the smallest tier, the safe default) and directory writes 3,000 per 2.5 minutes per tenant. A
request draws on every budget of its service class (`classify`): a Teams request on its tenant's Teams
bucket and the app-wide one, a directory read on the tenant's resource units, a write also on its writes.

**Token buckets shared across processes.** One row per bucket (`microsoft_budget_buckets`: tokens and the
time they were counted) in the application database. A *round* of the scheduler takes the tokens for
the requests it is about to send in ONE short transaction over all the buckets involved: it creates the
rows that do not exist yet (on SQLite always, a write first, so SQLite takes its single writer lock before
reading and two processes never interleave; on PostgreSQL only for keys the process has not seen), reads
them (`FOR UPDATE` on PostgreSQL, in key order), refills them for the time elapsed, allocates (`allocate`)
and writes back those that changed in one UPDATE: two or three statements per round. Rounds run at most every `TICK_SECONDS` per
process, so the database sees a few dozen tiny transactions per second per process however many
requests are waiting, instead of one per request. Tokens are taken only for requests that are granted
in that round, never leased ahead: unused leased tokens would either be lost or let a process burst past
the bucket, and the round already amortises the round trip. The time is the processes' wall clock
(`Clock.now`); workers of one provider are assumed NTP-synchronised (a clock behind the row's is treated
as no time elapsed). The table comes with migration 0010; a store on a database that `teamsvoice` did not
migrate (a connector used on its own) creates it.

**Concurrency that adapts to latency.** Per lane (tenant x service class) and per process, the requests
in flight are capped at `rate x (observed latency + a tick) x 1.25` (Little's law: enough to spend the rate,
not more), with an AIMD window under it: a 429 halves the window (once per round trip: the 429s of
requests already on the wire do not cut it again), each answered request adds 1/window (one slot per
round trip). `max_in_flight` (TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY) is a hard cap per lane.

**Fair shares, interactive first, no barriers.** Inside a lane each job (the `current_job` context
variable, set by the job runtime around an item; requests outside jobs share one queue) has its own queue,
and the lane serves next the job with the fewest requests in flight (taken for the round included; then the
job whose next request stands for the fewest requests: not a bulk job's `$batch` of 20 that waits for its tokens;
ties round robin). Jobs that keep the lane busy end up with equal slots, so equal shares of the rate; a job with
nothing on the wire (a one-user change, an interactive request) goes before every bulk job of the tenant,
however many there are, so its requests wait for tokens, never behind other jobs' queues. The lanes are offered tokens
in the order of their virtual times (start-time fair queueing, `_candidates`): each request granted moves its lane's on
by the requests it stands for over the lane's weight, so tenants drawing on the app-wide bucket get shares in
proportion to their weights, equal by default; a lane that had nothing waiting starts level with the others, with no
credit for the time it was idle. The job runtime weighs each tenant by the bulk work it has left (`weigh`,
`jobs/shares.weights`: its items over the mean, from 1 to 2), so that a fleet change's tenants end together. A request
is granted as soon as its lane has a free slot and its buckets have tokens: there is no batch to wait for. These
shares hold inside one process; between processes the shared buckets are first come, first served (the job queue
spreads every tenant's items over the workers, so each sees a similar mix). Windows and latencies are per process: N
workers may keep N windows in flight to one tenant, but never spend more than its one shared bucket.

**On SQLite** (the embedded `serve`: one process; `api` and `worker` refuse SQLite) the buckets are the
process's own (`process_buckets()`, the same allocation in memory, shared by every connector of the
process): SQLite's single writer is left to the work itself, which under a thousand running items
already waits for it (measured: `database is locked` after the 15 s busy timeout). Another process on the
same SQLite file (a CLI command calling Microsoft while `serve` runs) spends its own buckets.
"""

import asyncio
import contextvars
import heapq
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Engine, Float, String, any_, bindparam, case, column, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from prometheus_client import Counter

from teamsvoice.core.db import Base, create_blocking_engine
from teamsvoice.core.metrics import REGISTRY

TEAMS, DIRECTORY, DIRECTORY_WRITE = "teams", "directory", "directory-write"
TICK_SECONDS = 0.05  # the shortest time between two rounds of one process (one database transaction each)
LATENCY_SLACK = 1.25  # in flight = rate x latency x this: latency varies around its mean
EWMA_WEIGHT = 0.1  # weight of the newest latency in the running mean
INITIAL_LATENCY = 1.0  # seconds, until a lane has measured its own

log = logging.getLogger("teamsvoice.microsoft.budget")
BUDGET_REQUESTS = Counter(
    "teamsvoice_microsoft_budget_requests_total",
    "Microsoft requests granted by the budget scheduler, by service class (teams, directory, directory-write), tenant "
    "and outcome (answered; throttled: Microsoft answered 429, to the call or to a request inside a $batch; unanswered: no "
    "answer or never sent); a $batch counts the requests inside it, as Microsoft's limits do",
    ["service_class", "tenant", "outcome"], registry=REGISTRY,
)
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("teamsvoice_microsoft_job", default=None)


@contextmanager
def job_scope(job: str | None) -> Iterator[None]:
    """Requests made inside belong to `job` for the fair shares between jobs of one tenant."""
    token = current_job.set(job)
    try:
        yield
    finally:
        current_job.reset(token)


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a time base every process shares (the wall clock)."""

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- budgets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    key: str
    rate: float  # tokens per second
    capacity: float


@dataclass(frozen=True)
class Limits:
    """Microsoft's published limits (per app). `share` is the part of each that we spend (less than all when other
    tools call Microsoft with the same app registration). `margin` is the seconds of each budget's rate kept out of its
    burst, which absorbs the jitter between a request's grant and when Microsoft counts it: a request reaches Microsoft
    some time after its grant (the network, Microsoft's front end, the workers' clocks), so requests granted at an even
    pace may arrive bunched. If each arrives 0 to J seconds after its grant, the arrivals in any window of T seconds
    were granted in T + J seconds: at most rate x (T + J) + our capacity, within Microsoft's rate x T + its capacity
    whenever our capacity is Microsoft's less rate x J. So the bunching is kept under Microsoft's count by a smaller
    burst, and the full rate can be spent (a lower rate would only help over windows of many seconds)."""

    teams_per_tenant: float = 30.0  # per second
    teams_per_app: float = 300.0  # per second, across tenants
    directory_units: float = 3500.0  # resource units per 10 s per tenant
    directory_writes: float = 3000.0  # per 150 s per tenant
    share: float = 1.0
    margin: float = 0.3  # seconds: beyond network jitter, and a tenant's Teams bucket (30) still holds a `$batch` of 20

    def _bucket(self, key: str, amount: float, period: float) -> Bucket:
        rate = amount * self.share / period
        return Bucket(key, rate, max(1.0, amount * self.share - rate * self.margin))

    def buckets(self, tenant: str, service: str) -> tuple[Bucket, ...]:
        tenant = tenant.lower()
        if service == TEAMS:
            return (self._bucket(f"teams:{tenant}", self.teams_per_tenant, 1.0),
                    self._bucket("teams:*", self.teams_per_app, 1.0))
        units = self._bucket(f"directory:{tenant}", self.directory_units, 10.0)
        if service == DIRECTORY_WRITE:
            return units, self._bucket(f"writes:{tenant}", self.directory_writes, 150.0)
        return (units,)

    def lane_rate(self, tenant: str, service: str) -> float:
        """Requests per second a lane can reach (its tightest bucket at one token per request)."""
        return min(b.rate for b in self.buckets(tenant, service))


# --- what a request costs ------------------------------------------------------------------------------

_TEAMS_SEGMENTS = ("admin/teams", "teams", "appcatalogs", "chats", "teamwork")


def _graph_path(url: str) -> tuple[str, str]:
    """The path after the version segment (lower case, no leading slash) and the query."""
    parts = urlsplit(url)
    path = parts.path.strip("/").lower()
    for version in ("v1.0/", "beta/"):
        if version in f"{path}/":
            path = f"{path}/".split(version, 1)[1].rstrip("/")
            break
    return path, parts.query


def classify(method: str, url: str) -> tuple[str, float]:
    """(service class, resource units) of one Graph request. Teams service: Graph's Teams APIs; directory
    otherwise. A read costs 2 units without `$select` and 1 with it (+1 for `$expand`); a write costs 1 unit
    and one directory write."""
    path, query = _graph_path(url)
    if path.startswith(_TEAMS_SEGMENTS) or "/teamwork" in path:
        return TEAMS, 1.0
    if method.upper() != "GET":
        return DIRECTORY_WRITE, 1.0
    options = parse_qs(query)
    units = (1.0 if "$select" in options else 2.0) + (1.0 if "$expand" in options else 0.0)
    return DIRECTORY, units


@dataclass(frozen=True)
class Charge:
    """What one request (or one `$batch` of them) takes: its lane's service and tokens per bucket."""

    service: str
    amounts: tuple[tuple[Bucket, float], ...]
    requests: int = 1  # the requests it stands for, as Microsoft counts them (a `$batch`: those inside)


def charge(limits: Limits, tenant: str, method: str, url: str, body: Any = None) -> Charge:
    """The charge of a Graph request; a `$batch` is charged for each request inside it, as Graph does."""
    path, _ = _graph_path(url)
    items = body.get("requests") if path == "$batch" and isinstance(body, dict) else None
    parts = ([(str(r.get("method", "GET")), str(r.get("url", ""))) for r in items if isinstance(r, dict)]
             if isinstance(items, list) and items else [(method, url)])
    amounts: dict[str, list[Any]] = {}
    first_service = None
    for part_method, part_url in parts:
        service, units = classify(part_method, part_url if "//" in part_url else f"/v1.0/{part_url.lstrip('/')}")
        first_service = first_service or service
        for bucket in limits.buckets(tenant, service):
            cost = units if bucket.key.startswith("directory:") else 1.0
            entry = amounts.setdefault(bucket.key, [bucket, 0.0])
            entry[1] += cost
    return Charge(first_service or DIRECTORY, tuple((b, a) for b, a in amounts.values()), len(parts))


def teams_charge(limits: Limits, tenant: str) -> Charge:
    """A Teams PowerShell cmdlet: one Teams service request."""
    return Charge(TEAMS, tuple((b, 1.0) for b in limits.buckets(tenant, TEAMS)))


# --- stores and the allocation they share --------------------------------------------------------------


@dataclass
class BucketState:
    tokens: float
    updated: float

    def refill(self, bucket: Bucket, now: float) -> None:
        if now > self.updated:
            self.tokens = min(bucket.capacity, self.tokens + (now - self.updated) * bucket.rate)
            self.updated = now


def allocate(states: dict[str, BucketState], demands: Sequence[Charge], now: float) -> tuple[list[bool], float | None]:
    """Grants demands in order while every bucket each draws on has the tokens; a bucket that refused one
    demand refuses the later ones too (no overtaking of the request that was first). A demand larger than a
    bucket (a big `$batch`) fits a full bucket and leaves it in debt. Mutates `states`. Answers the grants
    and, when something was refused, how long until the first refused demand can fit."""
    for demand in demands:
        for bucket, _ in demand.amounts:
            states[bucket.key].refill(bucket, now)
    granted: list[bool] = []
    exhausted: set[str] = set()
    wait: float | None = None
    for demand in demands:
        short = [(b, min(a, b.capacity)) for b, a in demand.amounts
                 if b.key in exhausted or states[b.key].tokens < min(a, b.capacity)]
        if not short:
            for bucket, amount in demand.amounts:
                states[bucket.key].tokens -= amount
        else:
            need = max(max(0.0, (a - states[b.key].tokens) / b.rate) for b, a in short)
            wait = need if wait is None else min(wait, need)
            exhausted.update(b.key for b, _ in short)
        granted.append(not short)
    return granted, wait


def _buckets_of(demands: Sequence[Charge]) -> dict[str, Bucket]:
    return {bucket.key: bucket for demand in demands for bucket, _ in demand.amounts}


class MemoryBuckets:
    """Buckets in this process's memory (SQLite deployments, and tests)."""

    def __init__(self) -> None:
        self.states: dict[str, BucketState] = {}
        self._lock = threading.Lock()

    blocking = False

    def take(self, demands: Sequence[Charge], now: float) -> tuple[list[bool], float | None]:
        with self._lock:
            for key, bucket in _buckets_of(demands).items():
                self.states.setdefault(key, BucketState(bucket.capacity, now))
            return allocate(self.states, demands, now)

    def close(self) -> None:
        pass


_process_buckets = MemoryBuckets()


def process_buckets() -> MemoryBuckets:
    """The buckets of this process (SQLite deployments: one process spends the budget)."""
    return _process_buckets


def buckets_for(database_url: str) -> "Store":
    """Where the buckets live: the database when several processes may share it (PostgreSQL), this
    process's memory on SQLite."""
    return process_buckets() if database_url.startswith("sqlite") else DatabaseBuckets(database_url)


class BudgetBucket(Base):
    __tablename__ = "microsoft_budget_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float, nullable=False)
    updated: Mapped[float] = mapped_column(Float, nullable=False)  # seconds since the epoch when `tokens` was counted


class DatabaseBuckets:
    """Buckets in the application database, shared by every process on it (see the module docstring)."""

    blocking = True

    def __init__(self, database_url: str) -> None:
        self._sqlite = database_url.startswith("sqlite")
        self.engine: Engine = create_blocking_engine(database_url, pool_size=2, max_overflow=2)
        self._ready = False
        self._rows: set[str] = set()  # keys whose rows this process has seen (one deleted since is made again)

    def take(self, demands: Sequence[Charge], now: float) -> tuple[list[bool], float | None]:
        """One transaction of at most three statements whatever the number of buckets: the rows' creation
        (on SQLite always, as its write lock; on PostgreSQL only for a key this process has not seen yet),
        their read (FOR UPDATE on PostgreSQL, in key order), and one UPDATE of those whose tokens changed."""
        if not self._ready:  # a database not migrated by `teamsvoice` (a connector used on its own)
            BudgetBucket.__table__.create(self.engine, checkfirst=True)
            self._ready = True
        buckets = _buckets_of(demands)
        keys = sorted(buckets)
        table = BudgetBucket.__table__
        insert = sqlite_insert if self._sqlite else pg_insert
        query = select(table.c.key, table.c.tokens, table.c.updated).where(self._among(keys)).order_by(table.c.key)
        if not self._sqlite:
            query = query.with_for_update()
        with self.engine.begin() as connection:
            rows = None
            if not self._sqlite and self._rows.issuperset(keys):
                rows = connection.execute(query).all()
                if len(rows) < len(keys):  # rows deleted since this process saw them (a wiped table)
                    rows = None
            if rows is None:
                # A write first: SQLite's writer lock is taken before anything is read.
                connection.execute(insert(table).values(
                    [{"key": k, "tokens": buckets[k].capacity, "updated": now} for k in keys]).on_conflict_do_nothing())
                rows = connection.execute(query).all()
            states = {row.key: BucketState(row.tokens, row.updated) for row in rows}
            before = {k: (s.tokens, s.updated) for k, s in states.items()}
            result = allocate(states, demands, now)
            changed = {k: s for k, s in states.items() if (s.tokens, s.updated) != before[k]}
            if changed:
                connection.execute(self._write_back(changed))
        self._rows.update(keys)
        return result

    def _among(self, keys: list[str]) -> Any:
        """`key IN (...)`; on PostgreSQL one array parameter (`= ANY`): an IN list is rendered anew for each round
        (a bind and its cast per key), which cost a worker 4% of its CPU with twenty tenants' buckets per round."""
        column = BudgetBucket.__table__.c.key
        return column.in_(keys) if self._sqlite else column == any_(bindparam("keys", keys, type_=ARRAY(String)))

    def _write_back(self, changed: dict[str, BucketState]) -> Any:
        """One UPDATE of the changed buckets; on PostgreSQL from three arrays unnested (one statement shape
        whatever the number of buckets), on SQLite a CASE per column."""
        table = BudgetBucket.__table__
        keys = sorted(changed)
        if self._sqlite:
            return update(table).where(table.c.key.in_(keys)).values(
                tokens=case({k: changed[k].tokens for k in keys}, value=table.c.key),
                updated=case({k: changed[k].updated for k in keys}, value=table.c.key))
        rows = func.unnest(bindparam("keys", keys, type_=ARRAY(String)),
                           bindparam("tokens", [changed[k].tokens for k in keys], type_=ARRAY(Float)),
                           bindparam("updated", [changed[k].updated for k in keys], type_=ARRAY(Float)),
                           ).table_valued(column("key", String), column("tokens", Float), column("updated", Float)).render_derived(name="changed")
        return update(table).where(table.c.key == rows.c.key).values(tokens=rows.c.tokens, updated=rows.c.updated)

    def close(self) -> None:
        self.engine.dispose()


Store = MemoryBuckets | DatabaseBuckets


# --- the scheduler -------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Waiter:
    lane: "_Lane"
    job: str | None
    charge: Charge
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted_at: float = 0.0


@dataclass(eq=False)
class _Lane:
    tenant: str
    service: str
    rate: float
    max_in_flight: int
    in_flight: int = 0
    window: float = float("inf")  # the AIMD window; unlimited until the first 429
    latency: float = INITIAL_LATENCY
    last_cut: float = float("-inf")
    jobs: "OrderedDict[str | None, deque[_Waiter]]" = field(default_factory=OrderedDict)
    job_in_flight: dict[str | None, int] = field(default_factory=dict)  # granted, or taken for the round
    weight: float = 1.0  # its share of the budgets it shares with other lanes (`BudgetScheduler.weigh`)
    tag: float = 0.0  # its virtual time: the requests it was granted / its weight (`BudgetScheduler._candidates`)

    @property
    def target(self) -> int:
        """Requests in flight that spend the rate at the latency observed (Little's law; a freed slot
        may wait a tick for the next round)."""
        return max(1, math.ceil(self.rate * (self.latency + TICK_SECONDS) * LATENCY_SLACK))

    @property
    def limit(self) -> int:
        window = self.max_in_flight if self.window == float("inf") else math.floor(self.window)
        return max(1, min(self.max_in_flight, self.target, window))

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self.jobs.values())

    def next_waiter(self) -> _Waiter | None:
        """The head of the queue of the job with the fewest requests in flight; of jobs with as many, the one whose
        head stands for the fewest requests (ties: round robin). A bulk job may have none in flight either, its
        next `$batch` waiting for its twenty tokens while other workers take the tenant's: a one-user change's
        request, which needs one, goes before it, since a request refused in a round holds back those after it
        (`allocate`). Measured under a 1,200-user job before this: a one-user change's request waited up to 4.2 s."""
        chosen: str | None = None
        fewest: tuple[int, int] | None = None
        for job, queue in list(self.jobs.items()):
            if not queue:
                del self.jobs[job]
                continue
            rank = (self.job_in_flight.get(job, 0), queue[0].charge.requests)
            if fewest is None or rank < fewest:
                chosen, fewest = job, rank
        if fewest is None:
            return None
        self.jobs.move_to_end(chosen)
        self.job_in_flight[chosen] = fewest[0] + 1
        return self.jobs[chosen].popleft()

    def put_back(self, waiter: _Waiter) -> None:
        """A waiter taken for a round but not granted goes back to the head of its job's queue, and its
        job to the front of the rotation."""
        self.ended(waiter.job)
        queue = self.jobs.setdefault(waiter.job, deque())
        queue.appendleft(waiter)
        self.jobs.move_to_end(waiter.job, last=False)

    def ended(self, job: str | None) -> None:
        """A request of `job` taken from its queue left the wire (or was not granted)."""
        left = self.job_in_flight.get(job, 0) - 1
        if left > 0:
            self.job_in_flight[job] = left
        else:
            self.job_in_flight.pop(job, None)


class Ticket:
    """A granted request: tell it how Microsoft answered, then release it (`BudgetScheduler.request`)."""

    def __init__(self, scheduler: "BudgetScheduler", waiter: _Waiter) -> None:
        self._scheduler, self._waiter = scheduler, waiter
        self.status: int | None = None
        self.throttled = 0

    def answered(self, status: int | None, *, throttled: int = 0) -> None:
        """`throttled`: of a `$batch` answered as a whole, the requests inside it that Microsoft answered 429
        (counted as throttled, and the lane's window cut, as for a 429 of the whole call)."""
        self.status, self.throttled = status, throttled


class BudgetScheduler:
    def __init__(self, limits: Limits, store: Store, *, clock: Clock | None = None, max_in_flight: int = 1000) -> None:
        self.limits, self.store = limits, store
        self.clock: Clock = clock or SystemClock()
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self._lanes: dict[tuple[str, str], _Lane] = {}  # (in the order they were made: ties in `_candidates`)
        self._pumping = False
        self._last_round = float("-inf")
        self._next_round = float("inf")  # when the next round is due (inf: when an event asks for one)
        self._timer_due = float("inf")  # when the pending timer wakes (inf: no timer)
        self.granted = 0  # requests granted by this process (for benches and tests)
        self._weights: dict[str, float] = {}  # tenant -> weight (`weigh`)
        self._virtual: dict[str, float] = {}  # service -> the highest start tag granted in its lanes (`_candidates`)
        self._tasks: set[asyncio.Task[None]] = set()

    def lane(self, tenant: str, service: str) -> _Lane:
        key = (tenant.lower(), service)
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(key[0], service, self.limits.lane_rate(tenant, service), self.max_in_flight)
            return lane

    def weigh(self, weights: Mapping[str, float]) -> None:
        """Each tenant's weight (absent: 1): where lanes share a bucket (the app-wide Teams bucket), those with requests
        waiting are offered its tokens in proportion to their weights. The job runtime weighs the tenants by the work
        they have left (`jobs/shares.weights`), so that a fleet change's tenants end together."""
        self._weights = {tenant.lower(): weight for tenant, weight in weights.items() if weight > 0}

    def charge(self, tenant: str, method: str, url: str, body: Any = None) -> Charge:
        return charge(self.limits, tenant, method, url, body)

    def teams_charge(self, tenant: str) -> Charge:
        return teams_charge(self.limits, tenant)

    @asynccontextmanager
    async def request(self, tenant: str, charge: Charge) -> AsyncIterator[Ticket]:
        """Holds a granted slot while the request is on the wire; `ticket.answered(status)` feeds the
        latency and the AIMD window when it is released."""
        ticket = await self.acquire(tenant, charge)
        try:
            yield ticket
        finally:
            self.release(ticket)

    async def acquire(self, tenant: str, charge: Charge) -> Ticket:
        """Waits for a slot of the request's lane and for its tokens."""
        loop = asyncio.get_running_loop()
        lane = self.lane(tenant, charge.service)
        waiter = _Waiter(lane, current_job.get(), charge, loop, loop.create_future())
        with self._lock:
            lane.jobs.setdefault(waiter.job, deque()).append(waiter)
            due = lane.in_flight < lane.limit
        if due:
            self._ask_round()
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                queue = lane.jobs.get(waiter.job)
                if queue is not None and waiter in queue:
                    queue.remove(waiter)
                    raise
            if waiter.future.done() and not waiter.future.cancelled():
                self._release(waiter, None)  # granted just as it was cancelled: the slot goes back
            raise
        return Ticket(self, waiter)

    def release(self, ticket: Ticket) -> None:
        self._release(ticket._waiter, ticket.status, ticket.throttled)

    def _release(self, waiter: _Waiter, status: int | None, throttled: int = 0) -> None:
        now = self.clock.now()
        lane, requests = waiter.lane, waiter.charge.requests
        refused = 0 if status is None else requests if status == 429 else min(throttled, requests)
        if requests - refused:
            BUDGET_REQUESTS.labels(lane.service, lane.tenant, "unanswered" if status is None else "answered").inc(
                requests - refused)
        if refused:
            BUDGET_REQUESTS.labels(lane.service, lane.tenant, "throttled").inc(refused)
        with self._lock:
            lane.in_flight -= 1
            lane.ended(waiter.job)
            if refused:
                if waiter.granted_at >= lane.last_cut:  # one cut per round trip
                    lane.window = max(1.0, min(lane.window, float(lane.limit)) / 2)
                    lane.last_cut = now
            elif status is not None:
                lane.latency += EWMA_WEIGHT * (max(0.0, now - waiter.granted_at) - lane.latency)
                if lane.window != float("inf"):
                    lane.window = lane.window + 1 / lane.window
                    if lane.window >= lane.target:
                        lane.window = float("inf")  # recovered: the latency target rules again
            due = lane.waiting > 0 and lane.in_flight < lane.limit
        if due:
            self._ask_round()

    def _ask_round(self) -> None:
        """A slot is free for a waiter: run a round now, or as soon as the tick allows."""
        with self._lock:
            self._next_round = min(self._next_round, self._last_round + TICK_SECONDS)
        self._kick()

    def _kick(self) -> None:
        """Starts the due round on this loop, or a timer for it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # released outside any loop: the next event or timer starts the round
        now = self.clock.now()
        with self._lock:
            if self._pumping:
                return  # the running round schedules what follows it
            if now >= self._next_round:
                self._pumping = True
                start = True
            else:
                start = False
                if self._next_round < self._timer_due:
                    self._timer_due = due = self._next_round
                else:
                    return
        task = loop.create_task(self._round(now) if start else self._timer(due - now))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _timer(self, delay: float) -> None:
        await self.clock.sleep(delay)
        with self._lock:
            self._timer_due = float("inf")
        self._kick()

    async def _round(self, now: float) -> None:
        """One round: picks the waiters that have a free slot (lanes by their virtual time, then within each lane
        jobs round robin), takes their tokens in one store call, grants those that got them, and says when the next
        round is due."""
        with self._lock:
            self._last_round, self._next_round = now, float("inf")
            candidates = self._candidates()
        granted: list[bool] = []
        wait: float | None = None
        try:
            if candidates:
                demands = [w.charge for w, _ in candidates]
                if self.store.blocking:
                    granted, wait = await asyncio.to_thread(self.store.take, demands, now)
                else:
                    granted, wait = self.store.take(demands, now)
        except Exception:  # noqa: BLE001 - e.g. the database briefly away: the waiters wait for the next round
            log.warning("the Microsoft budget store failed; retrying", exc_info=True)
        finally:
            if len(granted) != len(candidates):  # the store failed: nothing was granted, try again later
                granted, wait = [False] * len(candidates), TICK_SECONDS
            with self._lock:
                for (waiter, tag), ok in reversed(list(zip(candidates, granted))):
                    lane = waiter.lane
                    if ok:
                        waiter.granted_at = now
                        lane.in_flight += 1
                        lane.tag = max(lane.tag, tag + waiter.charge.requests / lane.weight)
                        self._virtual[lane.service] = max(self._virtual.get(lane.service, 0.0), tag)
                        self.granted += 1
                        waiter.loop.call_soon_threadsafe(self._grant, waiter)
                    else:
                        lane.put_back(waiter)
                if wait is not None:
                    self._next_round = min(self._next_round, now + max(TICK_SECONDS, wait))
                elif any(lane.waiting and lane.in_flight < lane.limit for lane in self._lanes.values()):
                    self._next_round = min(self._next_round, now + TICK_SECONDS)
                self._pumping = False
            self._kick()

    def _candidates(self) -> list[tuple[_Waiter, float]]:
        """The waiters that have a free slot in their lane, each with its start tag, in the order of the tags
        (start-time fair queueing): a lane's next request is tagged with the lane's virtual time, which each request
        granted moves on by the requests it stands for / the lane's weight. With equal weights the lanes take turns;
        a lane of weight 2 is offered two requests' tokens to the others' one. A lane is never behind the highest start
        tag granted in its service's lanes (those that share the app-wide bucket): one that had nothing waiting, or
        whose requests waited for slots or for its own tokens, gets no credit for that time, so a one-user change's
        first request goes with the next round's first."""
        ready: list[tuple[float, int, _Lane, int]] = []
        for n, lane in enumerate(self._lanes.values()):
            free = lane.limit - lane.in_flight
            if lane.jobs and free > 0:
                lane.weight = self._weights.get(lane.tenant, 1.0)
                lane.tag = max(lane.tag, self._virtual.get(lane.service, 0.0))
                ready.append((lane.tag, n, lane, free))
        heapq.heapify(ready)
        chosen: list[tuple[_Waiter, float]] = []
        while ready:
            tag, n, lane, free = heapq.heappop(ready)
            waiter = lane.next_waiter()
            if waiter is None:
                continue
            chosen.append((waiter, tag))
            if free > 1:
                heapq.heappush(ready, (tag + waiter.charge.requests / lane.weight, n, lane, free - 1))
        return chosen

    def _grant(self, waiter: _Waiter) -> None:
        if waiter.future.cancelled():
            self._release(waiter, None)
        elif not waiter.future.done():
            waiter.future.set_result(None)

    def close(self) -> None:
        for task in list(self._tasks):
            loop = task.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        self.store.close()

    def lanes(self) -> list[_Lane]:
        with self._lock:
            return list(self._lanes.values())
