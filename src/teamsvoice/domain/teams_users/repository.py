"""Queries over Fusion's resource accounts and bulk jobs of a subscription (the voice records they point
at are `provisioning/voice_users.py`'s)."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import transaction
from teamsvoice.domain.teams_users.models import FusionBulkJob, FusionResourceAccount


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
