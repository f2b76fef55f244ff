"""How many of each tenant's items a worker claims at a poll of the Microsoft queue (jobs/shares.py): every tenant
with work waiting an equal share of the workers' slots, given by its home worker (one among the live ones) as far as
that one's slots go and by the others for the rest; slots the shares leave free to the tenants waiting. DBOS
enforces the limits; this only bounds what each claim takes."""

import random
from collections import Counter

from teamsvoice.jobs.shares import FILL_SECONDS, Filling, claims, homes, most_per_poll, weights

TENANTS = [f"tenant-{n:02d}" for n in range(20)]
MANY = [f"tenant-{n:02d}" for n in range(40)]
WORKERS = ["worker-b", "worker-a"]  # (in any order: each worker sorts them alike)
LIMITS = {"tenant_cap": 64, "worker_cap": 256}


def _homes(tenants: list[str], workers: list[str]) -> dict[str, str]:
    return homes(tenants, sorted(workers))


def _fleet(tenants: list[str], workers: list[str]) -> dict[str, dict[str, int]]:
    """What each worker claims at once, none of its items running and its 256 slots free."""
    return {me: claims(tenants, workers=workers, me=me, running={}, **LIMITS, free=256) for me in workers}


def _in_flight(claimed: dict[str, dict[str, int]], tenants: list[str]) -> Counter[str]:
    """Each tenant's items the workers hold once their claims are taken, at most 256 per worker (DBOS's bound), in
    the order the claims come."""
    held: Counter[str] = Counter()
    for per_tenant in claimed.values():
        room = 256
        for tenant in tenants:
            took = min(per_tenant.get(tenant, 0), room)
            held[tenant] += took
            room -= took
    return held


def test_a_fleet_changes_first_wave_gives_every_tenant_an_equal_share_from_its_home_worker() -> None:
    home = _homes(TENANTS, WORKERS)
    assert set(home.values()) == set(WORKERS)
    claimed = _fleet(TENANTS, WORKERS)
    for me, per_tenant in claimed.items():
        assert set(per_tenant) == {tenant for tenant in TENANTS if home[tenant] == me}  # (10 each: none to spare)
        assert sum(per_tenant.values()) == 256
    held = _in_flight(claimed, TENANTS)
    # 25 of 512 each (25.6 rounded down), the last claim of each worker the 6 slots left as well (a quarter of a share)
    assert sorted(held.values()) == [25] * 18 + [31] * 2, held


def test_every_worker_is_home_to_as_many_tenants_the_same_answer_in_every_worker() -> None:
    for tenants, workers, parts in ((MANY, ["worker-a", "worker-b"], [20, 20]), (MANY[:21], ["w-1", "w-2"], [10, 11]),
                                    (MANY[:7], ["w-1", "w-2", "w-3"], [2, 2, 3]), (MANY[:2], ["w-1", "w-2", "w-3"], [0, 1, 1])):
        answer = homes(tenants, workers)
        assert set(answer) == set(tenants)
        assert sorted(Counter(answer.values())[worker] for worker in workers) == parts
        shuffled = random.Random(7).sample(tenants, len(tenants))
        assert homes(shuffled, workers) == answer  # (whatever order DBOS's search answers them in)


def test_a_worker_home_to_one_tenant_more_than_the_other_leaves_the_rest_of_their_shares_to_it() -> None:
    workers = ["worker-a", "worker-b"]
    tenants = MANY[:21]  # 24.4 items each of 512: 11 tenants at home on one worker (23.3 each), 10 on the other
    home = homes(tenants, workers)
    fuller = Counter(home.values()).most_common(1)[0][0]
    other = next(worker for worker in workers if worker != fuller)
    claimed = _fleet(tenants, workers)
    assert {tenant for tenant in claimed[fuller]} == {tenant for tenant in tenants if home[tenant] == fuller}
    helped = set(claimed[other]) - {tenant for tenant in tenants if home[tenant] == other}
    # (the other makes up the rest of their shares: 1 each, 24.4 - 23.3, its last claim the slots it has left)
    assert helped and all(home[tenant] == fuller for tenant in helped)
    assert sum(claimed["worker-a"].values()) == sum(claimed["worker-b"].values()) == 256
    held = _in_flight(claimed, tenants)
    # (shares rounded down; each worker's last claim may give its tenant up to a quarter of a share more: 6 here)
    assert set(held) == set(tenants) and min(held.values()) >= 23 and max(held.values()) <= 24 + 2 * 6, held


def test_the_tenants_furthest_below_their_share_first_as_many_as_the_free_slots_take_none_at_it() -> None:
    me = "worker-a"
    own = [t for t in TENANTS if _homes(TENANTS, WORKERS)[t] == me]
    running = {tenant: 24 for tenant in own} | {own[0]: 25, own[1]: 20, own[2]: 30}  # (a share here: 25.6 rounded down)
    # the furthest below first (5), then one of the next (1 below each) takes the 7 slots left: its share and 6 more
    takers = Counter[str]()
    for _ in range(200):
        per_tenant = claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=12)
        assert per_tenant.pop(own[1]) == 5 and list(per_tenant.values()) == [7] and set(per_tenant) <= set(own[3:])
        takers.update(per_tenant)
    assert set(takers) == set(own[3:])  # (ties in a new order at each poll: not always the first tenant's id)
    per_tenant = claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=13)
    assert per_tenant.pop(own[1]) == 5 and sorted(per_tenant.values()) == [1, 7] and set(per_tenant) <= set(own[3:])
    # a claim is a transaction: the tenant furthest below takes the free slots alone when a quarter of a share more
    # than its share (6 here) covers them
    assert claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=10) == {own[1]: 10}
    assert claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=3) == {own[1]: 3}


def test_slots_the_shares_leave_free_go_to_the_tenants_waiting_and_a_tenant_is_never_given_past_its_limit() -> None:
    # two tenants, one at home on each worker: 64 each (their limit); each worker's spare slots to both, as DBOS allows
    two = TENANTS[:2]
    claimed = _fleet(two, WORKERS)
    assert claimed["worker-a"] == claimed["worker-b"] == {two[0]: 64, two[1]: 64}  # (DBOS then refuses past 64 in all)
    # tenants whose home worker hangs while it beats: the other's spare slots go to their work
    four = TENANTS[:4]
    home = _homes(four, WORKERS)
    mine, theirs = [t for t in four if home[t] == "worker-a"], [t for t in four if home[t] == "worker-b"]
    per_tenant = claims(four, workers=WORKERS, me="worker-a", running={t: 64 for t in mine}, **LIMITS, free=128)
    assert per_tenant == {tenant: 64 for tenant in theirs}  # (its own at their limit: none)


def test_alone_or_not_yet_live_or_without_free_slots() -> None:
    # alone: 64 each (their limit), less what runs; no more (13 slots stay free)
    alone = claims(TENANTS[:3], workers=["worker-a"], me="worker-a", running={"tenant-01": 5}, **LIMITS, free=200)
    assert alone == {"tenant-00": 64, "tenant-01": 59, "tenant-02": 64}, alone
    # a worker not yet among the live ones counts itself in
    new = claims(TENANTS, workers=WORKERS, me="worker-new", running={}, **LIMITS, free=256)
    assert sum(new.values()) >= 256
    assert claims(TENANTS, workers=WORKERS, me="worker-a", running={}, **LIMITS, free=0) == {}
    assert claims([], workers=WORKERS, me="worker-a", running={}, **LIMITS, free=10) == {}


def test_a_worker_fills_its_slots_from_idle_over_seconds_however_fast_its_items_end() -> None:
    assert most_per_poll(384, 0.25) == 24  # (96 items a second: its 384 slots in 4 s)
    assert most_per_poll(384, FILL_SECONDS) == 384
    assert most_per_poll(10, 0.25) == 1  # (at least one)
    for ending in (0, 12, 24):  # items that end between two polls
        filling, running, polls = Filling(), 0, 0
        while running < 384:
            running = max(0, running - ending)
            free = filling.free(running, 384, 0.25)
            assert running + free <= 24 * (polls + 1), (ending, polls, running, free)  # (never past its ceiling)
            filling.claimed(free)
            running, polls = running + free, polls + 1
            assert polls <= 16, (ending, running)  # (full in 16 polls, 4 s, items ending or not)
        assert filling.free(384, 384, 0.25) == 0
        assert filling.free(284, 384, 0.25) == 100  # full: 100 items ended, 100 claimed at once
    # its load falls to 10 items, nothing more waiting: the ceiling follows it down, and grows again a poll's worth at a
    # time when work comes (a worker that ran little fills again from there; an idle one from nothing)
    assert filling.free(10, 384, 0.25) == 374  # (it held 284 after the poll before)
    filling.claimed(0)
    assert filling.free(10, 384, 0.25) == 34  # (2 x 10 + 24)
    filling.claimed(0)
    assert filling.free(10, 384, 0.25) == 34
    filling.claimed(34)
    assert filling.free(44, 384, 0.25) == 24  # (68)
    assert Filling().free(0, 384, 0.25) == 24
    # a poll's claims never pass it: over 20 tenants, the tenant furthest below its share takes the 16 (256 slots)
    per_tenant = claims(TENANTS, workers=WORKERS, me="worker-a", running={}, **LIMITS, free=Filling().free(0, 256, 0.25))
    assert sum(per_tenant.values()) == 16 and len(per_tenant) == 1, per_tenant


def test_tenants_with_more_work_left_weigh_more_in_the_budget() -> None:
    """A tenant weighs its items left over the mean, at least 1 and at most 2: those behind go faster, in proportion,
    so that a fleet change's tenants end together; none weighs less than a tenant without bulk work, nor more than
    twice as much."""
    assert weights({}) == {}
    assert weights({"a": 100}) == {"a": 1.0}
    assert weights({"a": 100, "b": 100, "c": 100}) == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert weights({"late": 250, "early-1": 200, "early-2": 150}) == {"late": 1.25, "early-1": 1.0, "early-2": 1.0}
    assert weights({"big": 3000, "small": 1000}) == {"big": 1.5, "small": 1.0}
    assert weights({"big": 5000, "small": 10, "other": 10}) == {"big": 2.0, "small": 1.0, "other": 1.0}  # (not 2.99)
