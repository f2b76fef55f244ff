"""A user's voice record when two transactions add it at once (two jobs changing the same user): the second finds
the first's record instead of failing (it failed with an IntegrityError, reported as 'Unexpected error' by a bulk
item). On both backends."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


@asynccontextmanager
async def _enterprise(database_url: str, name: str) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], int]]:
    """(sessions, id) of a new enterprise `name` of a new reseller; they and its voice users are deleted after."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    enterprise_id = -1  # (none yet: nothing of it to delete)
    try:
        async with sessions() as session:
            reseller = Reseller(name=name, level="RESELLER")
            session.add(reseller)
            await session.flush()
            enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=name)
            session.add(enterprise)
            await session.commit()
            enterprise_id = enterprise.id
        yield sessions, enterprise_id
    finally:
        async with sessions() as session:
            await session.execute(delete(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise_id))
            await session.execute(delete(Enterprise).where(Enterprise.enterprise_name == name))
            await session.execute(delete(Reseller).where(Reseller.name == name))
            await session.commit()
        await engine.dispose()


async def test_a_record_added_meanwhile_by_another_transaction_is_found_not_refused(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    upn = f"ada-{uuid.uuid4().hex[:8]}@contoso.example"
    async with _enterprise(database_url, f"race-{upn}") as (sessions, enterprise_id):
        async with sessions() as session:  # the other job: adds the record and commits first
            first = await voice_users.find_or_add(session, enterprise_id, upn, "id-old")
            await session.commit()
            first_id = first.id

        looked = voice_users.find

        async def stale_once(session, enterprise, name, microsoft_user_id=None):  # type: ignore[no-untyped-def]
            monkeypatch.setattr(voice_users, "find", looked)
            return None  # this job looked before the other committed

        monkeypatch.setattr(voice_users, "find", stale_once)
        async with sessions() as session:
            record = await voice_users.find_or_add(session, enterprise_id, upn, "id-new")
            await session.commit()
            assert (record.id, record.microsoft_user_id) == (first_id, "id-new")


async def test_a_user_renamed_in_entra_keeps_its_record_found_by_its_microsoft_id(database_url: str) -> None:
    """Both families find a user's record through `find_or_add` (ConnecttoTeams) or `find` (Fusion): after a
    rename, the record of the user's Microsoft id is found under the new name and renamed, its number kept; a name
    that matches a record still wins over the id (the user deleted and made again under that name)."""
    tag = uuid.uuid4().hex[:8]
    old, new, other = (f"{name}-{tag}@contoso.example" for name in ("ada", "ada.lovelace", "bob"))
    number = f"+3222{int(tag, 16) % 1_000_000:06d}"
    async with _enterprise(database_url, f"rename-{tag}") as (sessions, enterprise_id):
        async with sessions() as session:
            first, _ = await voice_users.add(session, enterprise_id, old, f"id-{tag}", phone_number=number)
            await voice_users.add(session, enterprise_id, other, f"id-other-{tag}")
            await session.commit()
        async with sessions() as session:
            renamed = await voice_users.find_or_add(session, enterprise_id, new.upper(), f"id-{tag}")
            await session.commit()
            assert (renamed.id, renamed.user_principal_name, renamed.phone_number) == (first.id, new, number)
        async with sessions() as session:
            assert await voice_users.find(session, enterprise_id, old) is None
            assert (await voice_users.find(session, enterprise_id, new)).id == first.id  # type: ignore[union-attr]
            by_name = await voice_users.find(session, enterprise_id, other, f"id-{tag}")
            assert by_name is not None and by_name.user_principal_name == other
            assert len(await voice_users.of_enterprise(session, enterprise_id)) == 2  # no record added
