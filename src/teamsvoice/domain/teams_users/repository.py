"""Queries over a subscription's Teams users beyond their voice records: customer licences, templates and
resource accounts (the voice records they point at are `provisioning/voice_users.py`'s; bulk jobs and their
items are `repository_bulk.py`'s, except the job's status polled by the API, below)."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from teamsvoice.core import search as text_search
from teamsvoice.core.db import transaction
from teamsvoice.core.limits import whole_number
from teamsvoice.domain.teams_users.models import FusionBulkJob, FusionResourceAccount, FusionTemplate, FusionUserLicences


# --- customer licences (Fusion's, per voice record) ------------------------------------------------------


async def customer_licences_of(session: AsyncSession, record_ids: Sequence[int]) -> dict[int, list[str]]:
    """The customer licences of each voice record given that has some, by record id."""
    if not record_ids:
        return {}
    rows = await session.scalars(select(FusionUserLicences).where(FusionUserLicences.voice_user_id.in_(record_ids)))
    return {row.voice_user_id: row.customer_licenses for row in rows}


async def customer_licences_row(session: AsyncSession, record_id: int) -> FusionUserLicences | None:
    """The row of one voice record's customer licences (at most one: the column is unique)."""
    return await session.scalar(select(FusionUserLicences).where(FusionUserLicences.voice_user_id == record_id))


async def drop_customer_licences(session: AsyncSession, record_id: int) -> None:
    """Drops the voice record's customer licences (its user was deleted: it holds none any more)."""
    row = await customer_licences_row(session, record_id)
    if row is not None:
        await session.delete(row)


# --- templates --------------------------------------------------------------------------------------------


async def templates_of(session: AsyncSession, subscription_id: int, name_contains: str) -> list[FusionTemplate]:
    """The subscription's templates whose name contains `name_contains` (lower case; "" for all), oldest first."""
    query = select(FusionTemplate).where(FusionTemplate.subscription_id == subscription_id)
    if name_contains:
        query = query.where(text_search.contains(FusionTemplate.name, name_contains))
    return list(await session.scalars(query.order_by(FusionTemplate.id)))


async def template_by_id(session: AsyncSession, subscription_id: int, template_id: int) -> FusionTemplate | None:
    return await session.scalar(select(FusionTemplate).where(
        FusionTemplate.id == template_id, FusionTemplate.subscription_id == subscription_id))


async def template_by_name(session: AsyncSession, subscription_id: int, name: str) -> FusionTemplate | None:
    """The subscription's template of exactly that name (names are unique per subscription)."""
    return await session.scalar(select(FusionTemplate).where(
        FusionTemplate.subscription_id == subscription_id, FusionTemplate.name == name))


# --- resource accounts ------------------------------------------------------------------------------------


async def resource_accounts_of(session: AsyncSession, subscription_id: int) -> list[FusionResourceAccount]:
    """Every resource account row of the subscription (whatever its status)."""
    return list(await session.scalars(select(FusionResourceAccount).where(
        FusionResourceAccount.subscription_id == subscription_id)))


async def resource_account_by_upn(session: AsyncSession, subscription_id: int, upn: str) -> int | None:
    """The id of the subscription's resource account of that user principal name (stored lower case)."""
    return await session.scalar(select(FusionResourceAccount.id).where(
        FusionResourceAccount.subscription_id == subscription_id,
        FusionResourceAccount.user_principal_name == upn.lower()))


async def resource_account(session: AsyncSession, subscription_id: int, ident: str) -> FusionResourceAccount | None:
    """The subscription's resource account named by our id (digits) or by its Microsoft object id."""
    query = select(FusionResourceAccount).where(FusionResourceAccount.subscription_id == subscription_id)
    if (number := whole_number(ident)) is not None:
        query = query.where(FusionResourceAccount.id == number)
    else:
        query = query.where(FusionResourceAccount.microsoft_user_id == ident)
    return await session.scalar(query)


async def is_resource_account_record(session: AsyncSession, record_id: int) -> bool:
    """Whether the voice record (TeamsVoiceUser id) is a resource account's, of any subscription."""
    return await session.scalar(select(FusionResourceAccount.id).where(
        FusionResourceAccount.voice_user_id == record_id).limit(1)) is not None


async def resource_account_voice_user_ids(session: AsyncSession, subscription_id: int) -> list[int]:
    """The voice records (TeamsVoiceUser ids) of the subscription's resource accounts that have one."""
    return list(await session.scalars(select(FusionResourceAccount.voice_user_id).where(
        FusionResourceAccount.subscription_id == subscription_id, FusionResourceAccount.voice_user_id.is_not(None))))


async def bulk_job_status(sessions: async_sessionmaker[AsyncSession], job_id: int) -> FusionBulkJob:
    """The job as it is now, read in a short transaction of its own (callers poll it while it runs)."""
    async with transaction(sessions) as session:
        job = await session.get(FusionBulkJob, job_id)
    assert job is not None  # jobs are never deleted
    return job


def resource_accounts_in_flight(session: Session) -> list[tuple[str, int, int]]:
    """Resource accounts whose change was recorded but has not ended (creating, updating, deleting): their
    job key, id and generation, for starting their workflows again after a crash."""
    return [(key, account_id, generation) for key, account_id, generation in session.execute(
        select(FusionResourceAccount.job_key, FusionResourceAccount.id, FusionResourceAccount.generation)
        .where(FusionResourceAccount.status.in_(("creating", "updating", "deleting"))))]
