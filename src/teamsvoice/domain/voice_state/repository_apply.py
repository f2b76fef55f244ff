"""The queries of plan, adopt, restore and the apply job (`apply.py`, `workflows.py`): apply jobs' records and the
voice records (and the resource accounts they back) they read beside `repository.py`'s desired state. They take a
session and plain values and answer rows; the rules stay in `apply.py`."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users.models import FusionResourceAccount
from teamsvoice.domain.voice_state.models import UNFINISHED, VoiceApplyJob


async def unfinished_apply_job(session: AsyncSession, enterprise_id: int) -> int | None:
    """The id of the enterprise's apply job that is queued or running, if any."""
    return await session.scalar(select(VoiceApplyJob.id).where(
        VoiceApplyJob.enterprise_id == enterprise_id, VoiceApplyJob.status.in_(UNFINISHED)))


def queued_jobs(session: Session) -> list[tuple[int, str]]:
    """(id, job key) of every apply job recorded but not started (sync: the job engine's start)."""
    return [(i, k) for i, k in session.execute(
        select(VoiceApplyJob.id, VoiceApplyJob.job_key).where(VoiceApplyJob.status == "queued")).tuples()]


async def number_holder(session: AsyncSession, e164: str, *, except_voice_user_id: int | None) -> TeamsVoiceUser | None:
    """The voice record, of any enterprise, holding the number, other than `except_voice_user_id` (None: any)."""
    query = select(TeamsVoiceUser).where(TeamsVoiceUser.phone_number == e164)
    if except_voice_user_id is not None:
        query = query.where(TeamsVoiceUser.id != except_voice_user_id)
    return await session.scalar(query)


async def resource_accounts_of(session: AsyncSession, voice_user_ids: list[int]) -> list[FusionResourceAccount]:
    """The resource accounts whose numbers are these voice records."""
    if not voice_user_ids:
        return []
    return list(await session.scalars(select(FusionResourceAccount).where(
        FusionResourceAccount.voice_user_id.in_(voice_user_ids))))


async def records_by_upn(session: AsyncSession, enterprise_id: int) -> dict[str, TeamsVoiceUser]:
    """The enterprise's voice records by user principal name."""
    return {r.user_principal_name: r for r in await session.scalars(
        select(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise_id))}
