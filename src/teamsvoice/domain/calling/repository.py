"""The calling services' queries: calling jobs (`CallingJob`, durable syncs of Teams users and of the Unified
App), PBX locations and users, direct routes, the CallApp service account and app templates. The request side's
functions take an `AsyncSession`; the job steps' (`calling/workflows.py`, in `core.db.sync_transaction`) a
`Session`. The services hold the rules; these answer rows."""

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from teamsvoice.core.clock import utcnow
from teamsvoice.core.limits import INTEGER_MAX, whole_number
from teamsvoice.domain.calling.models import (CallAppServiceAccount, CallingJob, CallingJobResult, DirectRoute,
                                              PbxLocation, PbxUser, TeamsAppTemplate)
from teamsvoice.domain.orgs.models import Enterprise, PbxType
from teamsvoice.domain.provisioning.models import TeamsVoiceUser

# --- calling jobs ----------------------------------------------------------------------------------


async def add_job(session: AsyncSession, enterprise_id: int, kind: str, *, detail: dict[str, Any] | None = None,
                  graph_token_encrypted: str | None = None) -> CallingJob:
    """A queued job of the enterprise, flushed (it has its id and key); the caller enqueues it after commit."""
    job = CallingJob(enterprise_id=enterprise_id, kind=kind, status="QUEUED", total=0, results={},
                     detail=detail or {}, graph_token_encrypted=graph_token_encrypted)
    session.add(job)
    await session.flush()
    return job


async def job_by_key(session: AsyncSession, job_key: str) -> CallingJob | None:
    return await session.scalar(select(CallingJob).where(CallingJob.job_key == job_key))


async def unended_jobs_since(session: AsyncSession, enterprise_id: int, kind: str,
                             since: datetime) -> list[tuple[int, dict[str, Any] | None]]:
    """The enterprise's jobs of `kind` queued or running, recorded since `since`: (id, detail), oldest first."""
    rows = await session.execute(select(CallingJob.id, CallingJob.detail).where(
        CallingJob.enterprise_id == enterprise_id, CallingJob.kind == kind,
        CallingJob.status.in_(("QUEUED", "RUNNING")), CallingJob.created_at >= since).order_by(CallingJob.id))
    return [(job_id, detail) for job_id, detail in rows]


def queued_job_ids(session: Session) -> list[int]:
    """Jobs accepted but not started (a crash between their commit and their enqueue leaves them so)."""
    return list(session.scalars(select(CallingJob.id).where(CallingJob.status == "QUEUED").order_by(CallingJob.id)))


async def voice_user_count(session: AsyncSession, enterprise_id: int) -> int:
    """How many voice users (TeamsVoiceUser) a Sync Teams Users of the enterprise covers."""
    return int(await session.scalar(select(func.count(TeamsVoiceUser.id)).where(
        TeamsVoiceUser.enterprise_id == enterprise_id)) or 0)


def voice_user_ids(session: Session, enterprise_id: int, only: list[int] | None = None) -> list[int]:
    """The enterprise's voice user record ids, in order (those of `only` alone when given)."""
    query = select(TeamsVoiceUser.id).where(TeamsVoiceUser.enterprise_id == enterprise_id)
    if only is not None:
        query = query.where(TeamsVoiceUser.id.in_(only))
    return list(session.scalars(query.order_by(TeamsVoiceUser.id)))


def voice_users_by_ids(session: Session, ids: list[int]) -> list[TeamsVoiceUser]:
    return list(session.scalars(select(TeamsVoiceUser).where(TeamsVoiceUser.id.in_(ids)).order_by(TeamsVoiceUser.id)))


async def voice_users_with_number(session: AsyncSession, enterprise_id: int) -> list[TeamsVoiceUser]:
    return list((await session.scalars(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.phone_number.is_not(None)))).all())


# --- PBX types and locations -----------------------------------------------------------------------


async def pbx_types_by_ids(session: AsyncSession, ids: list[int]) -> list[PbxType]:
    return list((await session.scalars(select(PbxType).where(PbxType.id.in_(ids or [-1])))).all())


async def location_named(session: AsyncSession, enterprise_id: int, name: str) -> PbxLocation | None:
    return await session.scalar(select(PbxLocation).where(
        PbxLocation.enterprise_id == enterprise_id, PbxLocation.pbx_location == name))


async def location_name_taken(session: AsyncSession, enterprise_id: int, name: str, *, other_than: int) -> bool:
    """Whether another of the enterprise's locations than `other_than` is named `name`."""
    return await session.scalar(select(PbxLocation.id).where(
        PbxLocation.enterprise_id == enterprise_id, PbxLocation.pbx_location == name,
        PbxLocation.id != other_than)) is not None


async def location_by_id(session: AsyncSession, location_id: int) -> PbxLocation | None:
    """The location of that id, whichever enterprise's (the caller checks that it may see it)."""
    return await session.get(PbxLocation, location_id)


async def location_by_reference(session: AsyncSession, enterprise_id: int, reference: str) -> PbxLocation | None:
    """The enterprise's location named `reference`, or (when it is a number an id can be) whose id it is; the oldest
    first."""
    query = select(PbxLocation).where(PbxLocation.enterprise_id == enterprise_id)
    reference = reference.strip()
    if (number := whole_number(reference)) is not None and number <= INTEGER_MAX:
        query = query.where(or_(PbxLocation.id == number, PbxLocation.pbx_location == reference))
    else:
        query = query.where(PbxLocation.pbx_location == reference)
    return (await session.scalars(query.order_by(PbxLocation.id))).first()


async def locations_of(session: AsyncSession, enterprise_id: int) -> list[PbxLocation]:
    query = select(PbxLocation).where(PbxLocation.enterprise_id == enterprise_id).order_by(PbxLocation.id)
    return list((await session.scalars(query)).all())


async def users_at_location(session: AsyncSession, location_id: int) -> int:
    return int(await session.scalar(select(func.count(PbxUser.id)).where(PbxUser.pbx_location_id == location_id)) or 0)


# --- PBX and CallApp users -------------------------------------------------------------------------


async def pbx_user_by_id(session: AsyncSession, user_id: int) -> PbxUser | None:
    """The PBX or CallApp user of that id, whichever enterprise's (the caller checks that it may see it)."""
    return await session.get(PbxUser, user_id)


async def pbx_user_of_voice_user(session: AsyncSession, voice_user_id: int) -> PbxUser | None:
    """The PBX connector user that a Teams voice user's record belongs to, if any (its number is the Teams number)."""
    return await session.scalar(select(PbxUser).where(PbxUser.voice_user_id == voice_user_id))


async def pbx_user_by_upn(session: AsyncSession, enterprise_id: int, upn: str) -> PbxUser | None:
    return await session.scalar(select(PbxUser).where(PbxUser.enterprise_id == enterprise_id,
                                                      PbxUser.teams_user_id == upn))


# PostgreSQL's advisory locks of a PBX: (this class, the hash of its SIP domain). Keys of two integers are apart
# from the one-integer keys (core/db's migration lock); two domains of one hash only wait for each other.
PBX_LOCK_CLASS = 3003


async def lock_pbx(session: AsyncSession, sip_domain: str, location_id: int | None) -> None:
    """Locks until commit the PBX at `sip_domain` (whatever locations, of whichever enterprises, it has: none yet
    too) and the location `location_id` (which is there, or about to move there; None: a location not yet made).
    PostgreSQL: an advisory lock of the domain and the location's row; SQLite: the UPDATE that changes nothing takes
    the database's write lock, before anything is read."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(PBX_LOCK_CLASS, func.hashtext(sip_domain))))
    await session.execute(update(PbxLocation).where(PbxLocation.id == (location_id or 0))
                          .values(id=PbxLocation.id, updated_at=PbxLocation.updated_at)
                          .execution_options(synchronize_session=False))


async def location_read_afresh(session: AsyncSession, location_id: int) -> PbxLocation | None:
    """The location as the database holds it now (what the session read before is replaced)."""
    return await session.scalar(select(PbxLocation).where(PbxLocation.id == location_id)
                                .execution_options(populate_existing=True))


async def extension_holder(session: AsyncSession, sip_domain: str, extension: str,
                           other_than_user: int | None) -> tuple[PbxUser, PbxLocation] | None:
    """The PBX user (other than `other_than_user`), with its location, registered as `extension` at any location
    of the PBX at `sip_domain`, whichever enterprise's; the oldest first."""
    query = (select(PbxUser, PbxLocation).join(PbxLocation, PbxLocation.id == PbxUser.pbx_location_id)
             .where(PbxLocation.canonical_pbx_sip_domain == sip_domain, PbxUser.pbx_user_id == extension))
    if other_than_user is not None:
        query = query.where(PbxUser.id != other_than_user)
    row = (await session.execute(query.order_by(PbxUser.id).limit(1))).first()
    return None if row is None else (row[0], row[1])


async def extension_clash(session: AsyncSession, location_id: int,
                          sip_domain: str) -> tuple[PbxUser, PbxUser, PbxLocation] | None:
    """Were the location to move to the PBX at `sip_domain`: a user of it (first), the user of another location of
    that PBX (second) registered as the same extension, and that location; None when no extension would be twice."""
    mine, theirs, their_location = aliased(PbxUser), aliased(PbxUser), aliased(PbxLocation)
    row = (await session.execute(
        select(mine, theirs, their_location)
        .join(theirs, theirs.pbx_user_id == mine.pbx_user_id)
        .join(their_location, their_location.id == theirs.pbx_location_id)
        .where(mine.pbx_location_id == location_id, their_location.canonical_pbx_sip_domain == sip_domain,
               their_location.id != location_id)
        .order_by(mine.id, theirs.id).limit(1))).first()
    return None if row is None else (row[0], row[1], row[2])


async def pbx_user_count(session: AsyncSession, enterprise_id: int) -> int:
    return int(await session.scalar(select(func.count(PbxUser.id)).where(PbxUser.enterprise_id == enterprise_id)) or 0)


async def pbx_users_of(session: AsyncSession, enterprise_id: int) -> list[PbxUser]:
    query = select(PbxUser).where(PbxUser.enterprise_id == enterprise_id).order_by(PbxUser.id)
    return list((await session.scalars(query)).all())


def pbx_user_ids(session: Session, enterprise_id: int) -> list[int]:
    return list(session.scalars(select(PbxUser.id).where(PbxUser.enterprise_id == enterprise_id).order_by(PbxUser.id)))


def pbx_users_by_ids(session: Session, ids: list[int]) -> list[PbxUser]:
    return list(session.scalars(select(PbxUser).where(PbxUser.id.in_(ids)).order_by(PbxUser.id)))


def locations_in_step(session: Session, enterprise_id: int) -> list[PbxLocation]:
    return list(session.scalars(select(PbxLocation).where(PbxLocation.enterprise_id == enterprise_id)
                                .order_by(PbxLocation.id)))


def routes_in_step(session: Session, enterprise_id: int) -> list[DirectRoute]:
    return list(session.scalars(select(DirectRoute).where(DirectRoute.enterprise_id == enterprise_id)
                                .order_by(DirectRoute.id)))


def pbx_users_in_step(session: Session, enterprise_id: int) -> list[PbxUser]:
    return list(session.scalars(select(PbxUser).where(PbxUser.enterprise_id == enterprise_id).order_by(PbxUser.id)))


async def callapp_account_of(session: AsyncSession, enterprise_id: int) -> CallAppServiceAccount | None:
    return await session.scalar(select(CallAppServiceAccount).where(
        CallAppServiceAccount.enterprise_id == enterprise_id))


# --- direct routes and app templates ---------------------------------------------------------------


async def route_for_gateway(session: AsyncSession, enterprise_id: int, sbc_gateway_id: int) -> DirectRoute | None:
    return await session.scalar(select(DirectRoute).where(
        DirectRoute.enterprise_id == enterprise_id, DirectRoute.sbc_gateway_id == sbc_gateway_id))


async def routes_of(session: AsyncSession, enterprise_id: int) -> list[DirectRoute]:
    query = select(DirectRoute).where(DirectRoute.enterprise_id == enterprise_id).order_by(DirectRoute.id)
    return list((await session.scalars(query)).all())


def _template_query(enterprise_id: int, app_type: str):  # type: ignore[no-untyped-def]
    return select(TeamsAppTemplate).where(TeamsAppTemplate.enterprise_id == enterprise_id,
                                          TeamsAppTemplate.app_type == app_type)


async def app_template(session: AsyncSession, enterprise_id: int, app_type: str) -> TeamsAppTemplate | None:
    return await session.scalar(_template_query(enterprise_id, app_type))


def app_template_in_step(session: Session, enterprise_id: int, app_type: str) -> TeamsAppTemplate | None:
    return session.scalar(_template_query(enterprise_id, app_type))


# --- a calling job's per-user results ----------------------------------------------------------------


def _results_upsert(dialect: str, job_id: int, results: dict[str, dict[str, Any]]) -> Any:
    """One INSERT of the results (key -> result) as rows of the job, each row already there (the same key: a step
    run again, a WAITING note followed by the outcome) rewritten in place (it keeps its id, so its place in the
    job's order); nothing of the job's other results is read."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    statement = insert(CallingJobResult).values([
        {"job_id": job_id, "key": key, "status": str(result.get("status") or ""), "result": result, "updated_at": now}
        for key, result in results.items()])
    return statement.on_conflict_do_update(index_elements=["job_id", "key"], set_={
        "status": statement.excluded.status, "result": statement.excluded.result,
        "updated_at": statement.excluded.updated_at})


def record_results_in_step(session: Session, job_id: int, results: dict[str, dict[str, Any]]) -> None:
    """Records the job's results (key: the user principal name -> `workflows.user_result`), one row each."""
    if results:
        session.execute(_results_upsert(session.get_bind().dialect.name, job_id, results))


async def record_results(session: AsyncSession, job_id: int, results: dict[str, dict[str, Any]]) -> None:
    """`record_results_in_step` in a request's or an async step's session."""
    if results:
        await session.execute(_results_upsert(session.get_bind().dialect.name, job_id, results))


async def result_keys(session: AsyncSession, job_id: int) -> set[str]:
    """The keys (user principal names) the job has a result of."""
    return set(await session.scalars(select(CallingJobResult.key).where(CallingJobResult.job_id == job_id)))


async def result_counts(session: AsyncSession, job_id: int) -> dict[str, int]:
    """How many of the job's results are in each status, counted by the database."""
    rows = await session.execute(select(CallingJobResult.status, func.count()).where(
        CallingJobResult.job_id == job_id).group_by(CallingJobResult.status).order_by(CallingJobResult.status))
    return {status: count for status, count in rows}


async def results_page(session: AsyncSession, job_id: int, offset: int, limit: int) -> list[dict[str, Any]]:
    """At most `limit` of the job's results from the `offset`th, in the order the job first recorded each user."""
    return list(await session.scalars(select(CallingJobResult.result).where(CallingJobResult.job_id == job_id)
                                      .order_by(CallingJobResult.id).offset(offset).limit(limit)))


async def clear_results(session: AsyncSession, job_id: int) -> None:
    """The job's results deleted (a job run again from the start)."""
    await session.execute(delete(CallingJobResult).where(CallingJobResult.job_id == job_id)
                          .execution_options(synchronize_session=False))


async def domain_of_another_reseller(session: AsyncSession, sip_domain: str, reseller_id: int) -> bool:
    """Whether a location of an enterprise of another reseller than `reseller_id` has the PBX at `sip_domain`."""
    return await session.scalar(select(PbxLocation.id).join(Enterprise, Enterprise.id == PbxLocation.enterprise_id).where(
        PbxLocation.canonical_pbx_sip_domain == sip_domain, Enterprise.reseller_id != reseller_id).limit(1)) is not None


# --- a calling job's run: its status, changed only while it runs; the voice records a Sync Teams Users pushes ------

UNENDED = ("QUEUED", "RUNNING")  # a job's statuses before its end (CANCELLED, COMPLETED, FAILED)


def _job_change(job_id: int, values: dict[str, Any], while_in: tuple[str, ...]) -> Any:
    return (update(CallingJob).where(CallingJob.id == job_id, CallingJob.status.in_(while_in)).values(**values)
            .execution_options(synchronize_session=False))


def change_job_in_step(session: Session, job_id: int, values: dict[str, Any], *,
                       while_in: tuple[str, ...] = ("RUNNING",)) -> bool:
    """Writes `values` on the job in one UPDATE only while its status is one of `while_in` (a job cancelled meanwhile
    keeps its end: read then written, a cancel committed between the two was overwritten); answers whether it did."""
    return session.execute(_job_change(job_id, values, while_in)).rowcount == 1  # type: ignore[attr-defined]


async def change_job(session: AsyncSession, job_id: int, values: dict[str, Any], *,
                     while_in: tuple[str, ...] = ("RUNNING",)) -> bool:
    """`change_job_in_step` in an async step's session."""
    return (await session.execute(_job_change(job_id, values, while_in))).rowcount == 1  # type: ignore[attr-defined]


def job_status_in_step(session: Session, job_id: int) -> str | None:
    return session.scalar(select(CallingJob.status).where(CallingJob.id == job_id))


async def job_status(session: AsyncSession, job_id: int) -> str | None:
    return await session.scalar(select(CallingJob.status).where(CallingJob.id == job_id))


async def voice_user_now(session: AsyncSession, record_id: int) -> TeamsVoiceUser | None:
    """The voice record as the database holds it now (what the session read before is replaced)."""
    return await session.scalar(select(TeamsVoiceUser).where(TeamsVoiceUser.id == record_id)
                                .execution_options(populate_existing=True))


PushedSettings = tuple[str | None, str | None, str | None, bool]
"""What a sync pushed of a record: (microsoft_user_id, phone_number, voice_routing_policy, calling_enabled)."""


async def record_sync_outcome(session: AsyncSession, record_id: int, status: str | None, detail: dict[str, Any] | None,
                              synced_at: datetime | None, *, pushed: PushedSettings | None) -> bool:
    """Writes a sync's outcome on the voice record, and nothing else of it: its last sync status and detail, and the
    time it was synced when given. With `pushed`, only while the record still wants what was pushed (else a change
    recorded meanwhile has its own push, and its own outcome). Answers whether the record was written (False: it
    changed meanwhile, or is gone)."""
    values: dict[str, Any] = {"last_sync_status": status, "last_sync_detail": detail}
    if synced_at is not None:
        values["last_synced_at"] = synced_at
    statement = update(TeamsVoiceUser).where(TeamsVoiceUser.id == record_id)
    if pushed is not None and status in ("UPDATED", "UNCHANGED"):
        values["pending_change"] = None  # Teams holds what the record wants: a change left pending has its outcome
    if pushed is not None:
        user_id, number, policy, calling = pushed
        statement = statement.where(TeamsVoiceUser.microsoft_user_id.is_not_distinct_from(user_id),
                                    TeamsVoiceUser.phone_number.is_not_distinct_from(number),
                                    TeamsVoiceUser.voice_routing_policy.is_not_distinct_from(policy),
                                    TeamsVoiceUser.calling_enabled == calling)
    result = await session.execute(statement.values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]
