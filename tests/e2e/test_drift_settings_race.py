"""A tenant's drift settings row is created on first use by whichever comes first, the scan job or an API call:
the one that loses the race reads the winner's row instead of failing (it once logged a unique-constraint error)."""

from sqlalchemy import func, select

from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import drift
from teamsvoice.domain.voice_state.models import TenantDriftSettings


async def test_the_loser_of_the_first_use_race_reads_the_winners_row(live, organisation) -> None:
    engine = create_engine(live.settings.effective_database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            enterprise = Enterprise(reseller_id=organisation.resellers[0].reseller_id, enterprise_name="Race Customer")
            session.add(enterprise)
            await session.commit()
            enterprise_id = enterprise.id
        async with sessions() as loser, sessions() as winner:
            enterprise = await loser.get(Enterprise, enterprise_id)
            real_scalar = loser.scalar
            looks = 0

            async def scalar(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
                nonlocal looks
                looks += 1
                if looks == 1:  # the loser looked before the winner committed: it saw no row
                    won = await drift.settings_of(winner, await winner.get(Enterprise, enterprise_id))
                    won.auto_apply = True
                    await winner.commit()
                    return None
                return await real_scalar(statement, *args, **kwargs)

            loser.scalar = scalar  # type: ignore[method-assign]
            row = await drift.settings_of(loser, enterprise)
            assert row.auto_apply is True  # the winner's row
            await loser.commit()
        async with sessions() as session:
            count = await session.scalar(select(func.count()).select_from(TenantDriftSettings)
                                         .where(TenantDriftSettings.enterprise_id == enterprise_id))
            assert count == 1
    finally:
        await engine.dispose()
