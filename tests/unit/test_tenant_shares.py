"""Which tenants' work a worker claims at a poll of the Microsoft queue (jobs/shares.py): its own tenants first (each
tenant has one home worker among the live ones), the fewest of its items in flight first, as many as its free slots
need; the other tenants' once its own can take no more. DBOS enforces the limits; this only chooses what it tries."""

from teamsvoice.jobs.shares import home, partitions_to_claim

TENANTS = [f"tenant-{n:02d}" for n in range(20)]
WORKERS = ["worker-b", "worker-a"]  # (in any order: each worker sorts them alike)


def test_each_tenant_has_one_home_among_the_live_workers_and_both_get_some() -> None:
    homes = {tenant: home(tenant, sorted(WORKERS)) for tenant in TENANTS}
    assert set(homes.values()) == set(WORKERS)
    for me in WORKERS:
        chosen = partitions_to_claim(TENANTS, workers=WORKERS, me=me, running={}, cap=64, free=10_000)
        assert chosen == [t for t in TENANTS if homes[t] == me]  # its own, all of them (their slots do not cover its free)
    assert home("tenant-03", ["worker-a", "worker-b", "worker-c"]) in {"worker-a", "worker-b", "worker-c"}


def test_the_fewest_in_flight_first_as_many_as_the_free_slots_need_none_at_its_limit() -> None:
    me = "worker-a"
    own = [t for t in TENANTS if home(t, sorted(WORKERS)) == me]
    running = {tenant: 10 * n for n, tenant in enumerate(own)}  # 0, 10, 20, ... of this worker's items in flight
    running[own[0]] = 64  # at its limit: no slot left
    chosen = partitions_to_claim(TENANTS, workers=WORKERS, me=me, running=running, cap=64, free=100)
    assert chosen == own[1:4]  # 54 + 44 + 34 slots >= 100, the fewest in flight first
    assert partitions_to_claim(TENANTS, workers=WORKERS, me=me, running=running, cap=64, free=54) == own[1:2]


def test_the_other_tenants_once_its_own_have_nothing_waiting_or_no_slot_left() -> None:
    me = "worker-a"
    theirs = [t for t in TENANTS if home(t, sorted(WORKERS)) != me]
    assert partitions_to_claim(theirs, workers=WORKERS, me=me, running={}, cap=64, free=10) == theirs
    own = [t for t in TENANTS if home(t, sorted(WORKERS)) == me]
    full = {tenant: 64 for tenant in own}
    assert partitions_to_claim(TENANTS, workers=WORKERS, me=me, running=full, cap=64, free=10) == TENANTS


def test_alone_or_not_yet_live_every_tenant_is_its_own_and_nothing_changes_without_a_choice() -> None:
    running = {"tenant-01": 5}
    assert partitions_to_claim(TENANTS[:3], workers=["worker-a"], me="worker-a", running=running, cap=64, free=200) == [
        "tenant-00", "tenant-02", "tenant-01"]
    assert partitions_to_claim(TENANTS[:3], workers=WORKERS, me="worker-new", running={}, cap=64, free=100) == TENANTS[:2]
    assert partitions_to_claim(TENANTS[:1], workers=WORKERS, me="worker-a", running={}, cap=64, free=1) == TENANTS[:1]
    assert partitions_to_claim(TENANTS, workers=WORKERS, me="worker-a", running={}, cap=64, free=0) == TENANTS
