"""Queries behind a Fusion subscription's licences (`fusion/licences.py` holds the quota rule): the users that
take a licence, and the subscription row read under the lock the rule needs."""

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.fusion.models import FusionSubscription
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users.models import FusionResourceAccount


def takes_a_licence() -> tuple[ColumnElement[bool], ...]:
    """The conditions on `TeamsVoiceUser` of a user taking an MS Teams users licence: it holds a number and is no
    resource account (call queues and auto attendants hold numbers but no user licence). Every count of licences
    in use applies these (a subscription's here, a group's in `repository_groups.py`)."""
    resource_accounts = select(FusionResourceAccount.voice_user_id).where(
        FusionResourceAccount.voice_user_id.is_not(None))
    return TeamsVoiceUser.phone_number.is_not(None), TeamsVoiceUser.id.not_in(resource_accounts)


async def users_holding_numbers(session: AsyncSession, enterprise_id: int) -> int:
    """The enterprise's Teams users holding a number, resource accounts left out."""
    return await session.scalar(select(func.count(TeamsVoiceUser.id)).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, *takes_a_licence())) or 0


async def user_limit_of_enterprise(session: AsyncSession, enterprise_id: int) -> tuple[int, int] | None:
    """(subscription id, MS Teams users assigned) of the enterprise's Fusion subscription, None without one."""
    found = (await session.execute(select(FusionSubscription.id, FusionSubscription.ms_teams_users).where(
        FusionSubscription.enterprise_id == enterprise_id))).first()
    return None if found is None else (found.id, found.ms_teams_users)


async def user_limit_key_shared(session: AsyncSession, subscription_id: int) -> int | None:
    """The subscription's MS Teams users assigned, read with the row share-locked until commit (PostgreSQL's
    FOR KEY SHARE: a change of the row's licences waits for this commit, other readers and share-lockers do not)."""
    return await session.scalar(select(FusionSubscription.ms_teams_users).where(
        FusionSubscription.id == subscription_id).with_for_update(read=True, key_share=True))


async def locked_subscription(session: AsyncSession, subscription_id: int) -> FusionSubscription:
    """The subscription row, read afresh and locked until commit (PostgreSQL's FOR UPDATE; SQLite serialises
    writers itself)."""
    subscription = await session.scalar(select(FusionSubscription).where(
        FusionSubscription.id == subscription_id).with_for_update().execution_options(populate_existing=True))
    assert subscription is not None
    return subscription
