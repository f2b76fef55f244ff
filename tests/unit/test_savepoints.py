"""A savepoint belongs to the transaction around it, on both backends: a row added in one (a voice user's record
seen for the first time) is rolled back with that transaction when it fails later, audit entry and all. On SQLite
a savepoint opened before the transaction's first write used to start a transaction of its own, which its release
committed: a request refused after it (a licence quota exceeded) left the new record and its audit entry behind."""

import uuid

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.orgs.models import Enterprise, Reseller
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser


class Refused(Exception):
    pass


async def test_a_row_added_in_a_savepoint_goes_with_its_transaction(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    tag = uuid.uuid4().hex[:8]
    refused, kept, after = (f"{name}-{tag}@contoso.example" for name in ("refused", "kept", "after"))
    try:
        async with transaction(sessions) as session:
            reseller = Reseller(name=f"savepoint-{tag}", level="RESELLER")
            session.add(reseller)
            await session.flush()
            enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=f"savepoint-{tag}")
            session.add(enterprise)
        enterprise_id = enterprise.id

        with pytest.raises(Refused):  # the record is the transaction's first write; then the request is refused
            async with transaction(sessions) as session:
                await voice_users.find_or_add(session, enterprise_id, refused, "id-refused")
                raise Refused
        async with transaction(sessions) as session:  # a transaction that ends well keeps it
            await voice_users.find_or_add(session, enterprise_id, kept, "id-kept")
        async with transaction(sessions) as session:  # a savepoint refused does not end the transaction
            try:
                async with session.begin_nested():
                    session.add(TeamsVoiceUser(enterprise_id=enterprise_id, user_principal_name=kept))
            except IntegrityError:
                pass
            await voice_users.find_or_add(session, enterprise_id, after, "id-after")

        async with sessions() as session:
            names = set(await session.scalars(select(TeamsVoiceUser.user_principal_name).where(
                TeamsVoiceUser.user_principal_name.like(f"%-{tag}@%"))))
            audited = set(await session.scalars(select(AuditEntry.object_label).where(
                AuditEntry.aggregate == "teams_user", AuditEntry.object_label.like(f"%-{tag}@%"))))
            kept_rows = await session.scalar(select(func.count()).select_from(TeamsVoiceUser).where(
                TeamsVoiceUser.user_principal_name == kept))
        assert names == {kept, after} and kept_rows == 1
        assert audited == {kept, after}  # no entry of the record that was never kept
    finally:
        async with transaction(sessions) as session:
            await session.execute(delete(TeamsVoiceUser).where(TeamsVoiceUser.user_principal_name.like(f"%-{tag}@%")))
            await session.execute(delete(AuditEntry).where(AuditEntry.object_label.like(f"%-{tag}%")))
            await session.execute(delete(Enterprise).where(Enterprise.enterprise_name == f"savepoint-{tag}"))
            await session.execute(delete(Reseller).where(Reseller.name == f"savepoint-{tag}"))
        await engine.dispose()
