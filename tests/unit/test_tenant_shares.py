"""How many of each tenant's items a worker claims at a poll of the Microsoft queue (jobs/shares.py): every tenant
with work waiting an equal share of the workers' slots, given by its home worker (one among the live ones) as far as
that one's slots go and by the others for the rest; slots the shares leave free to the tenants waiting. DBOS
enforces the limits; this only bounds what each claim takes."""

from collections import Counter

from teamsvoice.jobs.shares import claims, home

TENANTS = [f"tenant-{n:02d}" for n in range(20)]
MANY = [f"tenant-{n:02d}" for n in range(40)]
WORKERS = ["worker-b", "worker-a"]  # (in any order: each worker sorts them alike)
LIMITS = {"tenant_cap": 64, "worker_cap": 256}


def _homes(tenants: list[str], workers: list[str]) -> dict[str, str]:
    return {tenant: home(tenant, sorted(workers)) for tenant in tenants}


def _fleet(tenants: list[str], workers: list[str], running: dict[str, dict[str, int]] | None = None) -> dict[str, dict[str, int]]:
    """What each worker claims at once, each with its items `running` (none by default) and the rest of its slots free."""
    running = running or {}
    return {me: claims(tenants, workers=workers, me=me, running=running.get(me, {}), **LIMITS,
                       free=256 - sum(running.get(me, {}).values())) for me in workers}


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
    homes = _homes(TENANTS, WORKERS)
    assert set(homes.values()) == set(WORKERS)
    claimed = _fleet(TENANTS, WORKERS)
    for me, per_tenant in claimed.items():
        assert set(per_tenant) == {tenant for tenant in TENANTS if homes[tenant] == me}  # (10 each here: none to spare)
        assert sum(per_tenant.values()) == 256
    held = _in_flight(claimed, TENANTS)
    # 25 of 512 each (25.6 rounded down), the last claim of each worker the 6 slots left as well (a quarter of a share)
    assert sorted(held.values()) == [25] * 18 + [31] * 2, held


def test_a_worker_with_more_home_tenants_than_its_slots_serve_leaves_the_rest_of_their_shares_to_the_others() -> None:
    workers = ["worker-a", "worker-b"]
    homes = _homes(MANY, workers)
    tenants = [t for t in MANY if homes[t] == "worker-a"][:4] + [t for t in MANY if homes[t] == "worker-b"][:12]
    # 16 tenants: 32 items each of 512; worker-a serves its 4 with 32 each and worker-b's 12 with what worker-b's 256
    # slots (21.3 each) leave of their 32
    claimed = _fleet(tenants, workers)
    a_own = {t: n for t, n in claimed["worker-a"].items() if homes[t] == "worker-a"}
    a_theirs = {t: n for t, n in claimed["worker-a"].items() if homes[t] == "worker-b"}
    # (shares rounded down: 32, 21.3 -> 21 and 10.7 -> 10; the last claim of each worker takes what slots are left)
    assert len(a_own) == 4 and set(a_own.values()) == {32} and len(a_theirs) == 12 and min(a_theirs.values()) == 10
    assert len(claimed["worker-b"]) == 12 and min(claimed["worker-b"].values()) == 21
    assert sum(claimed["worker-a"].values()) == sum(claimed["worker-b"].values()) == 256
    held = _in_flight(claimed, tenants)
    # (each worker's last claim may give its tenant up to a quarter of a share more: 8 here)
    assert set(held) == set(tenants) and min(held.values()) >= 31 and max(held.values()) <= 32 + 2 * 8, held


def test_the_tenants_furthest_below_their_share_first_as_many_as_the_free_slots_take_none_at_it() -> None:
    me = "worker-a"
    own = [t for t in TENANTS if _homes(TENANTS, WORKERS)[t] == me]
    running = {tenant: 24 for tenant in own} | {own[0]: 25, own[1]: 20, own[2]: 30}  # (a share here: 25.6 rounded down)
    # the furthest below first (5), then the next (1 below) takes the 7 slots left: its share and 6 more
    assert claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=12) == {own[1]: 5, own[3]: 7}
    assert claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=13) == {own[1]: 5, own[3]: 1, own[4]: 7}
    # a claim is a transaction: the tenant furthest below takes the free slots alone when a quarter of a share more
    # than its share (6 here) covers them
    assert claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=10) == {own[1]: 10}
    assert claims(TENANTS, workers=WORKERS, me=me, running=running, **LIMITS, free=3) == {own[1]: 3}


def test_slots_the_shares_leave_free_go_to_the_tenants_waiting_and_a_tenant_is_never_given_past_its_limit() -> None:
    # two tenants, both of worker-a: 64 each (their limit) from it; worker-b's free slots go to them as DBOS allows
    homes = _homes(TENANTS, WORKERS)
    two = [t for t in TENANTS if homes[t] == "worker-a"][:2]
    claimed = _fleet(two, WORKERS)
    assert claimed["worker-a"] == claimed["worker-b"] == {two[0]: 64, two[1]: 64}  # (DBOS then refuses past 64 in all)
    # a tenant whose home worker hangs while it beats: the other's spare slots go to its work
    theirs = [t for t in TENANTS if homes[t] == "worker-b"][:3]
    mine = [t for t in TENANTS if homes[t] == "worker-a"][:1]
    per_tenant = claims(mine + theirs, workers=WORKERS, me="worker-a", running={mine[0]: 64}, **LIMITS, free=192)
    assert set(per_tenant) == set(theirs) and sum(per_tenant.values()) == 192  # (its own at its limit: none)


def test_alone_or_not_yet_live_or_without_free_slots() -> None:
    # alone: 64 each (their limit), less what runs; no more (13 slots stay free)
    alone = claims(TENANTS[:3], workers=["worker-a"], me="worker-a", running={"tenant-01": 5}, **LIMITS, free=200)
    assert alone == {"tenant-00": 64, "tenant-01": 59, "tenant-02": 64}, alone
    # a worker not yet among the live ones counts itself in
    new = claims(TENANTS, workers=WORKERS, me="worker-new", running={}, **LIMITS, free=256)
    assert sum(new.values()) >= 256
    assert claims(TENANTS, workers=WORKERS, me="worker-a", running={}, **LIMITS, free=0) == {}
    assert claims([], workers=WORKERS, me="worker-a", running={}, **LIMITS, free=10) == {}
