"""A user's voice record when two transactions add it at once (two jobs changing the same user): the second finds
the first's record instead of failing (it failed with an IntegrityError, reported as 'Unexpected error' by a bulk
item). On both backends."""

import uuid

import pytest
from sqlalchemy import delete

from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


async def test_a_record_added_meanwhile_by_another_transaction_is_found_not_refused(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    upn = f"ada-{uuid.uuid4().hex[:8]}@contoso.example"
    try:
        async with sessions() as session:
            reseller = Reseller(name=f"race-{upn}", level="RESELLER")
            session.add(reseller)
            await session.flush()
            enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=f"race-{upn}")
            session.add(enterprise)
            await session.commit()
            enterprise_id = enterprise.id
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
    finally:
        async with sessions() as session:
            await session.execute(delete(TeamsVoiceUser).where(TeamsVoiceUser.user_principal_name == upn))
            await session.execute(delete(Enterprise).where(Enterprise.enterprise_name == f"race-{upn}"))
            await session.execute(delete(Reseller).where(Reseller.name == f"race-{upn}"))
            await session.commit()
        await engine.dispose()
