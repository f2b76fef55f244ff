"""The Microsoft budget scheduler (microsoft/budget.py) on a fake clock: no timings, the clock only moves
when a test moves it. Slots, buckets, AIMD, fair shares between tenants and between jobs, and buckets
shared by two stores (two processes) on SQLite and PostgreSQL."""

import asyncio
import heapq
import itertools
import threading
from collections import Counter

import pytest
from sqlalchemy import delete

from teamsvoice.microsoft.budget import (
    DIRECTORY, DIRECTORY_WRITE, TEAMS, TICK_SECONDS, BudgetBucket, BudgetScheduler, DatabaseBuckets, Limits, MemoryBuckets,
    buckets_for, charge, classify, job_scope, process_buckets, teams_charge,
)


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._ids), future))
        await future

    async def advance(self, seconds: float, step: float = TICK_SECONDS) -> None:
        """Moves time in steps, waking the sleepers that are due and letting the loop settle at each."""
        end = self.t + seconds
        while self.t < end - 1e-9:
            self.t = min(end, self.t + step)
            while self._sleepers and self._sleepers[0][0] <= self.t + 1e-9:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
            await settle()


async def settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


class Harness:
    """Requests that hold their slot for `latency` fake seconds and are answered `status`."""

    def __init__(self, scheduler: BudgetScheduler, clock: FakeClock) -> None:
        self.scheduler, self.clock = scheduler, clock
        self.in_flight: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.grants: list[tuple[float, str, str | None]] = []  # (time, tenant, job)
        self.status = 200
        self.tasks: list[asyncio.Task[None]] = []

    def submit(self, tenant: str, count: int = 1, *, job: str | None = None, latency: float = 0.5,
               service: str = TEAMS, batch: int = 0) -> None:
        """`batch`: each request is a `$batch` of that many Teams requests (charged that many tokens)."""
        for _ in range(count):
            self.tasks.append(asyncio.ensure_future(self._one(tenant, job, latency, service, batch)))

    async def _one(self, tenant: str, job: str | None, latency: float, service: str, batch: int) -> None:
        with job_scope(job):
            if batch:
                reads = [{"id": str(i), "method": "GET", "url": f"/admin/teams/userConfigurations/{i}"} for i in range(batch)]
                request = charge(self.scheduler.limits, tenant, "POST", "https://graph.example/v1.0/$batch", {"requests": reads})
            elif service == TEAMS:
                request = teams_charge(self.scheduler.limits, tenant)
            else:
                request = charge(self.scheduler.limits, tenant, "GET", "https://graph.example/v1.0/users?$select=id")
            async with self.scheduler.request(tenant, request) as ticket:
                self.grants.append((self.clock.now(), tenant, job))
                self.in_flight[tenant] += 1
                self.most[tenant] = max(self.most[tenant], self.in_flight[tenant])
                await self.clock.sleep(latency)
                self.in_flight[tenant] -= 1
                ticket.answered(self.status)

    async def cancel_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.scheduler.close()
        await settle()


def scheduler(clock: FakeClock, *, max_in_flight: int = 1000, **limits: float) -> BudgetScheduler:
    return BudgetScheduler(Limits(**limits), MemoryBuckets(), clock=clock, max_in_flight=max_in_flight)


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] < t - window + 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_never_more_in_flight_than_the_lane_allows() -> None:
    clock = FakeClock()
    harness = Harness(scheduler(clock, max_in_flight=3), clock)
    harness.submit("t1", 40, latency=1.0)
    await settle()
    await clock.advance(20)
    assert harness.most["t1"] == 3
    assert len(harness.grants) == 40  # and every request got through, three at a time
    await harness.cancel_all()


async def test_in_flight_follows_rate_times_latency() -> None:
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    harness.submit("t1", 600, latency=2.0)  # 30/s at 2 s: about 60 in flight spend the rate
    await settle()
    await clock.advance(10)
    lane = sched.lane("t1", TEAMS)
    assert 55 <= lane.target <= 80, lane.target
    assert harness.most["t1"] <= lane.target
    await harness.cancel_all()


async def test_never_past_a_bucket_and_the_budget_is_spent() -> None:
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    harness.submit("t1", 2000, latency=0.0)
    await settle()
    await clock.advance(10, step=0.01)
    bucket = Limits().buckets("t1", TEAMS)[0]
    times = [t for t, _, _ in harness.grants]
    for window in (0.1, 1.0, 5.0, 10.0):
        assert most_in_any_window(times, window) <= bucket.rate * window + bucket.capacity + 1e-6, window
    # ... and it is spent: the burst plus the rate, within a tick of rounds.
    assert len(times) >= bucket.capacity + bucket.rate * (10 - 2 * TICK_SECONDS) - 1
    await harness.cancel_all()


def refused_by_microsoft(arrivals: list[float], rate: float, capacity: float) -> int:
    """How many of the requests arriving at these times Microsoft's own bucket (full at first) refuses."""
    tokens, last, refused = capacity, arrivals[0] if arrivals else 0.0, 0
    for at in sorted(arrivals):
        tokens, last = min(capacity, tokens + (at - last) * rate), at
        if tokens >= 1 - 1e-9:
            tokens -= 1
        else:
            refused += 1
    return refused


async def test_requests_reaching_microsoft_up_to_the_margin_late_stay_within_its_count() -> None:
    """Requests reach Microsoft some time after their grant, not all equally late, so requests granted at an even pace
    may arrive bunched. Waves of a tenant's requests (60 every 3 s), at worst: those granted in a wave's first 0.25 s
    arrive 0.25 s late, the others at once. With the default margin (0.3 s) Microsoft's bucket (30 a second, 30
    deep) refuses none of them, though the full rate is spent; with no margin (a bucket as deep as Microsoft's) it
    refuses some."""
    refused: dict[float, int] = {}
    for margin in (Limits().margin, 0.0):
        clock = FakeClock()
        harness = Harness(scheduler(clock, margin=margin), clock)
        arrivals: list[float] = []
        for _ in range(10):
            wave, first = len(harness.grants), clock.now()
            harness.submit("t1", 60, latency=0.0)
            await settle()
            await clock.advance(3, step=0.01)
            assert len(harness.grants) == wave + 60
            arrivals += [t + (0.25 if t - first < 0.25 else 0.0) for t, _, _ in harness.grants[wave:]]
        refused[margin] = refused_by_microsoft(arrivals, rate=30.0, capacity=30.0)
        await harness.cancel_all()
    assert refused[Limits().margin] == 0, refused
    assert refused[0.0] > 0, refused
    bucket = Limits().buckets("t1", TEAMS)[0]
    assert (bucket.rate, bucket.capacity) == (30.0, 21.0)  # the full rate; the margin is out of the burst


async def test_app_wide_bucket_holds_across_tenants_with_equal_shares() -> None:
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    tenants = [f"tenant-{i}" for i in range(20)]
    for tenant in tenants:
        harness.submit(tenant, 300, latency=0.3)
    await settle()
    await clock.advance(10, step=0.01)
    app = Limits().buckets("x", TEAMS)[1]
    times = [t for t, _, _ in harness.grants]
    assert most_in_any_window(times, 1.0) <= app.rate + app.capacity + 1e-6
    assert len(times) >= 0.9 * (app.rate * 10 + app.capacity)  # the app-wide budget is spent
    shares = Counter(tenant for _, tenant, _ in harness.grants)
    mean = len(times) / len(tenants)
    assert all(abs(shares[t] - mean) <= 0.1 * mean for t in tenants), shares
    await harness.cancel_all()


async def test_lanes_share_the_app_wide_bucket_in_proportion_to_their_weights() -> None:
    """The job runtime weighs the tenants by the work they have left (jobs/shares.weights): where the lanes share the
    app-wide bucket, a lane of weight 2 is granted two requests to a lane of weight 1's one, and together they spend it."""
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    heavy, light = [f"heavy-{i}" for i in range(10)], [f"light-{i}" for i in range(10)]
    sched.weigh({tenant.upper(): 2.0 for tenant in heavy})  # (tenants as the job queue names them: any case)
    for tenant in heavy + light:
        harness.submit(tenant, 400, latency=0.3)
    await settle()
    await clock.advance(10, step=0.01)
    shares = Counter(tenant for _, tenant, _ in harness.grants)
    per_light = sum(shares[t] for t in light) / len(light)
    assert all(abs(shares[t] - 2 * per_light) <= 0.1 * 2 * per_light for t in heavy), shares  # (19 a second to 9.5)
    app = Limits().buckets("x", TEAMS)[1]
    assert len(harness.grants) >= 0.9 * (app.rate * 10 + app.capacity)
    sched.weigh({})  # weights gone: equal shares again
    start = len(harness.grants)
    await clock.advance(5, step=0.01)
    shares = Counter(tenant for _, tenant, _ in harness.grants[start:])
    mean = (len(harness.grants) - start) / 20
    assert all(abs(shares[t] - mean) <= 0.1 * mean for t in heavy + light), shares
    await harness.cancel_all()


async def test_a_lane_that_was_idle_gets_no_credit_for_the_time_and_a_light_one_is_not_starved() -> None:
    """A tenant whose requests come in while others keep the app-wide bucket busy gets its share from then on, not
    the requests it did not make before (no burst that would hold the others back); and a tenant of weight 1 among
    tenants of weight 5 has its one request granted within the round after it came, as it had before weights."""
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    busy = [f"busy-{i}" for i in range(19)]
    sched.weigh({tenant: 5.0 for tenant in busy})
    for tenant in busy:
        harness.submit(tenant, 2000, latency=0.3)
    harness.submit("reads", 2000, latency=0.3, service=DIRECTORY)  # (its lane's tags run far ahead: its own bucket)
    await settle()
    await clock.advance(5, step=0.01)
    submitted = clock.now()
    harness.submit("light", 1, latency=0.3)
    await settle()
    await clock.advance(2 * TICK_SECONDS, step=0.01)
    granted = [t for t, tenant, _ in harness.grants if tenant == "light"]
    assert granted and granted[0] - submitted <= 2 * TICK_SECONDS + 1e-9, (granted, submitted)
    start = len(harness.grants)
    sched.weigh({tenant: 1.0 for tenant in busy})
    harness.submit("late", 2000, latency=0.3)  # idle for 5 s, then as busy as the others
    await settle()
    await clock.advance(1, step=0.01)
    shares = Counter(tenant for _, tenant, _ in harness.grants[start:])
    mean = sum(shares[t] for t in busy) / len(busy)
    assert shares["late"] <= 1.5 * mean + 1, shares  # (its equal share: 14.25 a second, not the 28.5 of its own bucket)
    await harness.cancel_all()


async def test_a_one_request_job_is_not_starved_by_a_big_job_of_the_same_tenant() -> None:
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    harness.submit("t1", 5000, job="big", latency=0.5)
    await settle()
    await clock.advance(2)
    before = len(harness.grants)
    harness.submit("t1", 1, job="small", latency=0.5)
    await settle()
    await clock.advance(2)
    after = [job for _, _, job in harness.grants[before:]]
    assert "small" in after and after.index("small") <= 2, after[:10]
    await harness.cancel_all()


async def test_an_interactive_job_goes_before_every_bulk_job_of_its_tenant() -> None:
    """A job with nothing in flight is served next, however many bulk jobs keep the lane busy (round robin
    would make it wait for one request of each of them); the bulk jobs still share equally."""
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    bulk = [f"bulk-{i}" for i in range(20)]
    for job in bulk:
        harness.submit("t1", 300, job=job, latency=1.0)
    await settle()
    await clock.advance(3)
    for change in range(3):  # three one-request changes, one after another
        submitted = clock.now()
        harness.submit("t1", 1, job=f"change-{change}", latency=0.5)
        await settle()
        await clock.advance(1)
        granted = [t for t, _, job in harness.grants if job == f"change-{change}"]
        # The round after it arrived (the bucket refills 1.4 tokens a tick: round robin over 20 jobs takes 14 ticks).
        assert granted and granted[0] - submitted <= 2 * TICK_SECONDS + 1e-9, (granted, submitted)
    shares = Counter(job for _, _, job in harness.grants if job in bulk)
    assert max(shares.values()) - min(shares.values()) <= 2, shares
    await harness.cancel_all()


async def test_a_one_request_job_goes_before_a_bulk_job_whose_batches_all_wait_for_tokens() -> None:
    """A bulk job's `$batch` of 20 waits for 20 tokens with nothing of its job on the wire (the other workers took
    the tenant's tokens): a one-user change's request, which needs one, is not held behind it (a request refused in
    a round holds back those after it, and the batch came first: measured under a 1,200-user job, a one-user
    change's Teams request waited 4.2 s for its token)."""
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    harness.submit("t1", 40, job="big", latency=0.1, batch=20)  # 28.5 tokens a second: one batch in 0.7 s
    await settle()
    await clock.advance(3)
    lane = sched.lane("t1", TEAMS)
    for change in range(5):  # arriving at different points of the bulk job's wait for its next batch's tokens
        await clock.advance(0.13)
        for _ in range(40):  # until its next batch waits with none of its requests on the wire
            if not lane.job_in_flight.get("big") and lane.jobs.get("big"):
                break
            await clock.advance(TICK_SECONDS)
        else:
            pytest.fail("the bulk job always had a batch on the wire")
        submitted = clock.now()
        harness.submit("t1", 1, job=f"change-{change}", latency=0.1)
        await settle()
        await clock.advance(2 * TICK_SECONDS)
        granted = [t for t, _, job in harness.grants if job == f"change-{change}"]
        assert granted and granted[0] - submitted <= 2 * TICK_SECONDS + 1e-9, (change, granted, submitted)
    await harness.cancel_all()


async def test_a_job_of_batches_and_a_job_of_single_requests_both_spend_the_lane() -> None:
    """Single requests going first at a tie do not starve a job whose requests are `$batch`es of 20: it has fewer in
    flight whenever they were served, and then goes first (and holds back the others until its 20 tokens are there).
    Neither waits behind the other for long, and together they spend the bucket."""
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    harness.submit("t1", 200, job="batches", latency=0.3, batch=20)
    harness.submit("t1", 2000, job="singles", latency=0.3)
    await settle()
    await clock.advance(20)
    grants = Counter(job for _, _, job in harness.grants)
    bucket = Limits().buckets("t1", TEAMS)[0]
    assert grants["batches"] * 20 >= 0.75 * bucket.rate * 20, grants  # (25 batches: 500 of the 598 tokens)
    assert grants["singles"] >= 60, grants  # (92; 28 when the batches went first at every tie)
    assert grants["batches"] * 20 + grants["singles"] >= 0.95 * (bucket.rate * 20 + bucket.capacity), grants
    await harness.cancel_all()


async def test_jobs_of_one_tenant_share_it_round_robin() -> None:
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    for job in ("a", "b", "c"):
        harness.submit("t1", 500, job=job, latency=0.2)
    await settle()
    await clock.advance(5)
    shares = Counter(job for _, _, job in harness.grants)
    assert max(shares.values()) - min(shares.values()) <= 1, shares
    await harness.cancel_all()


async def test_aimd_halves_on_429_and_recovers() -> None:
    clock = FakeClock()
    sched = scheduler(clock)
    harness = Harness(sched, clock)
    harness.submit("t1", 3000, latency=1.0)
    await settle()
    await clock.advance(3)
    lane = sched.lane("t1", TEAMS)
    before = lane.limit
    assert before >= 20
    harness.status = 429
    await clock.advance(1.05)  # one round trip of 429s: one cut, not one per 429
    cut = lane.limit
    assert before // 2 - 1 <= cut <= before // 2 + 1, (before, cut)
    await clock.advance(1.05)  # a second round trip of 429s: a second cut
    assert lane.limit <= cut // 2 + 1
    assert max(harness.in_flight.values()) <= cut
    low = lane.limit
    harness.status = 200
    await clock.advance(3)
    assert lane.limit > low  # additive increase
    await clock.advance(40)
    assert lane.limit == lane.target  # recovered to what the latency asks for
    await harness.cancel_all()


async def test_a_cancelled_waiter_leaves_no_slot_taken() -> None:
    clock = FakeClock()
    sched = scheduler(clock, max_in_flight=1)
    harness = Harness(sched, clock)
    harness.submit("t1", 5, latency=1.0)
    await settle()
    harness.tasks[1].cancel()
    await clock.advance(6)
    assert len(harness.grants) == 4
    assert sched.lane("t1", TEAMS).in_flight == 0
    await harness.cancel_all()


def test_requests_are_classified_and_charged_per_budget() -> None:
    assert classify("POST", "https://graph.microsoft.com/v1.0/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber")[0] == TEAMS
    assert classify("GET", "https://graph.microsoft.com/v1.0/users?$select=id") == (DIRECTORY, 1.0)
    assert classify("GET", "https://graph.microsoft.com/v1.0/users") == (DIRECTORY, 2.0)
    assert classify("POST", "https://graph.microsoft.com/v1.0/users/x/assignLicense") == (DIRECTORY_WRITE, 1.0)
    limits = Limits()
    batch = charge(limits, "T1", "POST", "https://graph.microsoft.com/v1.0/$batch", {"requests": [
        {"id": "1", "method": "PATCH", "url": "/users/a"}, {"id": "2", "method": "PATCH", "url": "/users/b"},
        {"id": "3", "method": "GET", "url": "/users/c"}]})
    amounts = {bucket.key: amount for bucket, amount in batch.amounts}
    assert amounts == {"directory:t1": 4.0, "writes:t1": 2.0}
    assert batch.requests == 3  # counted (teamsvoice_microsoft_budget_requests_total) as Microsoft counts: those inside
    assert charge(limits, "T1", "GET", "https://graph.microsoft.com/v1.0/users/a").requests == 1
    assert {b.key for b, _ in teams_charge(limits, "T1").amounts} == {"teams:t1", "teams:*"}


def test_two_stores_on_one_database_share_one_bucket(database_url: str) -> None:
    """Two processes' stores take from the same rows: hammered from two threads at one instant, together
    they get exactly the bucket's capacity; then the refill is shared as well."""
    limits = Limits(teams_per_tenant=10, teams_per_app=1000, margin=0.0)  # a bucket of 10
    first, second = DatabaseBuckets(database_url), DatabaseBuckets(database_url)
    tenant = f"shared-{id(first)}"
    one = teams_charge(limits, tenant)
    now = 2_000_000.0
    got: Counter[str] = Counter()

    def hammer(name: str, store: DatabaseBuckets) -> None:
        for _ in range(15):
            granted, _wait = store.take([one], now)
            got[name] += granted.count(True)

    try:
        threads = [threading.Thread(target=hammer, args=(n, s)) for n, s in (("a", first), ("b", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert got["a"] + got["b"] == 10  # the capacity, once, between both
        granted, wait = first.take([one], now)
        assert granted == [False] and wait == pytest.approx(0.1)
        granted, _ = second.take([one, one, one], now + 0.25)  # 2.5 tokens refilled: two requests
        assert granted == [True, True, False]
        granted, _ = first.take([one], now + 0.25)
        assert granted == [False]  # the other store spent them
    finally:
        first.close()
        second.close()


def test_a_round_makes_again_the_bucket_rows_deleted_since_it_saw_them(database_url: str) -> None:
    """A store skips creating rows it has seen (microsoft/budget.DatabaseBuckets); a row deleted since (a wiped
    table) is made again, full, instead of the round failing for ever."""
    limits = Limits(teams_per_tenant=3, teams_per_app=1000, margin=0.0)  # a bucket of 3
    store = DatabaseBuckets(database_url)
    one = teams_charge(limits, f"wiped-{id(store)}")
    try:
        assert store.take([one, one, one, one], 3_000_000.0)[0] == [True, True, True, False]
        with store.engine.begin() as connection:
            connection.execute(delete(BudgetBucket.__table__).where(BudgetBucket.key.in_([b.key for b, _ in one.amounts])))
        assert store.take([one, one, one, one], 3_000_000.0)[0] == [True, True, True, False]
        assert store.take([one], 3_000_000.0)[0] == [False]  # the rows made again are shared as before
    finally:
        store.close()


async def test_two_schedulers_on_one_database_share_the_rate(database_url: str) -> None:
    clock = FakeClock()
    limits = dict(teams_per_tenant=20)
    stores = [DatabaseBuckets(database_url), DatabaseBuckets(database_url)]
    for store in stores:  # each round's store call answered before the fake clock moves on (not from a thread
        store.blocking = False  # that a loaded machine may hold past the next tick): the clock alone orders them
    schedulers = [BudgetScheduler(Limits(**limits), store, clock=clock) for store in stores]
    harnesses = [Harness(s, clock) for s in schedulers]
    tenant = f"two-{id(clock)}"
    try:
        for harness in harnesses:
            harness.submit(tenant, 200, latency=0.0)
        for _ in range(40):  # 2 fake seconds
            clock.t += TICK_SECONDS
            for due in [s for s in clock._sleepers if s[0] <= clock.t]:
                clock._sleepers.remove(due)
                if not due[2].done():
                    due[2].set_result(None)
            await settle()
        times = sorted(t for h in harnesses for t, _, _ in h.grants)
        assert most_in_any_window(times, 2.0) <= 20 * 2.0 + 20  # one shared bucket, not two
        assert len(times) >= 0.8 * (20 * 2.0 + 20)  # and it is spent
    finally:
        for harness in harnesses:
            await harness.cancel_all()
        for store in stores:
            store.close()


def test_buckets_live_in_postgresql_and_in_the_process_on_sqlite(database_url: str) -> None:
    """Several processes share PostgreSQL; SQLite is the one-process `serve`, whose connectors share memory."""
    store = buckets_for(database_url)
    try:
        if database_url.startswith("sqlite"):
            assert store is process_buckets() and buckets_for(database_url) is store
        else:
            assert isinstance(store, DatabaseBuckets)
    finally:
        store.close()
