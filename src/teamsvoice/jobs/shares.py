"""How many of each tenant's items a worker claims at a poll of the Microsoft queue: an equal share of the workers'
slots for every tenant with work waiting, served by the tenant's home worker first.

DBOS claims a partitioned queue's work partition by partition (a partition is a Microsoft tenant), each poll in a
random order, each claim as many as the tenant's slots across the workers (`TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY`)
and the worker's own (`TEAMSVOICE_MICROSOFT_WORKER_ITEMS`) allow. So a fleet change's first wave went to the first
few tenants each worker tried, 64 items each, and those kept their head start: the tenants of a 20-tenant change
ended 20-30 s apart, and as they ended the rate fell to 30 requests a second for each tenant left (bench/README.md,
runs AC to AF). Here a tenant's items in flight are its equal share of every worker's slots (capped by its own
limit): the tenants go on at the same pace and end together. Each tenant has a home worker among the live ones (a
hash of its id, every worker home to as many tenants), which gives it its share as far as its slots go, so that a
tenant's requests share one worker's `$batch` calls and policy grants; a worker with more home tenants than its
slots serve at that share (by one, when the tenants do not divide evenly) leaves the rest of their shares to the
other workers. Slots the shares leave free go to any tenant with work waiting (a worker that hangs while it still
beats keeps none of its tenants' work waiting for long). A worker's slots fill over 4 s at the fastest, from idle
(`Filling`). DBOS still enforces every limit: this only bounds, per tenant, what a claim of this worker takes. The
tenants' weights in the Microsoft budget (`weights`) come from here too: what keeps the tenants together once their
items run."""

import math
import random
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence


FILL_SECONDS = 4.0  # a worker's slots fill over this long at the fastest (`Filling`)


def most_per_poll(worker_cap: int, polling_interval: float) -> int:
    """How much a worker's ceiling (`Filling`) grows at a poll: its slots fill over FILL_SECONDS at the fastest."""
    return max(1, math.ceil(worker_cap * polling_interval / FILL_SECONDS))


class Filling:
    """How many items a worker may hold at a poll: its ceiling, which grows by `most_per_poll` at each poll up to all
    its slots, and is at most twice what it held after its last poll's claims plus that growth (a worker that ran
    little, or nothing, fills again from there). Starting an item is most of its CPU (its claim, its record's
    transaction, its user's read), so a worker that claimed its 384 slots at its first polls spent the next seconds
    starting all of them on two cores, none yet at Microsoft (the first 5 s of a fleet change answered 120-380 Teams
    requests of 1,500), and the tenants whose jobs came in a second later found no slot free until the first items
    ended (6-9 s). Filled over 4 s (at most 96 more items a second at 384 slots) the first items reach Microsoft while
    the others start, and every tenant of a fleet change has its first items running within about 4 s
    (bench/README.md, run AG). The ceiling bounds what the worker holds, not what it claims: slots freed by items that
    ended are claimed again at once, however fast they end (a cap on each poll's claims instead never filled a worker
    whose items ended as fast as it allowed)."""

    def __init__(self) -> None:
        self.ceiling = 0
        self.held = 0  # what the worker held after its last poll's claims

    def free(self, running: int, worker_cap: int, polling_interval: float) -> int:
        """How many items the worker may claim at this poll, with `running` of its `worker_cap` slots taken (tell
        `claimed` what it claimed)."""
        step = most_per_poll(worker_cap, polling_interval)
        self.ceiling = min(worker_cap, self.ceiling + step, 2 * max(running, self.held) + step)
        self.held = running
        return max(0, self.ceiling - running)

    def claimed(self, items: int) -> None:
        self.held += items


def homes(tenants: Sequence[str], workers: Sequence[str]) -> dict[str, str]:
    """Each tenant's home among the live `workers` (sorted), the same answer in every worker: the one a hash of its
    id names, unless that one already has its part of the tenants (rounded up), then the one with the fewest. Every
    worker is home to as many tenants (give or take one): a tenant served by two workers sends more requests per
    user (its `$batch` calls and policy grants emptier), so its items took longer (bench/README.md, run AF)."""
    part, taken = -(-len(tenants) // len(workers)), Counter[str]()
    hashed = {tenant: zlib.crc32(tenant.encode()) for tenant in tenants}
    chosen: dict[str, str] = {}
    left: list[str] = []
    for tenant in sorted(tenants, key=lambda tenant: (hashed[tenant], tenant)):
        worker = workers[hashed[tenant] % len(workers)]
        if taken[worker] < part:
            chosen[tenant], taken[worker] = worker, taken[worker] + 1
        else:
            left.append(tenant)
    for tenant in left:
        worker = min(workers, key=lambda worker: (taken[worker], worker))
        chosen[tenant], taken[worker] = worker, taken[worker] + 1
    return chosen


def claims(waiting: Sequence[str], *, workers: Sequence[str], me: str, running: Mapping[str, int], tenant_cap: int,
           worker_cap: int, free: int) -> dict[str, int]:
    """Of the tenants with work `waiting` (DBOS's search), how many items worker `me` may claim of each now, given
    its items `running` per tenant and its `free` slots of `worker_cap`, every live worker (`workers`, with `me`)
    having as many: each tenant's share is `worker_cap` x the workers / the tenants waiting, at most `tenant_cap`;
    its home worker gives it that share as far as its slots divided among its home tenants go, and the other workers
    the rest of it, in equal parts. The tenants furthest below their share come first, as many as the free slots
    take, the last of them up to a quarter of a share past its own; slots the shares leave free go to the tenants
    waiting below `tenant_cap`, in equal parts."""
    if free <= 0 or not waiting:
        return {}
    live = sorted({*workers, me})
    home = homes(waiting, live)
    fair = min(tenant_cap, worker_cap * len(live) / len(waiting))
    home_tenants = Counter(home.values())

    def from_home(worker: str) -> float:
        return min(fair, worker_cap / home_tenants[worker])

    def share(tenant: str) -> float:
        worker = home[tenant]
        return from_home(me) if worker == me else (fair - from_home(worker)) / (len(live) - 1)

    wanted = {tenant: int(share(tenant)) - running.get(tenant, 0) for tenant in waiting}  # (rounded down: the rest is
    # left free, below)
    chosen: dict[str, int] = {}
    room, slack = 0, int(fair / 4)
    # the furthest below first, ties in a new order at every poll (in DBOS's order, by the tenants' ids, the first
    # tenants took the slots left over, and their items, more in flight, ended first: bench/README.md, run AF)
    order = sorted(random.sample(list(waiting), len(waiting)), key=lambda tenant: wanted[tenant], reverse=True)
    for tenant in order:
        if wanted[tenant] <= 0 or room >= free:
            break
        # each claim is a transaction of the job engine's: one that fills the free slots left alone with up to a
        # quarter of a share more than its tenant's share takes them (that tenant then waits for the others)
        chosen[tenant] = free - room if free - room <= wanted[tenant] + slack else wanted[tenant]
        room += chosen[tenant]
    open_ = {tenant for tenant in waiting if running.get(tenant, 0) < tenant_cap}
    if room < free and open_:
        each, more = divmod(free - room, len(open_))
        for n, tenant in enumerate(tenant for tenant in order if tenant in open_):
            if each + (n < more):
                chosen[tenant] = chosen.get(tenant, 0) + each + (n < more)
    most = {tenant: min(n, tenant_cap - running.get(tenant, 0)) for tenant, n in chosen.items()}  # (never past a limit)
    return {tenant: n for tenant, n in most.items() if n > 0}


MOST_WEIGHT = 2.0  # the most a tenant weighs (`weights`)


def weights(left: Mapping[str, int]) -> dict[str, float]:
    """Each tenant's weight in the app-wide budget (`BudgetScheduler.weigh`) from the items it has `left` on the
    Microsoft queue (waiting or running): its items over the mean of the tenants with work, at least 1 and at most
    MOST_WEIGHT. Equal shares of the slots and of the budget kept a head start: a fleet change's tenants whose jobs came
    in a few seconds later stayed behind, and at the end the rate fell to 30 requests a second for each of the few left
    (bench/README.md, run AF). A tenant with more left than the others now goes faster, in proportion, so that they
    end together; the others keep the weight of a tenant with no bulk work (1), and a tenant with a small job still
    gets at least half what one with a large job gets."""
    if not left:
        return {}
    mean = sum(left.values()) / len(left)
    return {tenant: min(MOST_WEIGHT, max(1.0, n / mean)) for tenant, n in left.items() if n > 0}
