"""Durable syncs (DBOS): Sync Teams Users for large enterprises (teamsvoice's records pushed to Teams), Refresh
Teams Users (the records taken from Teams: Fusion's `refresh`; Teams is only read) and Sync Unified App. Each step
handles a batch and is idempotent (reconcile and install leave matching state alone; a refresh reads Teams again and
finds adopted what it adopted), so a step re-run after a crash does no harm; progress is stored per item in
`calling_jobs.results` and read by the status endpoint. Steps act on the tenant with the application's own
(admin-consented) permissions; the caller's right to start the job was checked when it was accepted."""

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import sync_transaction, transaction
from teamsvoice.core.errors import DomainError
from teamsvoice.domain.calling import repository, unified_app
from teamsvoice.domain.calling.jobs import GRAPH_TOKEN_PURPOSE
from teamsvoice.domain.calling.models import CallingJob
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.service import MicrosoftUserGone, Reconciled, free_gone_user, reconcile
from teamsvoice.domain.voice_state import refresh, repository as voice_state_repository
from teamsvoice.domain.voice_state.service import plan_tenant
from teamsvoice.jobs.runtime import (
    durable_step, failure_message, in_flight, job_context, park_if_stopping, start_once, until_microsoft_answers,
)


BATCH_SIZE = 20
SYNC_TEAMS_USERS = "SYNC_TEAMS_USERS"
REFRESH_TEAMS_USERS = "REFRESH_TEAMS_USERS"
SYNC_UNIFIED_APP = "SYNC_UNIFIED_APP"


def _record(job_id: int, results: dict[str, Any] | None = None, **changes: Any) -> None:
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        if results:
            job.results = {**job.results, **results}
        for name, value in changes.items():
            setattr(job, name, value)


def user_result(upn: str, status: str, *, changes: list[str] | None = None, error: str | None = None) -> dict[str, Any]:
    """A user's result as the job keeps it in `calling_jobs.results` (by user principal name): the status of its
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
    """Microsoft failed transiently for this user: its result says so while the step waits to retry."""
    async def record(failures: int, exc: DomainError, wait: float) -> None:
        await asyncio.to_thread(_record, job_id, {upn: user_result(
            upn, "WAITING", error=f"{exc.message} (try {failures}; retrying)")})
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
    """Marks the job running and fixes the list of items it covers (user record ids)."""
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
        if job.kind == SYNC_TEAMS_USERS:  # (a Fusion sync of one type of users names their records)
            ids = repository.voice_user_ids(session, job.enterprise_id, (job.detail or {}).get("voiceUserIds"))
        else:
            ids = repository.pbx_user_ids(session, job.enterprise_id)
        job.status, job.total = "RUNNING", len(ids)
        return ids


async def _free_gone_user(enterprise_id: int, upn: str) -> dict[str, Any]:
    ctx = job_context()
    async with transaction(ctx.sessions) as session:
        enterprise = await session.get(Enterprise, enterprise_id)
        assert enterprise is not None
        return _stored(await free_gone_user(session, enterprise, upn, ctx.settings.number_quarantine_seconds))


@durable_step("sync_teams_users_batch")
def sync_users_batch(job_id: int, user_ids: list[int]) -> None:
    tenant_id, enterprise_id = _tenant_of(job_id)
    with sync_transaction(job_context().engine) as session:
        records = repository.voice_users_by_ids(session, user_ids)
        session.expunge_all()  # Microsoft is called with no transaction open
    freed: set[int] = set()  # records freed in their own transaction: not written back from here

    async def work(connection: Any) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for record in records:
            if record.microsoft_user_id is None and record.last_sync_status == "USER_DELETED":  # (a step run again)
                freed.add(record.id)
                results[record.user_principal_name] = user_result(record.user_principal_name, "USER_DELETED")
                continue
            try:
                results[record.user_principal_name] = _stored(await until_microsoft_answers(
                    partial(reconcile, connection, record), _waiting(job_id, record.user_principal_name),
                    workflow="sync_teams_users"))
            except MicrosoftUserGone:
                freed.add(record.id)
                results[record.user_principal_name] = await _free_gone_user(enterprise_id, record.user_principal_name)
            except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is that user's outcome
                message = failure_message(exc, f"calling job {job_id}: user {record.user_principal_name}")
                record.last_sync_status, record.last_sync_detail = "FAILED", {"error": message}
                results[record.user_principal_name] = user_result(record.user_principal_name, "FAILED", error=message)
        return results

    try:
        results = _with_connection(tenant_id, work)
    except DomainError as exc:  # the tenant could not be reached at all: every user of the batch failed
        results = {r.user_principal_name: user_result(r.user_principal_name, "FAILED", error=exc.message)
                   for r in records}
    with sync_transaction(job_context().engine) as session:
        for record in records:
            if record.id not in freed:
                session.merge(record)
    _record(job_id, results)


def _reading_waits(job_id: int) -> Callable[[int, DomainError, float], Awaitable[None]]:
    """Microsoft failed transiently while the tenant was read: the job's error says so while the step waits to retry."""
    async def record(failures: int, exc: DomainError, wait: float) -> None:
        await asyncio.to_thread(_record, job_id, error=f"Reading Teams: {exc.message} (try {failures}; retrying)")
    return record


async def _refresh_user(job_id: int, user: refresh.UserRefresh) -> bool:
    """Adopts one user's differences (`refresh.adopt_user`) and records the user's result in the same transaction;
    a refusal (a number of another customer, the licences) is the user's result, its records left as they were.
    False, adopting nothing, once the job is no longer running (cancelled)."""
    ctx = job_context()
    upn = user.user_principal_name
    try:
        async with transaction(ctx.sessions) as session:
            job = await session.get(CallingJob, job_id)
            assert job is not None
            if job.status != "RUNNING":
                return False
            enterprise = await session.get(Enterprise, job.enterprise_id)
            assert enterprise is not None
            changes = await refresh.adopt_user(session, enterprise, user, ctx.settings.number_quarantine_seconds)
            job.results = {**job.results, upn: user_result(upn, "UPDATED", changes=changes) if changes is not None
                           else user_result(upn, "SKIPPED", error=refresh.CHANGED_MEANWHILE)}
        return True
    except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is that user's outcome
        message = failure_message(exc, f"calling job {job_id}: user {upn}")
    async with transaction(ctx.sessions) as session:
        job = await session.get(CallingJob, job_id)
        assert job is not None
        job.results = {**job.results, upn: user_result(upn, "FAILED", error=message)}
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
            if enterprise.tenant_id is None:
                return "The tenant is no longer linked"
            job.status = "RUNNING"
            ids = (job.detail or {}).get("voiceUserIds")
            only = None if ids is None else await _names_of(session, enterprise.id, set(ids))
            read = await voice_state_repository.desired_state(session, enterprise)
            tenant_id = enterprise.tenant_id
        if only is not None and not only:
            return None  # no record to refresh: Teams is not read
        voice = ctx.connector.connect(tenant_id).tenant_voice
        try:
            plan = await until_microsoft_answers(lambda: plan_tenant(voice, read), _reading_waits(job_id),
                                                 workflow="refresh_teams_users")
        except DomainError as exc:
            return f"Teams could not be read: {exc.message}"
        users = refresh.refreshable(read, plan, only)
        async with transaction(ctx.sessions) as session:
            job = await session.get(CallingJob, job_id)
            assert job is not None
            job.total, job.error = len(set(job.results) | {u.user_principal_name for u in users}), None
        for user in users:
            if not await _refresh_user(job_id, user):
                break
        return None

    with in_flight():
        error = job_context().run(work)
    park_if_stopping()
    return error


@durable_step("publish_unified_app")
def publish_step(job_id: int) -> dict[str, Any]:
    with sync_transaction(job_context().engine) as session:
        job = session.get(CallingJob, job_id)
        assert job is not None
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
        return (await unified_app.publish(connection.teams_apps, source)).stored()

    try:
        published = _with_connection(tenant_id, work, token)
    except DomainError as exc:  # returned, not raised: step outcomes are stored, and plain data stores safely
        hint = "" if token else (" (publishing to the org catalog needs the Global Administrator's MSAL object: "
                                 "call syncUnifiedApp with an enterprise token and the LOGIN_ENTERPRISE_ADMIN result)")
        return {"error": exc.message + hint}
    _record(job_id, detail={"app": published})
    return published


@durable_step("install_unified_app_batch")
def install_batch(job_id: int, app_id: str, version: str, user_ids: list[int]) -> None:
    tenant_id, _ = _tenant_of(job_id)
    with sync_transaction(job_context().engine) as session:
        users = [(u.teams_user_id, u.microsoft_user_id) for u in repository.pbx_users_by_ids(session, user_ids)]

    async def work(connection: Any) -> dict[str, Any]:
        apps, results = connection.teams_apps, {}
        for upn, user_id in users:
            try:
                results[upn] = user_result(upn, await until_microsoft_answers(
                    partial(unified_app.install_for, apps, app_id, version, user_id), _waiting(job_id, upn),
                    workflow="sync_unified_app"))
            except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is that user's outcome
                results[upn] = user_result(upn, "FAILED", error=failure_message(exc, f"calling job {job_id}: user {upn}"))
        return results

    try:
        results = _with_connection(tenant_id, work)
    except DomainError as exc:
        results = {upn: user_result(upn, "FAILED", error=exc.message) for upn, _ in users}
    _record(job_id, results)


@durable_step("calling_job_finish")
def finish_step(job_id: int, error: str | None) -> None:
    _record(job_id, status="FAILED" if error else "COMPLETED", error=error, finished_at=utcnow(),
            graph_token_encrypted=None)


def _batches(ids: list[int]) -> list[list[int]]:
    return [ids[i:i + BATCH_SIZE] for i in range(0, len(ids), BATCH_SIZE)]


@DBOS.workflow(name="sync_teams_users")
def sync_teams_users(job_id: int) -> None:
    for batch in _batches(start_step(job_id)):
        sync_users_batch(job_id, batch)
    finish_step(job_id, None)


@DBOS.workflow(name="refresh_teams_users")
def refresh_teams_users(job_id: int) -> None:
    finish_step(job_id, refresh_users_step(job_id))


@DBOS.workflow(name="sync_unified_app")
def sync_unified_app(job_id: int) -> None:
    ids = start_step(job_id)
    published = publish_step(job_id)
    if "error" in published:
        finish_step(job_id, f"Publishing the app failed: {published['error']}")
        return
    for batch in _batches(ids):
        # (a workflow recorded before revision 0012 replays this step's output under the old name `teamsAppId`)
        install_batch(job_id, published.get("app_id") or published["teamsAppId"], published["version"], batch)
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
