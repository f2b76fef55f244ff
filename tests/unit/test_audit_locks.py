"""A row lock is not a change: `orgs/repository._locked` takes it with an UPDATE that sets nothing new (`SET id =
id`), which the audit log recorded as a change of the row's id to nothing, on every bulk start, resource-account
change, unlink, refresh and credential regeneration. A real change made the same way is still recorded."""

import uuid

from sqlalchemy import delete, select, update

from teamsvoice.core.db import create_engine, session_factory, transaction
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.models import Enterprise, Reseller


async def test_locking_a_row_writes_no_audit_entry_and_a_change_still_does(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    tag = f"locks-{uuid.uuid4().hex[:8]}"
    try:
        async with transaction(sessions) as session:
            reseller = Reseller(name=tag, level="RESELLER")
            session.add(reseller)
            await session.flush()
            enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=tag)
            session.add(enterprise)
        async with transaction(sessions) as session:
            assert (await repository.locked_enterprise(session, enterprise.id)).enterprise_name == tag
            assert (await repository.locked_reseller(session, reseller.id)).name == tag

        async def updates() -> list[tuple[str, dict | None]]:
            async with sessions() as session:
                return [(e.action, e.after) for e in await session.scalars(select(AuditEntry).where(
                    AuditEntry.action.in_(["enterprise.update", "reseller.update"]),
                    AuditEntry.object_label.like(f"{tag}%")))]

        assert await updates() == []
        async with transaction(sessions) as session:
            await session.execute(update(Enterprise).where(Enterprise.id == enterprise.id)
                                  .values(enterprise_name=f"{tag}-renamed").execution_options(synchronize_session=False))
        assert [action for action, _ in await updates()] == ["enterprise.update"]
    finally:
        async with transaction(sessions) as session:
            await session.execute(delete(AuditEntry).where(AuditEntry.object_label.like(f"{tag}%")))
            await session.execute(delete(Enterprise).where(Enterprise.enterprise_name.like(f"{tag}%")))
            await session.execute(delete(Reseller).where(Reseller.name == tag))
        await engine.dispose()
