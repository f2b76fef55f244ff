"""Which tenants' work a worker claims at a poll of the Microsoft queue: its own tenants first, and of those the ones
with the fewest of its items in flight.

DBOS claims a partitioned queue's work partition by partition (a partition is a Microsoft tenant), each poll in a
random order, up to a tenant's slots across the workers (`TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY`) and the worker's
own (`TEAMSVOICE_MICROSOFT_WORKER_ITEMS`). At random, a fleet change's first wave went to a few tenants (64 items
each), which kept their head start: the tenants of a 20-tenant change ended 20-30 s apart, and as they ended the
rate fell to 30 requests a second for each tenant left; and a tenant's items were spread over every worker, each
sending its own share of the tenant's calls. Here each tenant has a home worker among the live ones (a hash of its
id), which claims its items first: a tenant's requests share each `$batch` and policy grant of one worker. A worker
gives its free slots to its tenants with the fewest of its items in flight, so that they go on at the same pace and
end together; once its own tenants have nothing waiting (or have every slot they may), it claims the other tenants'
work as before. DBOS still enforces every limit: this only chooses, and orders, the partitions it tries
(bench/README.md, run AE)."""

import zlib
from collections.abc import Mapping, Sequence


def home(tenant: str, workers: Sequence[str]) -> str:
    """The live worker (of `workers`, sorted) whose tenant this is: the same answer in every worker."""
    return workers[zlib.crc32(tenant.encode()) % len(workers)]


def partitions_to_claim(waiting: Sequence[str], *, workers: Sequence[str], me: str, running: Mapping[str, int],
                        cap: int, free: int) -> list[str]:
    """Of the tenants with work `waiting` (DBOS's search), those worker `me` tries at this poll: its own tenants (all
    of them when it is not among the live `workers`, or the only one), the fewest of its items `running` first, those
    with a slot left under `cap`, as many as it takes for their slots to cover the worker's `free` ones; the other
    tenants' when none of its own can take more."""
    live = sorted(workers)
    if len(waiting) <= 1 or free <= 0:
        return list(waiting)
    own = [tenant for tenant in waiting if me not in live or home(tenant, live) == me]
    chosen, room = [], 0
    for tenant in sorted(own, key=lambda tenant: running.get(tenant, 0)):
        left = cap - running.get(tenant, 0)
        if left <= 0:
            continue
        chosen.append(tenant)
        room += left
        if room >= free:
            break
    return chosen or list(waiting)
