"""The job engine's own tables (DBOS's, on PostgreSQL) are reached through an engine built on core/db's terms.

DBOS's own engine sent SQLAlchemy's pre-ping at every checkout: each poll of its queues and each bulk item's claim and
end paid one more round trip (about six per item). teamsvoice now builds that engine as DBOS would (a pool of 20 and
no more, the server ending a transaction left idle for a minute, its application name) with the ping of an idle
connection only (tests/unit/test_ping_if_idle.py). On SQLite DBOS keeps its own engine on its own file. The engine's
async work (every item's statements and Microsoft requests) runs on uvloop's event loop."""

import asyncio
import threading

import pytest
import uvloop
from dbos import DBOS
from dbos._dbos import _get_dbos_instance
from sqlalchemy import event, text

from teamsvoice.jobs import runtime
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
