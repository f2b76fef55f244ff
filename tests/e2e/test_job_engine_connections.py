"""The job engine's own tables (DBOS's, on PostgreSQL) are reached through an engine built on core/db's terms.

DBOS's own engine sent SQLAlchemy's pre-ping at every checkout: each poll of its queues and each bulk item's claim and
end paid one more round trip (about six per item). teamsvoice now builds that engine as DBOS would (a pool of 20 and
no more, the server ending a transaction left idle for a minute, its application name) with the ping of an idle
connection only (tests/unit/test_ping_if_idle.py). On SQLite DBOS keeps its own engine on its own file. The engine's
async work (every item's statements and Microsoft requests) runs on uvloop's event loop."""

import asyncio
import copy
import threading
import types
import uuid

import pytest
import uvloop
from dbos import DBOS, SetEnqueueOptions, SetWorkflowID
from dbos._dbos import _get_dbos_instance
from sqlalchemy import event, text

from teamsvoice.domain.sbc.workflows import sync_sbc
from teamsvoice.jobs import runtime, shares
from teamsvoice.jobs.runtime import MICROSOFT_QUEUE, job_context


def test_the_job_engine_works_through_an_engine_on_core_db_terms(live) -> None:  # type: ignore[no-untyped-def]
    engine = job_context().system_engine
    if live.settings.is_sqlite:
        assert engine is None
        pytest.skip("on SQLite DBOS builds its own engine")
    assert engine is not None and _get_dbos_instance()._sys_db.engine.pool is engine.pool  # what DBOS works through
    assert (engine.pool.size(), engine.pool._max_overflow) == (20, 0)
    with engine.connect() as connection:
        # A worker that stalls inside one of the job engine's transactions does not hold its locks for ever.
        assert connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "1min"
        assert connection.execute(text("SHOW application_name")).scalar() == "dbos_transact"


def test_the_job_engines_work_runs_on_uvloop(live) -> None:  # type: ignore[no-untyped-def]
    """An item's async work runs on uvloop's loop (jobs/runtime.job_event_loop): asyncio's own loop cost a worker 11%
    more CPU for the same items (bench/README run AC)."""
    async def which_loop() -> type:
        return type(asyncio.get_running_loop())

    assert job_context().run(which_loop) is uvloop.Loop


def _remembering(installed):  # type: ignore[no-untyped-def]
    """A memo like the one the engine installed over a system database method (the same `_remembered`, over the same
    method), for this test's thread alone: the engine's own threads use the installed one meanwhile, and a read of
    theirs that ends between two of this test's steps could not change what these steps see."""
    assert installed.__wrapped__ is not installed  # the engine replaced the method at its start
    return runtime._remembered(installed.__wrapped__)


def test_a_claim_takes_the_latest_version_as_read_a_moment_ago(live, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """DBOS asks in each claim of a queue's work whether this process runs the latest registered application version;
    a process takes the answer it read for REMEMBER_SECONDS (jobs/runtime._remember_what_rarely_changes): one read
    of the versions table then, not one per claim (5.6% of a worker's CPU, bench/README run AD). A newer version that a
    release registers is seen once that time has passed."""
    system = _get_dbos_instance()._sys_db
    is_latest_version = _remembering(system._is_latest_version)
    ours = DBOS.application_version
    now = [1000.0]
    monkeypatch.setattr(runtime, "_monotonic", lambda: now[0])
    reads: list[str] = []

    def executed(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        if "application_versions" in statement and "version_timestamp DESC" in statement:  # which version is latest
            reads.append(threading.current_thread().name)

    here = threading.current_thread().name
    event.listen(system.engine, "before_cursor_execute", executed)
    try:
        assert is_latest_version(ours) is True
        assert reads.count(here) == 1
        assert all(is_latest_version(ours) for _ in range(5))
        system.create_application_version(f"{ours}-newer")  # a newer release starts, and is made the latest
        DBOS.set_latest_application_version(f"{ours}-newer")
        assert is_latest_version(ours) is True  # as read a moment ago
        assert reads.count(here) == 1
        now[0] += runtime.REMEMBER_SECONDS
        assert is_latest_version(ours) is False
        assert reads.count(here) == 2
    finally:
        event.remove(system.engine, "before_cursor_execute", executed)
        DBOS.set_latest_application_version(ours)  # this release is the latest again
    now[0] += runtime.REMEMBER_SECONDS
    assert is_latest_version(ours) is True


def test_a_queues_settings_are_read_once_a_second_and_a_change_applies(live, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """DBOS reads a queue's settings again at every poll of it, so that a change applies without a restart; a process
    takes them as read for REMEMBER_SECONDS (about 19 reads a second per worker before, each in a transaction of its
    own). A change still applies, once that time has passed."""
    system = _get_dbos_instance()._sys_db
    get_queue = _remembering(system.get_queue)
    now = [1000.0]
    monkeypatch.setattr(runtime, "_monotonic", lambda: now[0])
    reads: list[str] = []

    def executed(conn, cursor, statement, parameters, *rest) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and "queues.name =" in statement and MICROSOFT_QUEUE in str(parameters):
            reads.append(threading.current_thread().name)

    # (what the queue's polls read: its `partition_concurrency` property would read the row again)
    registered = runtime.queue(MICROSOFT_QUEUE)._partition_concurrency
    here = threading.current_thread().name
    event.listen(system.engine, "before_cursor_execute", executed)
    try:
        assert get_queue(MICROSOFT_QUEUE)._partition_concurrency == registered
        assert reads.count(here) == 1
        runtime.queue(MICROSOFT_QUEUE).set_partition_concurrency(registered + 1)  # an operator's change (read, written)
        read = reads.count(here)
        assert all(get_queue(MICROSOFT_QUEUE)._partition_concurrency == registered for _ in range(5))
        assert reads.count(here) == read  # taken as read a moment ago
        now[0] += runtime.REMEMBER_SECONDS
        assert get_queue(MICROSOFT_QUEUE)._partition_concurrency == registered + 1
    finally:
        event.remove(system.engine, "before_cursor_execute", executed)
        runtime.queue(MICROSOFT_QUEUE).set_partition_concurrency(registered)
    assert get_queue("no such queue") is None


def test_a_queues_partitions_are_searched_with_the_statement_built_at_the_first_search(live) -> None:  # type: ignore[no-untyped-def]
    """At every poll of a partitioned queue DBOS searches which partitions have work waiting, with a statement it
    built anew each time (0.7 ms of CPU a poll); the engine keeps the one DBOS built at the queue's first search and
    runs it again (jobs/runtime._search_partitions_with_the_statement_built_first). It answers what DBOS's own search
    answers, as the waiting work changes."""
    system = _get_dbos_instance()._sys_db
    name = f"teamsvoice-test-partitions-{uuid.uuid4().hex[:8]}"
    runtime.register_queue(name, partition_concurrency=4)
    # the engine replaced the method at its start: each tenant's share of the worker's claims (on the Microsoft queue only),
    # over the search with the statement kept, over DBOS's own
    dbos_search = system.get_queue_partitions.__wrapped__.__wrapped__
    here, statements = threading.get_ident(), []

    def executed(conn, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        if threading.get_ident() == here:
            statements.append(statement)

    ids: list[str] = []

    def enqueue(tenant: str) -> None:
        ids.append(f"{name}-{uuid.uuid4()}")  # recorded for another release: no worker of this one starts it, it waits
        with SetWorkflowID(ids[-1]), SetEnqueueOptions(queue_partition_key=tenant, app_version="teamsvoice-workflows-elsewhere"):
            runtime.queue(name).enqueue(sync_sbc)

    event.listen(system.engine, "before_execute", executed)
    try:
        assert system.get_queue_partitions(name) == dbos_search(name) == []
        first = statements[0]
        enqueue("tenant-a"), enqueue("tenant-b"), enqueue("tenant-b")
        assert sorted(system.get_queue_partitions(name)) == sorted(dbos_search(name)) == ["tenant-a", "tenant-b"]
        DBOS.cancel_workflow(ids[0])  # tenant-a's only work ends
        statements.clear()
        assert system.get_queue_partitions(name) == dbos_search(name) == ["tenant-b"]
        assert statements[0] is first and statements[1] is not first  # (DBOS's own builds its statement anew)
    finally:
        event.remove(system.engine, "before_execute", executed)
        for workflow_id in ids:
            DBOS.cancel_workflow(workflow_id)
    assert system.get_queue_partitions(name) == []


def test_a_worker_claims_each_tenants_share_on_the_microsoft_queue(live) -> None:  # type: ignore[no-untyped-def]
    """On the Microsoft queue the engine's partition search answers the tenants whose share this worker claims at a
    poll (jobs/shares.claims: alone, every tenant is its own, an equal share of its slots each), and each claim
    that follows takes at most its tenant's number, where DBOS's own claim takes as many as the worker's free slots
    and the tenant's limit allow. The test drives its own instance of the replacement (`runtime._claim_equal_shares`)
    over the live engine's DBOS methods, with the queue's limits for the test: 8 slots in the worker, which a poll
    may fill at once. The search also weighs the tenants in the budget by the items each has left (jobs/shares.weights):
    the tenant with three times the others' items weighs more than 1, the others 1."""
    system = _get_dbos_instance()._sys_db
    executor, version = job_context().executor_id, "teamsvoice-workflows-elsewhere"
    limits = copy.copy(system.get_queue(MICROSOFT_QUEUE))
    limits._worker_concurrency = 8
    assert shares.most_per_poll(8, limits._polling_interval_sec) == 1  # (the queue's own: one item a poll)
    limits._polling_interval_sec = shares.FILL_SECONDS  # (here: the 8 slots at one poll)
    assert limits.name == MICROSOFT_QUEUE and limits._partition_concurrency == 64
    # (the replaced search and claim: the kept statement's search over DBOS's own, and DBOS's own claim)
    mine = types.SimpleNamespace(get_queue_partitions=system.get_queue_partitions.__wrapped__,
                                 start_queued_workflows=system.start_queued_workflows.__wrapped__,
                                 get_queue=lambda name: limits if name == MICROSOFT_QUEUE else None)
    # (none of this worker's items running, as the test sees it: the live server's own may come and go meanwhile)
    idle = types.SimpleNamespace(count_for_partition=lambda queue, tenant: 0, count_for_queue=lambda queue: 0)
    weighed: list[dict[str, float]] = []
    runtime._claim_equal_shares(mine, idle, lambda weights: weighed.append(dict(weights)))
    tenants = [f"test-shares-{uuid.uuid4().hex[:8]}-{n}" for n in range(6)]
    ids: dict[str, list[str]] = {tenant: [] for tenant in tenants}
    try:
        for tenant in tenants:  # recorded for another release: no worker of this one starts them, they wait
            for _ in range(12 if tenant == tenants[-1] else 4):
                ids[tenant].append(f"{tenant}-{uuid.uuid4()}")
                with SetWorkflowID(ids[tenant][-1]), SetEnqueueOptions(queue_partition_key=tenant, app_version=version):
                    runtime.queue(MICROSOFT_QUEUE).enqueue(sync_sbc)
        waiting = mine.get_queue_partitions.__wrapped__(MICROSOFT_QUEUE)
        assert set(tenants) <= set(waiting)
        assert runtime._live_worker_ids() == [executor]  # (the live server: its database's one worker)
        answered = mine.get_queue_partitions(MICROSOFT_QUEUE)  # (jobs/shares.claims, with 8 free slots)
        assert set(tenants) <= set(answered) <= set(waiting)
        assert weighed[-1][tenants[-1]] > 1 and all(weighed[-1][tenant] == 1 for tenant in tenants[:-1]), weighed
        taken = {}
        for tenant in tenants:  # each claim, as DBOS's poll makes it: this worker's items running, its tenant's
            claimed, _ = mine.start_queued_workflows(limits, executor, version, tenant, 0, 0)
            assert set(claimed) <= set(ids[tenant]), (tenant, claimed)
            taken[tenant] = len(claimed)
        # 8 slots over 6 tenants: 1 each, 2 for the tenants that took the 2 left (at random among equals)
        assert set(taken.values()) <= {1, 2} and 6 <= sum(taken.values()) <= 8, taken
        # DBOS's own claim takes every item waiting that the worker's free slots and the tenant's limit allow
        claimed, _ = mine.start_queued_workflows.__wrapped__(limits, executor, version, tenants[0], 0, 0)
        assert len(claimed) == 4 - taken[tenants[0]]
    finally:
        for workflow_id in [workflow_id for tenant in tenants for workflow_id in ids[tenant]]:
            DBOS.cancel_workflow(workflow_id)
