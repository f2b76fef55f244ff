"""The durable job engine (DBOS Transact) and what job steps need.

Every workflow is *enqueued*, never run in the caller's process: `teamsvoice api` processes only enqueue,
`teamsvoice worker` processes (and the embedded `serve`) dequeue. Two queues:
- `JOBS_QUEUE` for whole jobs (a bulk job's parent, webhooks, the onboarding wizard, syncs);
- `MICROSOFT_QUEUE` for work items that call one Microsoft tenant, partitioned by that tenant, so that the
  per-tenant concurrency and the app-wide start rate hold across every worker process together (DBOS
  enforces both in the system database);
- `INTERACTIVE_QUEUE`, the same for the items of a job of at most `INTERACTIVE_ITEMS` (a one-user change
  someone waits for), polled more often: they never wait for a slot that a bulk job of the tenant holds.

Each process has its own executor id and a heartbeat row (`job_executors`). A worker that stops cleanly
marks itself stopped; one that dies stops beating. Any live worker then recovers the dead one's workflows
(DBOS re-enqueues them; a duplicate recovery matches nothing), so no manual step is needed.

Shutdown (`stop_jobs`): steps stop taking new work, in-flight Microsoft calls get a few seconds, and what
is unfinished stays PENDING for recovery. A step that is stopped is *parked* (its thread waits until the
process exits) rather than failed: a step that raised would be recorded as failed and replayed as such.
"""

import asyncio
import functools
import importlib
import itertools
import json
from datetime import datetime, timedelta
import logging
import os
import random
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anyio
import httpx
from dbos import DBOS, DBOSConfig, Queue, SetEnqueueOptions, SetWorkflowID
from sqlalchemy import Engine, Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import (create_blocking_engine, create_engine as create_async_engine, is_transient_database_error,
                                 session_factory, sync_transaction)
from teamsvoice.core.errors import DomainError, UpstreamError, describe, describe_unexpected
from teamsvoice.core.metrics import record_job_retry, set_queue_depth
from teamsvoice.core.security import Keyring
from teamsvoice.domain.audit import context as audit  # importing the package installs the audit recorder
from teamsvoice.jobs import repository, shares, watch
from teamsvoice.jobs.models import JobExecutor
from teamsvoice.microsoft.budget import job_scope as budget_job_scope
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.settings import Settings

Role = Literal["all", "api", "worker"]
JOBS_QUEUE = "teamsvoice-jobs"
MICROSOFT_QUEUE = "teamsvoice-microsoft"
INTERACTIVE_QUEUE = "teamsvoice-microsoft-interactive"
INTERACTIVE_ITEMS = 5  # a job of at most this many items is someone waiting for it: INTERACTIVE_QUEUE
HEARTBEAT_SECONDS = 2.0
ITEM_MARK = "-item-"  # a job's item workflows are named `<job workflow id>-item-<key>`
# The version DBOS records on every workflow. Raise it only when a workflow's sequence of steps changes in a
# way that a release cannot replay; unfinished work of an older generation is then not resumed.
WORKFLOW_GENERATION = 1
T = TypeVar("T")
log = logging.getLogger("teamsvoice.jobs")


@dataclass
class JobContext:
    settings: Settings
    keyring: Keyring
    engine: Engine
    http: httpx.Client
    executor_id: str
    role: Role
    loop: asyncio.AbstractEventLoop
    async_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # The engine's one Microsoft connector, for job steps (`connector`); None in an `api`-role engine, which runs no
    # step: it only enqueues (`start_jobs`), and building one resolved cloud mode's Teams PowerShell on a host that
    # needs none (an admin host's `teamsvoice bulk import`, `jobs retry`, `jobs cancel`).
    microsoft_connector: MicrosoftConnector | None
    loop_thread_id: int | None = None  # where a blocked loop is found (jobs/watch.py)
    system_engine: Engine | None = None  # DBOS's, on PostgreSQL (`_system_engine`); DBOS builds its own on SQLite

    @property
    def connector(self) -> MicrosoftConnector:
        """The engine's Microsoft connector (shared pool, token cache, budget), for the job steps of a worker."""
        if self.microsoft_connector is None:
            raise RuntimeError(f"The job engine of role {self.role!r} has no Microsoft connector: it only enqueues, "
                               f"and job steps run in `teamsvoice serve` and `teamsvoice worker` processes")
        return self.microsoft_connector

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Runs async work on the engine's one event loop (shared pool, token cache and per-tenant limits)
        and waits for it; called from DBOS's step threads. A step still waiting after minutes says in the log what
        its work awaits (jobs/watch.py)."""
        # The step's job (and its submitter) stays the actor of what the work writes (domain/audit).
        scope = audit.current() or audit.job_scope()
        task: list[asyncio.Task[Any]] = []

        async def tracked() -> T:
            task.append(asyncio.current_task())  # type: ignore[arg-type]
            return await _call(work, scope)

        future = asyncio.run_coroutine_threadsafe(tracked(), self.loop)
        return watch.wait_reporting(future, self.loop, task, self.loop_thread_id, f"job step of {_workflow_named()}")


def _workflow_named() -> str:
    try:
        return f"workflow {DBOS.workflow_id}" if DBOS.workflow_id else "no workflow"
    except Exception:  # noqa: BLE001 - only a label for the log
        return "no workflow"


async def _call(work: Callable[[], Awaitable[T]], scope: audit.AuditScope | None = None) -> T:
    with audit.acting(scope):
        return await work()


_context: JobContext | None = None
_stopping = threading.Event()
_in_flight = 0
_in_flight_lock = threading.Lock()
_enqueuing = 0  # workflows' enqueues under way (`before_dbos_goes`), counted under _in_flight_lock
ENQUEUE_WAIT_SECONDS = 10.0  # the longest a stop waits for them (each is one database write)
_heartbeat_stop = threading.Event()
_heartbeat_threads: list[threading.Thread] = []

# Every module that defines DBOS workflows; add yours here. A module may define `resume_orphaned()`.
WORKFLOW_MODULES = ["teamsvoice.jobs.webhooks", "teamsvoice.domain.calling.workflows", "teamsvoice.jobs.fusion_wizard",
                    "teamsvoice.domain.teams_users.workflows", "teamsvoice.domain.voice_state.workflows"]
WORKFLOW_MODULES.append("teamsvoice.domain.sbc.workflows")  # the SBC sync (issue 14)
WORKFLOW_MODULES.append("teamsvoice.domain.audit.workflows")  # the audit log's retention (issue 13)


def job_context() -> JobContext:
    if _context is None:
        raise RuntimeError("The job engine is not started")
    return _context


def system_database_url(settings: Settings) -> str:
    if settings.is_sqlite:
        return f"sqlite:///{(settings.data_dir / 'teamsvoice-jobs.sqlite3').resolve()}"
    return settings.effective_database_url


def _system_engine(settings: Settings) -> Engine | None:
    """DBOS's engine on PostgreSQL, built as DBOS builds its own (20 connections and no more, 30 s to wait for one,
    10 s to connect, a transaction left idle 60 s ended by the server, its application name) but on core/db's
    terms: a connection is pinged only when it lay idle. DBOS's own pinged at every checkout: its queues' polls and
    each item's claim and end, about six round trips per bulk item (bench/README run Y). None on SQLite: DBOS's own
    engine there (its file and pragmas)."""
    if settings.is_sqlite:
        return None
    return create_blocking_engine(system_database_url(settings), pool_size=20, max_overflow=0, pool_timeout=30, connect_args={
        "application_name": "dbos_transact", "connect_timeout": 10, "options": "-c idle_in_transaction_session_timeout=60000"})


def _write_ahead_log(settings: Settings) -> None:
    """SQLite: the job engine's database keeps a write-ahead log, as the application's does (core/db). DBOS
    leaves SQLite's default rollback journal, which syncs the disk two or three times per commit and blocks
    readers while one writes; a bulk item commits several times there (enqueued, started, its step, ended).
    The mode is stored in the file, so the `teamsvoice` commands that enqueue use it too."""
    if settings.is_sqlite:
        with closing(sqlite3.connect(system_database_url(settings).removeprefix("sqlite:///"), timeout=30)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")


def new_executor_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def job_event_loop() -> asyncio.AbstractEventLoop:
    """The loop the job engine's items run on (its own thread): uvloop's, installed with teamsvoice wherever uvloop
    builds (not on Windows), else asyncio's. An item's work is mostly waiting on sockets (PostgreSQL through psycopg,
    Microsoft through httpx), and asyncio's selector loop and transports in Python were a seventh of a worker's CPU:
    with uvloop a fleet bulk change took 11% less worker CPU for the same items (bench/README run AC)."""
    try:
        import uvloop
    except ImportError:  # (no build for this platform: asyncio's loop does the same, with more CPU)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def start_jobs(settings: Settings, keyring: Keyring, *, role: Role = "all") -> None:
    """Launches DBOS with a fresh executor id. Workers (and `all`) listen on the queues, beat, and recover
    the work of executors that died; `api` processes only enqueue: they listen on none of teamsvoice's queues
    (`DBOS.listen_queues([])`; DBOS's own internal queue holds only workflows started without a queue, which teamsvoice
    never starts, and recovery finds none under a fresh executor id), so they run no step and build no Microsoft
    connector (`JobContext.connector` says so), nor claim work (`_claim_equal_shares` is a worker's)."""
    global _context
    # Workflows must be registered before launch, so that recovery finds them.
    for name in WORKFLOW_MODULES:
        importlib.import_module(name)
    _stopping.clear()
    _heartbeat_stop.clear()
    executor_id = new_executor_id()
    loop = job_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="teamsvoice-jobs-loop", daemon=True)
    loop_thread.start()
    async_engine = create_async_engine(settings.effective_database_url, pool_size=settings.database_pool_size)
    _context = JobContext(
        settings=settings, keyring=keyring, engine=create_blocking_engine(settings.effective_database_url),
        http=httpx.Client(timeout=httpx.Timeout(15.0), follow_redirects=False), executor_id=executor_id, role=role,
        loop=loop, async_engine=async_engine, sessions=session_factory(async_engine),
        microsoft_connector=(None if role == "api" else
                             asyncio.run_coroutine_threadsafe(_connector(settings), loop).result()),
        loop_thread_id=loop_thread.ident,
        system_engine=_system_engine(settings),
    )
    _write_ahead_log(settings)
    config: DBOSConfig = {
        "name": "teamsvoice",
        "system_database_url": system_database_url(settings),
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
        "executor_id": executor_id,
        # DBOS recovers only workflows of the running application version; by default that is a hash of
        # the code, so an upgrade would strand every unfinished job. Workflows here are thin and their steps
        # idempotent, so work started by one release is finished by the next (see README, Upgrades).
        "application_version": f"teamsvoice-workflows-{WORKFLOW_GENERATION}",
    }
    if _context.system_engine is not None:
        config["system_database_engine"] = _context.system_engine
    DBOS(config=config)
    if role == "api":
        DBOS.listen_queues([])
    DBOS.launch()
    _replace_system_database_methods(claims=role != "api")
    _queues.clear()
    register_queue(JOBS_QUEUE, polling_interval_sec=0.2)
    tenant_limits: dict[str, Any] = {
        "partition_concurrency": settings.microsoft_tenant_concurrency, "worker_concurrency": settings.microsoft_worker_items,
        "limiter": ({"limit": settings.microsoft_app_rate_per_second, "period": 1.0}
                    if settings.microsoft_app_rate_per_second else None)}
    # Each poll claims work partition by partition, one transaction per tenant with waiting items (20 tenants:
    # 20 transactions per poll per worker); a quarter second keeps that cost a quarter of what 0.1 s made it,
    # for at most 0.25 s before an item starts (its request then waits for the budget anyway).
    register_queue(MICROSOFT_QUEUE, **tenant_limits, polling_interval_sec=0.25)
    # A small job's items: empty most of the time (a poll then reads which partitions wait, nothing more), so a poll
    # every 0.1 s costs little, and they start without waiting for one of the tenant's slots that a 5,000-user job
    # keeps full (in MICROSOFT_QUEUE a one-user change's item waited 0.02-0.77 s to start, 2026-12-04).
    register_queue(INTERACTIVE_QUEUE, **tenant_limits, polling_interval_sec=0.1)
    if role != "api":
        _beat(executor_id, role)
        # On SQLite this process is the only worker of its data directory (`serve` holds the directory's lock;
        # `api` and `worker` refuse SQLite): every other executor recorded there has ended, and its unfinished
        # work resumes now rather than once its heartbeat is `job_executor_timeout_seconds` old.
        recover_dead_executors(all_others=settings.is_sqlite)
        # Two threads: the beat never waits behind a recovery (re-enqueueing a dead worker's thousand workflows
        # takes seconds), or this live process would itself look dead to the others and to `teamsvoice doctor`.
        _heartbeat_threads[:] = [
            threading.Thread(target=_heartbeat_loop, args=(executor_id, role), name="teamsvoice-heartbeat", daemon=True),
            threading.Thread(target=_housekeeping_loop, name="teamsvoice-recovery", daemon=True)]
        for thread in _heartbeat_threads:
            thread.start()


def _replace_system_database_methods(*, claims: bool) -> None:
    """The DBOS system database's methods the engine replaces at each start (internals of the pinned dbos release):
    `_insert_rows` (`_insert_rows_with_one_statement_per_shape`), `_is_latest_version` and `get_queue`
    (`_remember_what_rarely_changes`), `get_queue_partitions` (`_search_partitions_with_the_statement_built_first`,
    then `_claim_equal_shares`) and `start_queued_workflows` (`_claim_equal_shares`). `claims`: the engine claims work
    from the Microsoft queues (not an `api` role's: it weighs tenants in a budget it has none of)."""
    from dbos._dbos import _get_dbos_instance

    dbos = _get_dbos_instance()
    system = dbos._sys_db
    _insert_rows_with_one_statement_per_shape(system)
    _remember_what_rarely_changes(system)
    _search_partitions_with_the_statement_built_first(system)
    if claims:
        _claim_equal_shares(system, dbos._active_workflows_set, job_context().connector.budget.weigh)


def _insert_rows_with_one_statement_per_shape(system: Any) -> None:
    """DBOS writes many rows at once (a page of a bulk job's items: `enqueue_many_for_tenant`) through one hook of its
    system database, `_insert_rows(conn, build, rows)`, the one its sharded database overrides: by default
    `build(rows)`, a multi-row VALUES that SQLAlchemy cannot cache, so it compiled every page anew: 0.67 ms of a
    worker's CPU per item (167 ms for a page of 250), all of it as a fleet change starts (bench/README run AD). Here
    the same rows go to the same INSERT built without values (`build([])`), executed with the rows as parameters:
    compiled once per process, sent in as few round trips (SQLAlchemy's insertmanyvalues), the same rows written and
    the same RETURNING rows answered. Rows of different columns (never from DBOS 3.4's callers) go DBOS's way."""
    built_with_rows = system._insert_rows

    def insert_rows(conn: Any, build: Callable[[list[dict[str, Any]]], Any], rows: list[dict[str, Any]], *,
                    returning: bool = False) -> list[Any]:
        if not rows or any(row.keys() != rows[0].keys() for row in rows):
            return built_with_rows(conn, build, rows, returning=returning)  # type: ignore[no-any-return]
        return repository.insert_many(conn, build([]), rows, returning=returning)

    system._insert_rows = insert_rows


def _search_partitions_with_the_statement_built_first(system: Any) -> None:
    """At every poll of a partitioned queue (the Microsoft queues: each poll of each worker, about 14 a second), DBOS
    searches which of its partitions have work waiting (`get_queue_partitions`: a recursive CTE it builds anew each
    time, and SQLAlchemy then keys it anew to find its compiled form: 0.7 ms of CPU a poll, most of it while nothing
    waits). The statement depends on nothing but the queue's name (its filters name this application, the waiting
    status and the queue), so the one DBOS builds at a queue's first search is kept and run again, in a
    transaction of its own as DBOS runs it, with DBOS's own retry of a lost connection (`db_retry`)."""
    from dbos._sys_db import db_retry
    from sqlalchemy import event

    search = system.get_queue_partitions
    built: dict[str, Any] = {}

    def first_search(queue_name: str) -> list[str]:
        here, executed = threading.get_ident(), []

        def seen(conn: Any, statement: Any, *rest: Any) -> None:
            if threading.get_ident() == here:
                executed.append(statement)

        event.listen(system.engine, "before_execute", seen)
        try:
            partitions: list[str] = search(queue_name)
        finally:
            event.remove(system.engine, "before_execute", seen)
        if len(executed) == 1:  # (the search is one statement; anything else is searched DBOS's way each time)
            built[queue_name] = executed[0]
        return partitions

    @db_retry(sys_db=system)
    def get_queue_partitions(queue_name: str) -> list[str]:
        statement = built.get(queue_name)
        if statement is None:
            return first_search(queue_name)
        return repository.first_column(system.engine, statement)

    get_queue_partitions.__wrapped__ = search  # type: ignore[attr-defined]
    system.get_queue_partitions = get_queue_partitions


def _claim_equal_shares(system: Any, active: Any, weigh: Callable[[Mapping[str, float]], None]) -> None:
    """At a poll of the Microsoft queue, a worker claims of each tenant with work waiting at most what its share of the
    workers' slots leaves (`jobs/shares.claims`; the live workers read at most once per REMEMBER_SECONDS): the search
    of the queue's partitions works the shares out, and each claim that follows it in the poll takes at most its
    tenant's. DBOS bounds a claim by the worker's free slots (`worker_concurrency` less `local_running_count`), so a
    claim is given the count that leaves it its tenant's share (and the worker's slots fill over seconds, from idle:
    `shares.Filling`). The search also weighs the tenants in the Microsoft budget by the items each has left (`weigh`:
    the connector's `BudgetScheduler.weigh`; `shares.weights`, worked out at most once per REMEMBER_SECONDS). Other
    queues are searched and claimed as DBOS does. `active`: DBOS's set of this process's running workflows."""
    search, claim = system.get_queue_partitions, system.start_queued_workflows
    live_workers = _remembered(lambda _: _live_worker_ids())
    weights_now = _remembered(lambda queue_name: shares.weights(_items_per_tenant(queue_name)))
    shares_of: dict[str, dict[str, int]] = {}  # queue -> tenant -> most to claim at this poll
    filling: dict[str, shares.Filling] = {}  # queue -> how many items this worker may hold now

    def get_queue_partitions(queue_name: str) -> list[str]:
        waiting: list[str] = search(queue_name)
        limits = system.get_queue(queue_name) if queue_name == MICROSOFT_QUEUE else None  # (as the polls take them)
        if limits is None or limits._worker_concurrency is None:
            return waiting
        weigh(weights_now(queue_name))
        shares_of[queue_name] = shares.claims(
            waiting, workers=live_workers("workers"), me=job_context().executor_id,
            running={tenant: active.count_for_partition(queue_name, tenant) for tenant in waiting},
            tenant_cap=limits._partition_concurrency or sys.maxsize, worker_cap=limits._worker_concurrency,
            free=filling.setdefault(queue_name, shares.Filling()).free(
                active.count_for_queue(queue_name), limits._worker_concurrency, limits._polling_interval_sec))
        return list(shares_of[queue_name])

    def start_queued_workflows(queue: Any, executor_id: str, app_version: str, partition: str | None,
                               local_running_count: int = 0, *rest: Any, **options: Any) -> Any:
        most = shares_of.get(queue.name, {}).get(partition) if partition is not None else None
        if most is not None and queue._worker_concurrency is not None:
            local_running_count = max(local_running_count, queue._worker_concurrency - most)
        answer = claim(queue, executor_id, app_version, partition, local_running_count, *rest, **options)
        if queue.name in filling:
            filling[queue.name].claimed(len(answer[0]))  # (DBOS's answer: the workflows claimed, why it stopped)
        return answer

    get_queue_partitions.__wrapped__ = search  # type: ignore[attr-defined]
    start_queued_workflows.__wrapped__ = claim  # type: ignore[attr-defined]
    system.get_queue_partitions = get_queue_partitions
    system.start_queued_workflows = start_queued_workflows


def _items_per_tenant(queue_name: str) -> dict[str, int]:
    """Each tenant's items waiting or running on `queue_name`, across the workers."""
    return _read_workflow_status(lambda session, table: repository.items_per_partition(session, table, queue_name))


def _live_worker_ids() -> list[str]:
    """The executors that run work and beat within `job_executor_timeout_seconds`, sorted."""
    ctx = job_context()
    with sync_transaction(ctx.engine) as session:
        workers = repository.live_workers(session, beating_since=_seconds_ago(ctx.settings.job_executor_timeout_seconds))
    return sorted(worker.executor_id for worker in workers)


REMEMBER_SECONDS = 1.0  # how long a process takes the job engine's latest version and queue settings as it read them
_monotonic = time.monotonic  # (the tests' clock)


def _remember_what_rarely_changes(system: Any) -> None:
    """Two reads DBOS makes again and again, of what changes only when an operator or a release changes it, are taken
    as read for REMEMBER_SECONDS, then read again:
    - whether this process runs the latest registered application version (`_is_latest_version`), asked in each claim
      of a queue's work (per partition, several per poll): a union on the versions table that SQLAlchemy builds and
      keys anew each time, 5.6% of a worker's CPU in phase 2 (bench/README run AD). It changes when a release registers
      a newer version, and decides only whether workflows enqueued without a version may be claimed too: teamsvoice
      enqueues none (each of its rows names `teamsvoice-workflows-N`);
    - a queue's settings (`get_queue`), read in a transaction of their own at every poll of every queue (about 19 a
      second per worker: three statements each, 0.58 reads per bulk item in phase 2), so that a change of a queue's
      limits applies without a restart. It still does, within REMEMBER_SECONDS. A queue not found is not remembered."""
    system._is_latest_version = _remembered(system._is_latest_version)
    system.get_queue = _remembered(system.get_queue)


def _remembered(read: Callable[..., T]) -> Callable[..., T]:
    """`read(key, *rest)`, its answer for each key taken as read for REMEMBER_SECONDS (None answers are not kept; a
    call with keyword arguments always reads). Threads read at once (a worker's queue threads and its items): a read
    that began before another never replaces the other's answer, whichever ends last, so what is remembered is
    never older than a read already made."""
    answers: dict[Any, tuple[int, float, T]] = {}  # key -> (which read, when it began, its answer)
    reads = itertools.count()
    storing = threading.Lock()

    @functools.wraps(read)
    def remembered(key: Any, *rest: Any, **options: Any) -> T:
        if options:
            return read(key, *rest, **options)
        now, known = _monotonic(), answers.get(key)
        if known is not None and 0 <= now - known[1] < REMEMBER_SECONDS:
            return known[2]
        which = next(reads)
        answer = read(key, *rest)
        if answer is not None:
            with storing:
                latest = answers.get(key)
                if latest is None or latest[0] < which:
                    answers[key] = (which, now, answer)
        return answer

    return remembered


_queues: "dict[str, Queue]" = {}


def register_queue(name: str, **options: Any) -> None:
    """Registers a queue with DBOS (its options replace those stored) for this start of the engine, and keeps the
    queue object: enqueueing through it reads nothing (`DBOS.retrieve_queue` builds a queue from its row at every call,
    the row read again once it is REMEMBER_SECONDS old; before `_remember_what_rarely_changes`, one more statement for
    each item a bulk job enqueued)."""
    _queues[name] = DBOS.register_queue(name, on_conflict="always_update", **options)


def queue(name: str) -> Queue:
    """The queue registered under `name` by this start of the engine (else as DBOS has it stored)."""
    found = _queues.get(name)
    if found is None:
        found = DBOS.retrieve_queue(name)
        if found is None:
            raise RuntimeError(f"The job queue {name} is not registered")
    return found


async def _connector(settings: Settings) -> MicrosoftConnector:
    return MicrosoftConnector(settings)  # built on the loop that will use it


def _beat(executor_id: str, role: Role) -> None:
    engine = job_context().engine
    with sync_transaction(engine) as session:
        row = session.get(JobExecutor, executor_id)
        if row is None:
            session.add(JobExecutor(executor_id=executor_id, hostname=socket.gethostname(), pid=os.getpid(), role=role,
                                    started_at=utcnow(), heartbeat_at=utcnow(), stopped=False))
        else:
            row.heartbeat_at = utcnow()


def _heartbeat_loop(executor_id: str, role: Role) -> None:
    wait = HEARTBEAT_SECONDS
    while not _heartbeat_stop.wait(wait):
        try:
            _beat(executor_id, role)
            wait = HEARTBEAT_SECONDS
        except Exception:  # noqa: BLE001 - the database may be briefly away: try again soon, not a beat later
            log.warning("job engine heartbeat failed; retrying", exc_info=True)
            wait = HEARTBEAT_SECONDS / 10


def _housekeeping_loop() -> None:
    """Takes over the work of workers that stopped beating, and measures the queues, every beat; starts work
    committed but never enqueued every `job_orphan_sweep_seconds` (`sweep_unstarted_work`)."""
    interval = job_context().settings.job_orphan_sweep_seconds
    swept = time.monotonic()
    while not _heartbeat_stop.wait(HEARTBEAT_SECONDS):
        try:
            recover_dead_executors()
            _measure_queues()
            if interval > 0 and time.monotonic() - swept >= interval:
                swept = time.monotonic()
                if started := sweep_unstarted_work():
                    log.info("started %d unit(s) of work committed but never enqueued", started)
        except Exception:  # noqa: BLE001 - the database may be briefly away; the next round tries again
            log.warning("job engine recovery round failed; retrying", exc_info=True)


def sweep_unstarted_work() -> int:
    """Work committed but never enqueued, by a process that died in between and will not start again (an `api`
    process, a `teamsvoice bulk import` stopped at once): each workflow module's `resume_unstarted` (idempotent:
    workflow ids derive from the work; work already enqueued, running or ended is left alone). At start,
    `resume_orphaned_work` does this and more. Call from a thread."""
    started = 0
    for name in WORKFLOW_MODULES:
        if resume := getattr(importlib.import_module(name), "resume_unstarted", None):
            started += resume()
    return started


def recover_dead_executors(*, all_others: bool = False) -> list[str]:
    """Re-enqueues the PENDING workflows of executors that stopped or stopped beating (`all_others`: of
    every other executor). The executor's row is deleted in the same transaction that claims it, so one
    live worker recovers it, and DBOS's own recovery only moves workflows still owned by the dead executor
    (a repeat is harmless)."""
    ctx = job_context()
    timeout = ctx.settings.job_executor_timeout_seconds
    with sync_transaction(ctx.engine) as session:
        dead = repository.ended_executor_ids(session, ctx.executor_id, stale_before=None if all_others else _seconds_ago(timeout))
    recovered = []
    for executor_id in dead:
        with sync_transaction(ctx.engine) as session:
            claimed = repository.claim_executor(session, executor_id)
        if not claimed:
            continue
        handles = DBOS._recover_pending_workflows([executor_id])
        log.info("recovered %d workflows of executor %s", len(handles), executor_id)
        recovered.append(executor_id)
    if not _legacy_recovered.is_set():
        # Before executor ids were unique, every process was "local": its work has no heartbeat row.
        _legacy_recovered.set()
        DBOS._recover_pending_workflows(["local"])
    return recovered


_legacy_recovered = threading.Event()


def _measure_queues() -> None:
    for queue, depth in queue_depths((JOBS_QUEUE, MICROSOFT_QUEUE, INTERACTIVE_QUEUE)).items():
        set_queue_depth(queue, depth)


def queue_depths(queues: Sequence[str]) -> dict[str, int]:
    """How many workflows wait (enqueued, not started) in each of `queues`: one grouped COUNT in the job engine's
    database. DBOS's API only lists them: every worker listing every waiting workflow at each beat cost it 11% of
    its CPU while 3,000 items waited (py-spy, 2026-12-02)."""
    counted = _read_workflow_status(lambda session, table: repository.waiting_per_queue(session, table, list(queues)))
    return {queue: counted.get(queue, 0) for queue in queues}


def _read_workflow_status(read: Callable[[Session, Table], T]) -> T:
    """`read(session, DBOS's workflow_status table)` in a transaction on the job engine's system database."""
    from dbos._dbos import _get_dbos_instance  # the system database DBOS writes (its tables, its engine)

    system = _get_dbos_instance()._sys_db
    with sync_transaction(system.engine) as session:
        return read(session, system.tables.workflow_status)


def _seconds_ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


def resume_orphaned_work() -> int:
    """A crash between a commit and its enqueue leaves work recorded but not started: each workflow module
    that can have such work exposes `resume_orphaned()` (idempotent: workflow ids derive from the work).
    Call from a thread (DBOS's synchronous API refuses to run inside an event loop)."""
    resumed = 0
    for name in WORKFLOW_MODULES:
        if resume := getattr(importlib.import_module(name), "resume_orphaned", None):
            resumed += resume()
    return resumed


def stop_jobs(grace_seconds: float | None = None) -> None:
    """Stops taking work, gives in-flight Microsoft calls `grace_seconds` to finish, marks this executor
    stopped (so its unfinished work is recovered at once by another worker or the next start), and
    shuts DBOS down. Steps still running are parked; nothing unfinished is recorded as failed."""
    global _context
    if _context is None:
        return
    grace = _context.settings.job_shutdown_grace_seconds if grace_seconds is None else grace_seconds
    _stopping.set()
    for schedule in _schedules.values():
        schedule.set()
    _schedules.clear()
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _in_flight > 0:
        time.sleep(0.05)
    deadline = time.monotonic() + ENQUEUE_WAIT_SECONDS
    while time.monotonic() < deadline and _enqueuing > 0:
        time.sleep(0.01)
    _heartbeat_stop.set()
    for thread in _heartbeat_threads:
        thread.join(timeout=5)
    _heartbeat_threads.clear()
    if _context.role != "api":
        try:
            with sync_transaction(_context.engine) as session:
                repository.mark_stopped(session, _context.executor_id)
        except Exception:  # noqa: BLE001 - then it is found dead by its stale heartbeat instead
            log.warning("could not mark this executor stopped", exc_info=True)
    DBOS.destroy(workflow_completion_timeout_sec=0)
    _queues.clear()
    context, _context = _context, None
    connector = context.microsoft_connector  # (none in an `api` role's engine)
    try:
        # Its connections to Microsoft closed on the loop that opened them, while it still runs: left open, an
        # HTTPS server they talk to (`serve`'s emulator, stopping after this) waited for them and logged
        # "timeout graceful shutdown exceeded" at every stop.
        if connector is not None:
            asyncio.run_coroutine_threadsafe(connector.aclose(), context.loop).result(timeout=5)
    except Exception:  # noqa: BLE001 - the process is stopping: what is left open closes with it
        log.warning("could not close the job engine's Microsoft connections", exc_info=True)
    context.http.close()
    context.engine.dispose()
    if context.system_engine is not None:  # (DBOS disposes only an engine it built)
        context.system_engine.dispose()

    async def close() -> None:
        if connector is not None:
            await connector.aclose()
        await context.async_engine.dispose()

    try:
        asyncio.run_coroutine_threadsafe(close(), context.loop).result(timeout=5)
    except Exception:  # noqa: BLE001 - parked work may hold connections; the process is ending anyway
        log.debug("job engine resources did not close cleanly", exc_info=True)
    context.loop.call_soon_threadsafe(context.loop.stop)


def stopping() -> bool:
    return _stopping.is_set()


def unit_failure(exc: Exception, what: str) -> dict[str, Any]:
    """How one unit of a job (a user, an operation, a bulk item, a resource account) failed, as an outcome
    (core/errors.describe). A transient database failure is no unit's outcome: it is raised again, so the unit's
    step runs again (`durable_step`; steps are idempotent). Anything that is no domain error (a defect) is logged
    with its traceback and named by its type: the unit fails and the job goes on to its end; ending the workflow
    on it left the job's row running for ever."""
    if isinstance(exc, DomainError):
        return describe(exc)
    if is_transient_database_error(exc):
        raise exc
    log.error("%s failed unexpectedly", what, exc_info=exc)
    return describe_unexpected(exc)


def failure_message(exc: Exception, what: str) -> str:
    """`unit_failure` in words."""
    return str(unit_failure(exc, what)["message"])


def park_if_stopping() -> None:
    """Called by steps at safe points: once the engine is stopping, the step's thread waits for the
    process to exit, leaving its work PENDING for recovery."""
    if _stopping.is_set():
        threading.Event().wait()


def durable_step(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """`@DBOS.step(name=...)` whose transient database failures (core/db.is_transient_database_error: SQLite
    locked past its busy timeout, no pooled connection in time, PostgreSQL restarting) are never final: the
    step's body runs again after a capped backoff (steps are idempotent), and a stopping engine parks it.
    Every step is declared with it."""
    def decorate(body: Callable[..., T]) -> Callable[..., T]:
        return DBOS.step(name=name)(retrying_transient(name)(body))

    return decorate


def retrying_transient(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Runs the body again after a capped backoff while it fails transiently in the database (`durable_step`'s
    rule). Alone, for a workflow that is one idempotent unit of work and records no step of its own (a bulk
    item: recovery runs its body again, which finds the item ended; a step's record would cost two more
    transactions per item in the job engine's database)."""
    def decorate(body: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(body)
        def retrying(*args: Any, **kwargs: Any) -> T:
            delay, failures = 0.5, 0
            while True:
                try:
                    return body(*args, **kwargs)
                except Exception as exc:
                    if not is_transient_database_error(exc):
                        raise
                    failures += 1
                    record_job_retry(name)
                    log.warning("step %s: the database failed transiently (try %d): %s; retrying in %.1f s",
                                name, failures, type(exc).__name__, delay)
                    end = time.monotonic() + delay
                    while time.monotonic() < end:
                        park_if_stopping()
                        time.sleep(min(0.2, max(0.0, end - time.monotonic())))
                    delay = min(30.0, delay * 2)

        return retrying

    return decorate


@contextmanager
def in_flight() -> Iterator[None]:
    """Counts a unit of work that calls Microsoft, so that shutdown can wait for it a little. Its Microsoft
    requests belong to the job of the running workflow (an item `<job workflow id>-item-<key>` to that job)
    for the budget's fair shares between jobs of one tenant (microsoft/budget.py)."""
    global _in_flight
    park_if_stopping()
    with _in_flight_lock:
        _in_flight += 1
    workflow_id = DBOS.workflow_id
    try:
        with budget_job_scope(workflow_id.rsplit(ITEM_MARK, 1)[0] if workflow_id else None):
            yield
    finally:
        with _in_flight_lock:
            _in_flight -= 1


async def until_microsoft_answers(attempt: Callable[[], Awaitable[T]], on_wait: Callable[[int, UpstreamError, float], Awaitable[None]],
                                  *, workflow: str, max_delay: float | None = None) -> T:
    """Runs `attempt` until it does not fail transiently. A transient failure (Microsoft 5xx, 429,
    timeout, unreachable: `UpstreamError.retryable`) is never final: `on_wait` records it, then the
    work waits (capped exponential backoff, jittered) and tries again. Stopping the engine parks it, and
    whatever an attempt raises once the engine is stopping parks it too (its HTTP client and pools close under
    it, e.g. a RuntimeError of a closed client): that is not the work's outcome, and recovery runs it again."""
    settings = _context.settings if _context is not None else Settings()  # (the demo seed runs without the engine)
    cap = settings.job_retry_max_delay_seconds if max_delay is None else max_delay
    delay, failures = settings.microsoft_retry_base_delay_seconds, 0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if _stopping.is_set():
                log.info("work parked while the job engine stops (%s); it runs again when recovered", type(exc).__name__)
                await anyio.to_thread.run_sync(park_if_stopping, abandon_on_cancel=True)
            if not isinstance(exc, UpstreamError) or not exc.retryable or exc.is_refusal:
                raise
            failures += 1
            wait = min(cap, delay) * (0.5 + random.random() / 2)
            record_job_retry(workflow)
            log.warning("Microsoft failed transiently (try %d): %s; retrying in %.1f s", failures, exc.message, wait)
            await on_wait(failures, exc, wait)
            end = time.monotonic() + wait
            while time.monotonic() < end:
                if _stopping.is_set():
                    await anyio.to_thread.run_sync(park_if_stopping, abandon_on_cancel=True)
                await anyio.sleep(min(0.2, max(0.0, end - time.monotonic())))
            delay = min(cap, delay * 2)


def delivery_attempt(attempt: Callable[[int], bool], model: type[Any], delivery_id: int, what: str) -> bool:
    """One try of a delivery (the body of `until_delivered`'s step): `attempt`'s answer, or, when it fails with a
    defect, False with the failure recorded as the row's `last_error` (`unit_failure`; a transient database
    failure is raised again, so the step runs again). A defect ended the delivery's workflow, and the delivery
    stayed pending with no try ever again; now it is tried again later, like any failed try."""
    try:
        return attempt(delivery_id)
    except Exception as exc:  # noqa: BLE001 - whatever failed the try is the try's outcome
        message = failure_message(exc, f"{what} {delivery_id}")
        with sync_transaction(job_context().engine) as session:
            if (row := session.get(model, delivery_id)) is not None:
                row.last_error = message
        return False


def until_delivered(post: Callable[[int], bool], delivery_id: int) -> int:
    """Inside a delivery workflow: runs the `post` step until it reports done, sleeping durably between
    tries (capped doubling from the webhook retry settings). Answers the number of tries."""
    settings = job_context().settings
    delay, attempts = settings.webhook_retry_initial_seconds, 1
    while not post(delivery_id):
        DBOS.sleep(delay)
        delay = min(delay * 2, settings.webhook_retry_max_seconds)
        attempts += 1
    return attempts


def start_once(workflow_id: str, workflow: Callable[..., Any], *args: Any) -> bool:
    """Enqueues `workflow` on the jobs queue under `workflow_id` unless a workflow with that id exists
    (queued, running, recovered or finished). Safe to repeat; never starts a second execution."""
    if DBOS.get_workflow_status(workflow_id) is not None:
        return False
    with SetWorkflowID(workflow_id):
        queue(JOBS_QUEUE).enqueue(workflow, *args)
    return True


_schedules: dict[str, threading.Event] = {}


def run_every(name: str, interval: float, workflow: Callable[[str], Any]) -> None:
    """In worker processes (not `api`): enqueues `workflow(slot_key)` once per interval slot. The workflow id names
    the slot, so however many workers run the loop, each slot runs once; a missed slot is not made up (the next
    one does the work). Stopped by the engine's stop, or replaced by the next call with the same name."""
    if (previous := _schedules.pop(name, None)) is not None:
        previous.set()
    if interval <= 0 or job_context().role == "api":
        return
    stop = threading.Event()
    _schedules[name] = stop

    def loop() -> None:
        while not stop.is_set():
            slot = int(time.time() // interval)
            try:
                start_once(f"{name}-{interval:g}-{slot}", workflow, f"slot-{slot}")
            except Exception:  # noqa: BLE001 - the database may be briefly away; the next slot tries again
                log.warning("could not start the scheduled %s", name, exc_info=True)
            stop.wait(max(0.05, (slot + 1) * interval - time.time()))

    threading.Thread(target=loop, name=f"teamsvoice-{name}", daemon=True).start()


def stop_workflow(workflow_id: str) -> bool:
    """Cancels a workflow that has not ended, with the work it enqueued: a queued one never starts, a running
    one stops at its next step (the step running finishes). False when there is none or it has ended."""
    status = DBOS.get_workflow_status(workflow_id)
    if status is None or status.status in ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
        return False
    DBOS.cancel_workflow(workflow_id, cancel_children=True)
    return True


def enqueue_for_tenant(workflow_id: str, tenant_id: str, workflow: Callable[..., Any], *args: Any,
                       position: int | None = None) -> None:
    """Enqueues one unit of Microsoft work on the tenant's partition (idempotent by workflow id). Called
    from inside a workflow, so the enqueue itself is recorded and not repeated on replay. An item of a job
    has the id `<job workflow id>-item-<key>` and its 1-based `position` in the job: the partition serves
    lower positions first, so the first items of every job of a tenant come before the later items of any
    (a one-user job does not wait behind a 5,000-user one)."""
    with before_dbos_goes(), SetWorkflowID(workflow_id), \
            SetEnqueueOptions(queue_partition_key=tenant_id, priority=_priority(position)):
        queue(MICROSOFT_QUEUE).enqueue(workflow, *args)


@dataclass(frozen=True)
class TenantWork:
    """One unit of Microsoft work for `enqueue_many_for_tenant`: its workflow id, arguments and position in its job."""

    workflow_id: str
    args: tuple[Any, ...]
    position: int


def enqueue_many_for_tenant(tenant_id: str, workflow: Callable[..., Any], work: Sequence[TenantWork], *,
                            interactive: bool = False) -> int:
    """Enqueues many units of Microsoft work on the tenant's partition in ONE transaction of the job engine's
    database, as `enqueue_for_tenant` does one by one (same queue, partition, priority from the position, inputs);
    `interactive`: on INTERACTIVE_QUEUE instead (the whole of a job of at most INTERACTIVE_ITEMS).
    Called from a step, not from a workflow's body: the parent records no operation per unit (one enqueue from a
    workflow costs two transactions and four statements: checked, inserted, recorded), and a step run again
    inserts nothing twice (a workflow id already there is left as it is). Answers how many were new.

    Through DBOS's batch enqueue (`prepare_enqueued_workflow` and `SystemDatabase.init_workflows`, what its Kafka
    consumer enqueues with; internal API of the pinned dbos release: tests/e2e/test_bulk_subscription_reads.py
    checks that the rows it writes hold what a public enqueue's would: queue, partition, priority, application
    version, submitter)."""
    from dbos._context import get_local_dbos_context
    from dbos._core import prepare_enqueued_workflow
    from dbos._dbos import _get_dbos_instance

    dbos = _get_dbos_instance()
    # The batch ignores the caller's context: the submitter goes on as a public enqueue passes it on (domain/audit
    # records the items' changes on behalf of the job's submitter).
    caller = get_local_dbos_context()
    statuses = []
    for unit in work:
        status = prepare_enqueued_workflow(dbos, workflow, unit.args, {}, queue_name=INTERACTIVE_QUEUE if interactive else MICROSOFT_QUEUE,
                                           workflow_id=unit.workflow_id, queue_partition_key=tenant_id)
        status["priority"] = _priority(unit.position)
        if caller is not None:
            status["authenticated_user"] = caller.authenticated_user
            status["authenticated_roles"] = json.dumps(caller.authenticated_roles) if caller.authenticated_roles else None
            status["assumed_role"] = caller.assumed_role
        statuses.append(status)
    with before_dbos_goes():
        enqueued = len(dbos._sys_db.init_workflows(statuses))
        if enqueued >= QUEUE_STATISTICS_ITEMS:
            _refresh_queue_statistics(dbos._sys_db)
    return enqueued


QUEUE_STATISTICS_ITEMS = 100  # a page of at least this many enqueued items refreshes the queue table's statistics
QUEUE_STATISTICS_SECONDS = 10.0  # at most once in this many seconds per process
_statistics_lock = threading.Lock()
_statistics_at = [float("-inf")]  # time.monotonic() of this process's last refresh


def queue_table(system: Any) -> str:
    """DBOS's workflow table (its queues' rows) as PostgreSQL names it: in the schema DBOS was given."""
    preparer = system.engine.dialect.identifier_preparer
    return f"{preparer.quote_schema(system.schema)}.{preparer.quote(system.tables.workflow_status.name)}"


def _refresh_queue_statistics(system: Any) -> None:
    """PostgreSQL plans DBOS's queue searches from its statistics of the workflow table. Taken while the queues were
    empty (between jobs: autovacuum analyzes a table at most once a minute, and only after enough changes), they say
    no workflow waits, and the search for the partitions with waiting items (each poll of the Microsoft queue, four
    a second per worker) then reads every waiting item once per tenant through the wrong index: 20-30 ms and 50,000
    buffers a search with 2,000 items waiting over 20 tenants, about a sixth of PostgreSQL's CPU during a fleet bulk
    change (bench/README run Z; 0.1 ms once the statistics hold the backlog). So a page of at least
    QUEUE_STATISTICS_ITEMS enqueued items refreshes them (ANALYZE samples the table: milliseconds), at most once per
    QUEUE_STATISTICS_SECONDS in this process. On SQLite, nothing (its planner keeps no such statistics unless asked).
    A failure is logged and left: the items are enqueued, and only the searches stay slower."""
    if system.engine.dialect.name != "postgresql":  # (DBOS's SQLite has no schema to name the table in)
        return
    with _statistics_lock:
        now = time.monotonic()
        if now - _statistics_at[0] < QUEUE_STATISTICS_SECONDS:
            return
        _statistics_at[0] = now
    try:
        with sync_transaction(system.engine) as session:
            repository.analyze(session, queue_table(system))
    except Exception:  # noqa: BLE001 - the statistics are an optimisation: the enqueue itself is done
        log.warning("could not refresh the job engine's queue statistics", exc_info=True)


def _priority(position: int | None) -> int | None:
    return min(max(1, position), 2**31 - 1) if position is not None else None


@contextmanager
def before_dbos_goes() -> Iterator[None]:
    """Around a short piece of a workflow's or step's work that uses DBOS or the engine's database (an enqueue, a page
    of items read then enqueued): the engine's stop lets it end (up to ENQUEUE_WAIT_SECONDS) before it destroys DBOS
    and closes the engine's connections, and once the engine is stopping the work parks here instead, still PENDING
    (recovery replays it; the enqueues it made are not made again). Without it, Ctrl-C while a bulk job's parent was
    enqueueing its items destroyed DBOS under the enqueue ("No DBOS was created yet" in the log). Counted before the
    check: a stop that has begun either waits for the block or is seen here. A block inside another (on the same
    thread) is the outer one's: only the outer counts and parks (an inner one parking would hold the stop)."""
    global _enqueuing
    if getattr(_guarded, "depth", 0):
        _guarded.depth += 1
        try:
            yield
        finally:
            _guarded.depth -= 1
        return
    with _in_flight_lock:
        _enqueuing += 1
    if _stopping.is_set():
        with _in_flight_lock:
            _enqueuing -= 1
        park_if_stopping()
    _guarded.depth = 1
    try:
        yield
    finally:
        _guarded.depth = 0
        with _in_flight_lock:
            _enqueuing -= 1


_guarded = threading.local()
