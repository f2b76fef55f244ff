"""Durable syncs (DBOS): Sync Teams Users for large enterprises (teamsvoice's records pushed to Teams), Refresh
Teams Users (the records taken from Teams: Fusion's `refresh`; Teams is only read) and Sync Unified App. Each step
handles a batch and is idempotent (reconcile and install leave matching state alone; a refresh reads Teams again and
finds adopted what it adopted), so a step re-run after a crash does no harm; progress is stored per item, a row of
`calling_job_results` per user (rewritten in place when a step runs again), and read by the status endpoint. Steps
act on the tenant with the application's own (admin-consented) permissions; the caller's right to start the job was
checked when it was accepted. ConnecttoTeams' inline Sync Teams Users (small enterprises, `sync_registrations`) syncs
each user as the job does (`_synced`, over the same read of the tenant)."""

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any, cast

import anyio
from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import end_transaction, sync_transaction, transaction
from teamsvoice.core.errors import DomainError, NotFound, UpstreamError
from teamsvoice.domain.calling import repository, unified_app
from teamsvoice.domain.calling.jobs import GRAPH_TOKEN_PURPOSE
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.service import (MicrosoftUserGone, ProvisioningAccess, Reconciled, free_gone_user,
                                                   reconcile)
from teamsvoice.domain.voice_state import refresh, repository as voice_state_repository
from teamsvoice.domain.voice_state.service import plan_tenant
from teamsvoice.jobs.runtime import (
    durable_step, failure_message, in_flight, job_context, park_if_stopping, start_once, until_microsoft_answers,
)
from teamsvoice.microsoft.ports import TenantConnection, VoiceState


BATCH_SIZE = 20
# A Sync Teams Users of more users than this reads the tenant's voice state once for its run (`_tenant_voice`),
# not each user's: a one-batch job reads its users together instead (one `$batch`), as a small job in a tenant
# of many thousand users would read more pages of it than it has users.
TENANT_READ_ABOVE = BATCH_SIZE
REMEMBERED_RUNS = 8  # the runs whose tenant read a process keeps (the least recently used is dropped beyond)
SYNC_TEAMS_USERS = "SYNC_TEAMS_USERS"
REFRESH_TEAMS_USERS = "REFRESH_TEAMS_USERS"
SYNC_UNIFIED_APP = "SYNC_UNIFIED_APP"
log = logging.getLogger(__name__)


def _record(job_id: int, results: dict[str, Any] | None = None, **changes: Any) -> bool:
    """Records users' results (an upsert of their rows: the job's other results are neither read nor written) and
    changes of the job's own fields, in one transaction. The job's fields change only while it runs
    (`repository.change_job_in_step`): a job cancelled meanwhile keeps its end, should its workflow run on (the
    cancel's stop of it lost with the process that committed it); answers whether they changed (True when none were
    asked: the job's row is then not read). What its users' work did is recorded whatever the job's status."""
    with sync_transaction(job_context().engine) as session:
        repository.record_results_in_step(session, job_id, results or {})
        return repository.change_job_in_step(session, job_id, changes) if changes else True


def _note_waiting(job_id: int, results: dict[str, Any]) -> bool:
    """Records users' WAITING results while the job runs; answers whether it runs."""
    with sync_transaction(job_context().engine) as session:
        if repository.job_status_in_step(session, job_id) != "RUNNING":
            return False
        repository.record_results_in_step(session, job_id, results)
        return True


class _JobEnded(Exception):
    """The job is no longer running (cancelled): its work, waiting for Microsoft, stops rather than try again."""


class _RecordDeleted(Exception):
    """The user's record was deleted while its job ran: nothing to push."""


ENDED_MEANWHILE = "Not done: the job was cancelled"


def user_result(upn: str, status: str, *, changes: list[str] | None = None, error: str | None = None) -> dict[str, Any]:
    """A user's result as the job keeps it (a row of `calling_job_results`, by user principal name): the status of its
    item (UPDATED, UNCHANGED, INSTALLED, ..., WAITING while Microsoft is retried, FAILED) with what changed or why
    it failed. The API families render it in their own field names (ConnecttoTeams' `render_job`)."""
    result: dict[str, Any] = {"user_principal_name": upn, "status": status}
    if changes is not None:
        result["changes"] = changes
    if error is not None:
        result["error"] = error
    return result


def _stored(outcome: Reconciled) -> dict[str, Any]:
    return user_result(outcome.user_principal_name, outcome.status, changes=outcome.changes)


def _waiting(job_id: int, upn: str) -> Callable[[int, DomainError, float], Awaitable[None]]:
    """Microsoft failed transiently for this user: its result says so while the step waits to retry (`_JobEnded`,
    trying no more, once the job is no longer running)."""
    async def record(failures: int, exc: DomainError, wait: float) -> None:
        if not await asyncio.to_thread(_note_waiting, job_id, {upn: user_result(
                upn, "WAITING", error=f"{exc.message} (try {failures}; retrying)")}):
            raise _JobEnded(job_id)
    return record


def _tenant_of(job_id: int) -> tuple[str, int]:
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        enterprise = session.get(Enterprise, job.enterprise_id)
        assert enterprise is not None and enterprise.tenant_id is not None
        return enterprise.tenant_id, enterprise.id


def _with_connection(tenant_id: str, work: Any, graph_token: str | None = None) -> Any:
    """Runs `work` with the tenant's connection on the job engine's loop: the engine's one connector, so its
    token cache, connection pool and the tenant's request budget are shared with every other job."""
    ctx = job_context()
    return ctx.run(lambda: work(ctx.connector.connect(tenant_id, delegated_graph_token=graph_token)))


@durable_step("calling_job_start")
def start_step(job_id: int) -> list[int]:
    """Marks the job running and fixes the list of items it covers (user record ids); none once the job has ended
    (cancelled before it started: it stays so)."""
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        if job.kind == SYNC_TEAMS_USERS:  # (a Fusion sync of one type of users names their records)
            ids = repository.voice_user_ids(session, job.enterprise_id, (job.detail or {}).get("voiceUserIds"))
        else:
            ids = repository.pbx_user_ids(session, job.enterprise_id)
        started = repository.change_job_in_step(session, job_id, {"status": "RUNNING", "total": len(ids)},
                                                while_in=repository.UNENDED)
        return ids if started else []


async def _free_gone_user(enterprise_id: int, upn: str) -> dict[str, Any]:
    ctx = job_context()
    async with transaction(ctx.sessions) as session:
        enterprise = await session.get(Enterprise, enterprise_id)
        assert enterprise is not None
        return _stored(await free_gone_user(session, enterprise, upn, ctx.settings.number_quarantine_seconds))


class _NeedsMicrosoft(Exception):
    """`reconcile`, comparing a record with the tenant's read, would ask Microsoft something (a change, a read)."""


class _WithoutMicrosoft:
    """The connection `reconcile` is given to compare a record with the user's state as the tenant's read found it:
    whatever it would ask of Microsoft (any port: a change, a read) raises `_NeedsMicrosoft` before anything is
    sent, so the user is then synced as before, its state read again (the tenant's read may be minutes old: a
    change, and a failed change's undoing, rest on the state of now)."""

    def __getattr__(self, name: str) -> Any:
        raise _NeedsMicrosoft(name)


_WITHOUT_MICROSOFT = cast(TenantConnection, _WithoutMicrosoft())


async def _unchanged(record: Any, state: VoiceState) -> Reconciled | None:
    """`reconcile`'s outcome for the record when, given `state`, it needs nothing of Microsoft: the user matches
    (UNCHANGED, recorded on the record as a sync records it). None when it would change anything or fail: the
    caller syncs the user as before."""
    reading: asyncio.Future[VoiceState] = asyncio.get_running_loop().create_future()
    reading.set_result(state)
    try:
        return await reconcile(_WITHOUT_MICROSOFT, record, reading=reading)
    except Exception:  # noqa: BLE001 - whatever it is, the sync of the user as before meets it again, and says it
        return None


class _TenantReads:
    """The tenant's voice state as a Sync Teams Users run read it (by Microsoft user id, lower case), kept by the
    process for the run's later batches; None when the tenant could not be read (each user is read on its own).
    A run is its job (row id and never-reused key: on SQLite row ids come again). A step run again elsewhere after
    a crash reads the tenant again."""

    def __init__(self) -> None:
        self._runs: OrderedDict[int, tuple[str, dict[str, VoiceState] | None]] = OrderedDict()
        self._lock = threading.Lock()  # (steps run on DBOS's threads)

    def get(self, job_id: int, job_key: str) -> tuple[bool, dict[str, VoiceState] | None]:
        with self._lock:
            kept = self._runs.get(job_id)
            if kept is None or kept[0] != job_key:
                return False, None
            self._runs.move_to_end(job_id)
            return True, kept[1]

    def keep(self, job_id: int, job_key: str, states: dict[str, VoiceState] | None) -> None:
        with self._lock:
            self._runs[job_id] = (job_key, states)
            self._runs.move_to_end(job_id)
            while len(self._runs) > REMEMBERED_RUNS:
                self._runs.popitem(last=False)

    def forget(self, job_id: int) -> None:
        with self._lock:
            self._runs.pop(job_id, None)


_TENANT_READS = _TenantReads()


def reads_the_tenant(users: int) -> bool:
    """Whether a Sync Teams Users of `users` users reads the tenant's voice state once (`_read_tenant_voice`) rather
    than each user's (TENANT_READ_ABOVE): the durable job's runs and ConnecttoTeams' inline sync alike."""
    return users > TENANT_READ_ABOVE


async def _read_tenant_voice(connection: TenantConnection, what: str) -> tuple[dict[str, VoiceState] | None, bool]:
    """Every user's voice state in the tenant (`TenantVoiceAdmin.voice_users`: pages of 999, so a 5,000-user tenant
    in 6 requests where each user's own read was 5,000), by Microsoft user id in lower case, and whether that answer
    stands for the sync (False: a transient failure or a defect, which a later batch may read past). None when it
    could not be read: each user is then read on its own, as before. `what`: the sync, as the log names it."""
    try:
        return {s.user_id.lower(): s for s in await connection.tenant_voice.voice_users()}, True
    except DomainError as exc:
        log.warning("%s: the tenant's voice state could not be read (%s); its users are read one by one", what,
                    exc.message)
        return None, not (isinstance(exc, UpstreamError) and exc.retryable)
    except Exception:  # noqa: BLE001 - a defect of the read: the users are read as before, where it shows again
        log.exception("%s: reading the tenant's voice state failed; its users are read one by one", what)
        return None, False


async def _tenant_voice(job_id: int, job_key: str, connection: TenantConnection) -> dict[str, VoiceState] | None:
    """`_read_tenant_voice`, once for the job's run (a transient failure: the next batch tries again)."""
    known, states = _TENANT_READS.get(job_id, job_key)
    if known:
        return states
    states, stands = await _read_tenant_voice(connection, f"calling job {job_id}")
    if stands:
        _TENANT_READS.keep(job_id, job_key, states)
    return states


async def _unchanged_in(record: Any, tenant: dict[str, VoiceState] | None) -> Reconciled | None:
    """`_unchanged` with the user's state in the tenant's read (None: not read); None when the read lacks the user
    (deleted in Microsoft, created since)."""
    known = tenant.get((record.microsoft_user_id or "").lower()) if tenant else None
    return await _unchanged(record, known) if known is not None else None


async def _synced(record: Any, tenant: dict[str, VoiceState] | None,
                  push: Callable[[], Awaitable[Reconciled]]) -> Reconciled:
    """A user's sync in a Sync Teams Users: UNCHANGED with no request of its own when the tenant's read (None: not
    read) finds the user as its record wants it (`_unchanged`); else `push()` (`reconcile`: its state read again,
    then changed). A user the read lacks (deleted in Microsoft, created since) is pushed as well."""
    return await _unchanged_in(record, tenant) or await push()


async def _each(items: Iterable[Any], work: Callable[[Any], Awaitable[None]], limit: int) -> None:
    """`work` for every item, at most `limit` at once. The first failure (one `work` lets through: a transient
    database failure, for the step to run again) cancels the others and is raised as itself."""
    room = asyncio.Semaphore(limit)

    async def bounded(item: Any) -> None:
        async with room:
            await work(item)

    tasks = [asyncio.ensure_future(bounded(item)) for item in items]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# How many times a Sync Teams Users pushes a user whose record changes while it is pushed (each time the record as it
# is then) before it gives up on the user (FAILED: Teams may miss the record's latest change; a sync sent again does it).
PUSHES_PER_USER = 3


def _pushed(record: Any) -> repository.PushedSettings:
    """What a push of the record asks of Teams (the user it names, and its voice settings)."""
    return record.microsoft_user_id, record.phone_number, record.voice_routing_policy, record.calling_enabled


async def _fresh(job_id: int, record_id: int) -> tuple[bool, Any]:
    """Whether the job still runs and, if it does, the record as it is now (None: deleted), read in one transaction
    just before its user is pushed: a batch may wait minutes on Microsoft, and a change recorded meanwhile (a
    Fusion PUT of the user's number) was pushed back to its old value from the batch's first read."""
    async with transaction(job_context().sessions) as session:
        if await repository.job_status(session, job_id) != "RUNNING":
            return False, None
        return True, await repository.voice_user_now(session, record_id)


async def _outcome_written(record: Any, pushed: repository.PushedSettings | None) -> bool:
    """Writes the sync's outcome that `reconcile` (or the user's failure) set on the record's copy (its last sync
    status, detail and, once synced, time), and nothing else of the record; with `pushed`, only while the record
    still wants what was pushed (`repository.record_sync_outcome`). Answers whether it was written."""
    synced_at = None if record.last_sync_status == "FAILED" else record.last_synced_at
    async with transaction(job_context().sessions) as session:
        return await repository.record_sync_outcome(session, record.id, record.last_sync_status,
                                                    record.last_sync_detail, synced_at, pushed=pushed)


@durable_step("sync_teams_users_batch")
def sync_users_batch(job_id: int, user_ids: list[int]) -> bool | None:
    """Pushes a batch of the job's records to Teams. A job of more than TENANT_READ_ABOVE users reads the tenant's
    voice state once for its run (`_tenant_voice`): a user found there as its record wants it is UNCHANGED with no
    request of its own; one that differs, or is not found there (deleted in Microsoft, created since), is synced
    as before (its state read, then changed). The users of a batch are synced together, at most as many at once as
    a job may keep in flight to the tenant (TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY; the budget still schedules
    every request); their reads share a `$batch`. Results are recorded in the records' order.
    Each user is pushed from its record as read just before (`_fresh`), and only the sync's outcome is written back
    (`_outcome_written`): a change recorded while the user was pushed is never undone, and the user is pushed again
    with it (its own push may have reached Teams before this one). Answers True once the job is no longer running
    (cancelled: no user is pushed after its cancel is read; the workflow starts no further batch)."""
    ctx = job_context()
    tenant_id, enterprise_id = _tenant_of(job_id)
    with sync_transaction(ctx.engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        job_key, total, status = job.job_key, job.total, job.status
        records = repository.voice_users_by_ids(session, user_ids)
        session.expunge_all()  # Microsoft is called with no transaction open
    if status != "RUNNING":
        return True
    stopped = False
    waits = asyncio.Lock()  # a WAITING result is written by one user at a time (each takes a pooled connection)

    def waiting(upn: str) -> Callable[[int, DomainError, float], Awaitable[None]]:
        record_wait = _waiting(job_id, upn)

        async def one_at_a_time(failures: int, exc: DomainError, wait: float) -> None:
            async with waits:
                await record_wait(failures, exc, wait)
        return one_at_a_time

    async def work(connection: Any) -> dict[str, Any]:
        tenant = await _tenant_voice(job_id, job_key, connection) if reads_the_tenant(total) else None
        outcomes: dict[int, dict[str, Any]] = {}
        matching: list[Any] = []  # users found in the tenant's read as their records want them

        async def push(listed: Any) -> dict[str, Any]:
            """The user pushed from its record as it is at each try, and the sync's outcome written on it."""
            nonlocal stopped
            upn, record = listed.user_principal_name, None

            async def pushed_now() -> Reconciled:
                nonlocal record
                running, record = await _fresh(job_id, listed.id)  # (a try may come minutes after the one before)
                if not running:
                    raise _JobEnded(job_id)
                if record is None:
                    raise _RecordDeleted(upn)
                return await reconcile(connection, record)

            for _ in range(PUSHES_PER_USER):
                try:
                    outcome = _stored(await until_microsoft_answers(pushed_now, waiting(upn), workflow="sync_teams_users"))
                except MicrosoftUserGone:
                    return await _free_gone_user(enterprise_id, upn)
                except _JobEnded:
                    stopped = True
                    return user_result(upn, "SKIPPED", error=ENDED_MEANWHILE)
                except _RecordDeleted:
                    return user_result(upn, "SKIPPED", error="Its record was deleted while the job ran")
                except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is that user's outcome
                    message = failure_message(exc, f"calling job {job_id}: user {upn}")
                    if record is None:
                        return user_result(upn, "FAILED", error=message)
                    record.last_sync_status, record.last_sync_detail = "FAILED", {"error": message}
                    outcome = user_result(upn, "FAILED", error=message)
                if await _outcome_written(record, _pushed(record)):
                    return outcome
                # Its record changed while it was pushed: that change's own push may have reached Teams first.
            error = (f"Its record changed while it was pushed, {PUSHES_PER_USER} times: Teams may not hold its latest "
                     "change; sync the user again")
            assert record is not None
            record.last_sync_status, record.last_sync_detail = "FAILED", {"error": error}
            await _outcome_written(record, None)
            return user_result(upn, "FAILED", error=error)

        async def sync(record: Any) -> None:
            upn = record.user_principal_name
            if record.microsoft_user_id is None and record.last_sync_status == "USER_DELETED":  # (a step run again)
                outcomes[record.id] = user_result(upn, "USER_DELETED")
                return
            if stopped:
                return
            unchanged = await _unchanged_in(record, tenant)
            if unchanged is not None:
                matching.append(record)
                outcomes[record.id] = _stored(unchanged)
                return
            outcomes[record.id] = await push(record)

        await _each(records, sync, max(1, min(BATCH_SIZE, ctx.settings.microsoft_tenant_concurrency)))
        if matching:  # (their outcomes together; a record changed since it was read keeps its own)
            async with transaction(ctx.sessions) as session:
                for record in matching:
                    await repository.record_sync_outcome(session, record.id, record.last_sync_status,
                                                         record.last_sync_detail, record.last_synced_at,
                                                         pushed=_pushed(record))
        return {r.user_principal_name: outcomes[r.id] for r in records if r.id in outcomes}

    try:
        with in_flight():  # (its requests are the job's in the budget's shares between a tenant's jobs)
            results = _with_connection(tenant_id, work)
    except DomainError as exc:  # the tenant could not be reached at all: every user of the batch failed
        results = {r.user_principal_name: user_result(r.user_principal_name, "FAILED", error=exc.message)
                   for r in records}
    _record(job_id, results)
    return True if stopped else None  # (a job cancelled after: the next batch finds it so at its start)


async def sync_registrations(session: AsyncSession, access: ProvisioningAccess, quarantine_seconds: float,
                             results: list[Reconciled] | None = None) -> list[Reconciled]:
    """ConnecttoTeams' inline Sync Teams Users (an enterprise of INLINE_SYNC_LIMIT users at most, answered with the
    request): each of the enterprise's users pushed (`reconcile` changes only what differs, so a sync sent again does
    nothing twice), its tenant read as the durable job's run reads it (`reads_the_tenant`, `_synced`: more than
    TENANT_READ_ABOVE users cost one read of the tenant, not one per user). Each outcome is appended to `results` (a
    new list unless given) as it comes: what was done so far, should the request be cancelled before the end."""
    records = await voice_users.of_enterprise(session, access.enterprise.id)
    await end_transaction(session)  # Microsoft is asked with no pooled connection held meanwhile
    connection, results, tenant = access.connection, [] if results is None else results, None
    if reads_the_tenant(len(records)):
        tenant, _ = await _read_tenant_voice(connection, f"enterprise {access.enterprise.id}'s sync")
    for record in records:
        try:
            results.append(await _synced(record, tenant, partial(reconcile, connection, record)))
        except MicrosoftUserGone:
            results.append(await free_gone_user(session, access.enterprise, record.user_principal_name,
                                                quarantine_seconds))
        except (UpstreamError, NotFound) as exc:
            record.last_sync_status, record.last_sync_detail = "FAILED", {"error": exc.message}
            results.append(Reconciled(record.user_principal_name, "FAILED", [], exc.message))
    return results


def _job_waits(job_id: int, what: str) -> Callable[[int, DomainError, float], Awaitable[None]]:
    """Microsoft failed transiently while the step did `what` (reading Teams, publishing the app): the job's error
    says so while the step waits to retry (`_JobEnded`, trying no more, once the job is no longer running)."""
    async def record(failures: int, exc: DomainError, wait: float) -> None:
        if not await asyncio.to_thread(_record, job_id, error=f"{what}: {exc.message} (try {failures}; retrying)"):
            raise _JobEnded(job_id)
    return record


async def _refresh_users(job_id: int, users: list[refresh.UserRefresh]) -> bool:
    """Adopts each user's differences (`refresh.adopt_user`) in a savepoint of one transaction, and records their
    results in it: one upsert of the batch's rows (each user's result a row of its own: the job's other results are
    neither read nor rewritten). A refusal (a number of another customer, the licences) is the user's result,
    its savepoint rolled back and its records left as they were; a transient database failure is raised again
    (`failure_message`), the step then running again. False, adopting nothing, once the job is no longer running
    (cancelled)."""
    ctx = job_context()
    async with transaction(ctx.sessions) as session:
        job = await session.get(CallingJob, job_id)
        assert job is not None
        if job.status != "RUNNING":
            return False
        enterprise = await session.get(Enterprise, job.enterprise_id)
        assert enterprise is not None
        results: dict[str, Any] = {}
        for user in users:
            upn = user.user_principal_name
            try:
                async with session.begin_nested():
                    changes = await refresh.adopt_user(session, enterprise, user,
                                                       ctx.settings.number_quarantine_seconds)
            except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is that user's outcome
                message = failure_message(exc, f"calling job {job_id}: user {upn}")
                results[upn] = user_result(upn, "FAILED", error=message)
                continue
            results[upn] = (user_result(upn, "UPDATED", changes=changes) if changes is not None
                            else user_result(upn, "SKIPPED", error=refresh.CHANGED_MEANWHILE))
        await repository.record_results(session, job_id, results)
    return True


async def _names_of(session: AsyncSession, enterprise_id: int, record_ids: set[int]) -> set[str]:
    records = await voice_users.of_enterprise(session, enterprise_id)
    return {r.user_principal_name for r in records if r.id in record_ids}


@durable_step("refresh_teams_users")
def refresh_users_step(job_id: int) -> str | None:
    """Reads the tenant's voice state once (the plan of `voice_state`: Microsoft read, nothing written) and adopts
    Teams' values into the records user by user (`voice_state/refresh`); only the users of the job's records when it
    names them (`voiceUserIds`: a resource accounts list's). Answers the job's error (the tenant could not be read),
    None once every user has its result. Run again after a crash, it reads Teams again: a user adopted before
    differs no more, and its result stays."""
    ctx = job_context()

    async def work() -> str | None:
        async with transaction(ctx.sessions) as session:
            job = await session.get(CallingJob, job_id)
            assert job is not None
            enterprise = await session.get(Enterprise, job.enterprise_id)
            assert enterprise is not None
            if not await repository.change_job(session, job_id, {"status": "RUNNING"}, while_in=repository.UNENDED):
                return None  # cancelled before it started: it stays so (`finish_step` changes only a running job)
            if enterprise.tenant_id is None:
                return "The tenant is no longer linked"
            ids = (job.detail or {}).get("voiceUserIds")
            only = None if ids is None else await _names_of(session, enterprise.id, set(ids))
            read = await voice_state_repository.desired_state(session, enterprise)
            tenant_id = enterprise.tenant_id
        if only is not None and not only:
            return None  # no record to refresh: Teams is not read
        voice = ctx.connector.connect(tenant_id).tenant_voice
        try:
            plan = await until_microsoft_answers(lambda: plan_tenant(voice, read), _job_waits(job_id, "Reading Teams"),
                                                 workflow="refresh_teams_users")
        except _JobEnded:
            return None
        except DomainError as exc:
            return f"Teams could not be read: {exc.message}"
        users = refresh.refreshable(read, plan, only)
        async with transaction(ctx.sessions) as session:
            recorded = await repository.result_keys(session, job_id)  # (a step run again: its results stay)
            total = len(recorded | {u.user_principal_name for u in users})
            if not await repository.change_job(session, job_id, {"total": total, "error": None}):
                return None  # cancelled meanwhile: nothing is adopted
        for batch in range(0, len(users), BATCH_SIZE):
            if not await _refresh_users(job_id, users[batch:batch + BATCH_SIZE]):
                break
        return None

    with in_flight():
        error = job_context().run(work)
    park_if_stopping()
    return error


@durable_step("publish_unified_app")
def publish_step(job_id: int) -> dict[str, Any]:
    """The app published in the tenant's catalog (or updated, or found as it is: `unified_app.publish`), as the job
    stores it. A transient Microsoft failure is tried again, the job's error saying so meanwhile; Microsoft's
    refusal, a template Teams would refuse, or the job's end (cancelled) before it is published is answered as
    `{"error"}`."""
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        if job.status != "RUNNING":
            return {"error": "the job is no longer running"}
        enterprise = session.get(Enterprise, job.enterprise_id)
        template = repository.app_template_in_step(session, job.enterprise_id, "UNIFIED")
        assert enterprise is not None and template is not None and enterprise.tenant_id is not None
        source, tenant_id = unified_app.source_of(template, enterprise), enterprise.tenant_id
        token = (job_context().keyring.decrypt(job.graph_token_encrypted, purpose=GRAPH_TOKEN_PURPOSE)
                 if job.graph_token_encrypted else None)

    try:
        unified_app.manifest(source)  # a stored text Teams would refuse is said before Microsoft is asked
    except DomainError as exc:
        return {"error": exc.message}

    async def work(connection: Any) -> dict[str, str]:
        return (await until_microsoft_answers(lambda: unified_app.publish(connection.teams_apps, source),
                                              _job_waits(job_id, "Publishing the app"),
                                              workflow="sync_unified_app")).stored()

    try:
        with in_flight():
            published = _with_connection(tenant_id, work, token)
    except _JobEnded:
        return {"error": "the job is no longer running"}
    except DomainError as exc:  # returned, not raised: step outcomes are stored, and plain data stores safely
        hint = "" if token else (" (publishing to the org catalog needs the Global Administrator's MSAL object: "
                                 "call syncUnifiedApp with an enterprise token and the LOGIN_ENTERPRISE_ADMIN result)")
        return {"error": exc.message + hint}
    _record(job_id, detail={"app": published}, error=None)  # (a cancelled job's install batches stop at their start)
    return published


@durable_step("install_unified_app_batch")
def install_batch(job_id: int, app_id: str, version: str, user_ids: list[int]) -> bool | None:
    """Installs (or upgrades) the app for a batch of the job's users. Answers True once the job is no longer running
    (cancelled: no user is installed after its cancel is read; the workflow starts no further batch)."""
    tenant_id, _ = _tenant_of(job_id)
    with sync_transaction(job_context().engine) as session:
        users = [(u.teams_user_id, u.microsoft_user_id) for u in repository.pbx_users_by_ids(session, user_ids)]
        if repository.job_status_in_step(session, job_id) != "RUNNING":
            return True
    stopped = False

    async def running() -> bool:
        async with transaction(job_context().sessions) as session:
            return await repository.job_status(session, job_id) == "RUNNING"

    async def work(connection: Any) -> dict[str, Any]:
        nonlocal stopped
        apps, results = connection.teams_apps, {}
        for upn, user_id in users:
            if not await running():
                stopped = True
                break
            try:
                results[upn] = user_result(upn, await until_microsoft_answers(
                    partial(unified_app.install_for, apps, app_id, version, user_id), _waiting(job_id, upn),
                    workflow="sync_unified_app"))
            except _JobEnded:
                stopped = True
                results[upn] = user_result(upn, "SKIPPED", error=ENDED_MEANWHILE)
                break
            except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is that user's outcome
                message = failure_message(exc, f"calling job {job_id}: user {upn}")
                results[upn] = user_result(upn, "FAILED", error=message)
        return results

    try:
        results = _with_connection(tenant_id, work)
    except DomainError as exc:
        results = {upn: user_result(upn, "FAILED", error=exc.message) for upn, _ in users}
    _record(job_id, results)
    return True if stopped else None  # (a job cancelled after: the next batch finds it so at its start)


@durable_step("calling_job_finish")
def finish_step(job_id: int, error: str | None) -> None:
    """Ends the job, COMPLETED or FAILED with `error`: a running job only (one cancelled keeps its end)."""
    _record(job_id, status="FAILED" if error else "COMPLETED", error=error, finished_at=utcnow(),
            graph_token_encrypted=None)
    _TENANT_READS.forget(job_id)  # (a Sync Teams Users run's read of the tenant)


def _batches(ids: list[int]) -> list[list[int]]:
    return [ids[i:i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]


# Each workflow's recovery is never given up (DBOS's default, 100 attempts, dead-lettered a job left RUNNING for ever).
@DBOS.workflow(name="sync_teams_users", max_recovery_attempts=None)
def sync_teams_users(job_id: int) -> None:
    for batch in _batches(start_step(job_id)):
        if sync_users_batch(job_id, batch):  # (the job ended: cancelled; an earlier release's steps answered None)
            break
    finish_step(job_id, None)


@DBOS.workflow(name="refresh_teams_users", max_recovery_attempts=None)
def refresh_teams_users(job_id: int) -> None:
    finish_step(job_id, refresh_users_step(job_id))


@DBOS.workflow(name="sync_unified_app", max_recovery_attempts=None)
def sync_unified_app(job_id: int) -> None:
    ids = start_step(job_id)
    published = publish_step(job_id)
    if "error" in published:
        finish_step(job_id, f"Publishing the app failed: {published['error']}")
        return
    for batch in _batches(ids):
        # (a workflow recorded before revision 0012 replays this step's output under the old name `teamsAppId`)
        if install_batch(job_id, published.get("app_id") or published["teamsAppId"], published["version"], batch):
            break  # (the job ended: cancelled)
    finish_step(job_id, None)


WORKFLOWS = {SYNC_TEAMS_USERS: sync_teams_users, REFRESH_TEAMS_USERS: refresh_teams_users,
             SYNC_UNIFIED_APP: sync_unified_app}  # a calling job's workflow, by its kind


def _start(job_id: int) -> None:
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        key, kind = job.job_key, job.kind
    start_once(f"calling-{key}", WORKFLOWS[kind], job_id)


async def enqueue(job_id: int) -> None:
    """Starting twice under the same workflow id is a no-op."""
    await anyio.to_thread.run_sync(_start, job_id)


def resume_orphaned() -> int:
    """A crash between commit and enqueue leaves a QUEUED job with no workflow; start those (idempotent:
    the workflow id is the job's key). To be called once the job engine is launched."""
    with sync_transaction(job_context().engine) as session:
        queued = repository.queued_job_ids(session)
    for job_id in queued:
        _start(job_id)
    return len(queued)


resume_unstarted = resume_orphaned  # (all it starts is work committed but never enqueued: runtime.sweep_unstarted_work)
