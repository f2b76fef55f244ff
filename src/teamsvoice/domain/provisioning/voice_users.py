"""The records of Teams users' voice assignments (`TeamsVoiceUser`): one row per user of an enterprise,
found by user principal name (stored lower case), or by its Microsoft id once renamed, whichever family or job
writes it."""

from sqlalchemy import case, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.domain.provisioning.models import TeamsVoiceUser


async def find(session: AsyncSession, enterprise_id: int, upn: str, microsoft_user_id: str | None = None,
               ) -> TeamsVoiceUser | None:
    """The user's record by its principal name; else, when the user's Microsoft id is given, the record of that
    id under the name it had: the user was renamed in Entra ID since, and the record now bears the new name (found
    by name only, the record of a renamed user stayed behind with its number, and a second one was added)."""
    named = TeamsVoiceUser.user_principal_name == upn.lower()
    if not microsoft_user_id:
        return await session.scalar(select(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise_id, named))
    # One statement either way (a bulk job's new users are each looked for once): the record of the name first.
    record = await session.scalar(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, or_(named, TeamsVoiceUser.microsoft_user_id == microsoft_user_id),
    ).order_by(case((named, 0), else_=1), TeamsVoiceUser.id).limit(1))
    if record is not None and record.user_principal_name != upn.lower():
        record.user_principal_name = upn.lower()  # renamed
    return record


async def find_or_add(session: AsyncSession, enterprise_id: int, upn: str, microsoft_user_id: str | None, *,
                      calling_enabled: bool = False) -> TeamsVoiceUser:
    """The user's record (`find`: a renamed user's too), added (and flushed, so it has an id) with calling as given
    when missing. A known Microsoft user id replaces a stale one (the user was deleted and created again under the
    same name)."""
    record = await find(session, enterprise_id, upn, microsoft_user_id)
    if record is None:
        record, _ = await add(session, enterprise_id, upn, microsoft_user_id, calling_enabled=calling_enabled)
    return known_as(record, microsoft_user_id)


async def add(session: AsyncSession, enterprise_id: int, upn: str, microsoft_user_id: str | None,
              **values: object) -> tuple[TeamsVoiceUser, bool]:
    """A record for a user `find` did not find, with its first `values` in its one INSERT (flushed, so it has an
    id), and True; or, when another transaction added the user since (two jobs changing the same user at once),
    that record as it is, and False. Any other unique value refused (a number another user took since) raises
    IntegrityError. The INSERT runs in a savepoint: the transaction goes on after a refusal."""
    added = TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=upn.lower(),
                           microsoft_user_id=microsoft_user_id, **values)
    try:
        async with session.begin_nested():
            session.add(added)
        return added, True
    except IntegrityError:
        record = await find(session, enterprise_id, upn)
        if record is None:
            raise
        return record, False


def known_as(record: TeamsVoiceUser, microsoft_user_id: str | None) -> TeamsVoiceUser:
    """The record, its Microsoft user id replaced when a known one differs."""
    if microsoft_user_id and record.microsoft_user_id != microsoft_user_id:
        record.microsoft_user_id = microsoft_user_id
    return record


async def by_microsoft_ids(session: AsyncSession, enterprise_id: int, microsoft_user_ids: list[str]) -> dict[str, TeamsVoiceUser]:
    """The enterprise's records of the Microsoft users given (those it has), by Microsoft user id."""
    if not microsoft_user_ids:
        return {}
    rows = await session.scalars(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.microsoft_user_id.in_(microsoft_user_ids)))
    return {r.microsoft_user_id or "": r for r in rows}


async def with_microsoft_user(session: AsyncSession, enterprise_id: int) -> list[TeamsVoiceUser]:
    """The enterprise's records that know their Microsoft user, in the order they were added."""
    return list(await session.scalars(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == enterprise_id, TeamsVoiceUser.microsoft_user_id.is_not(None)).order_by(TeamsVoiceUser.id)))


async def of_enterprise(session: AsyncSession, enterprise_id: int) -> list[TeamsVoiceUser]:
    """Every record of the enterprise, in the order they were added."""
    return list(await session.scalars(select(TeamsVoiceUser).where(
        TeamsVoiceUser.enterprise_id == enterprise_id).order_by(TeamsVoiceUser.id)))
