"""Direct database work from a test, beside the live server."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.app import create_app
from teamsvoice.core.db import create_engine, session_factory

T = TypeVar("T")


async def in_session(live: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Runs `work(session)` on the live server's database and commits; answers what `work` answers."""
    engine = create_engine(live.settings.effective_database_url)
    try:
        async with session_factory(engine)() as session:
            result = await work(session)
            await session.commit()
            return result
    finally:
        await engine.dispose()


@asynccontextmanager
async def rolled_back_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on `database_url` inside one transaction that is rolled back at the end however the block ends, so
    a test leaves nothing behind for the others sharing the database."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            await session.begin()
            try:
                yield session
            finally:
                await session.rollback()
    finally:
        await engine.dispose()


async def add_customer(session: AsyncSession, reseller_id: int, name: str) -> tuple[int, int]:
    """A reseller's customer as records only (an enterprise, its Fusion tenant and a subscription `voice`, no
    Microsoft tenant): answers (enterprise id, subscription id)."""
    enterprise_id, _tenant_uuid, subscription_id = await customer_records(session, reseller_id, name)
    return enterprise_id, subscription_id


async def customer_records(session: AsyncSession, reseller_id: int, name: str, *, services: list[str] | None = None,
                           ) -> tuple[int, str, int]:
    """`add_customer`'s records, its enterprise given `services` (else the model's default, as the Fusion API makes
    one: Direct Routing): answers (enterprise id, tenant uuid, subscription id)."""
    from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
    from teamsvoice.domain.orgs.models import Enterprise

    enterprise = Enterprise(reseller_id=reseller_id, enterprise_name=name,
                            **({"services": services} if services is not None else {}))
    tenant = FusionTenant(name=name, owner_reseller_id=reseller_id)
    session.add_all([enterprise, tenant])
    await session.flush()
    subscription = FusionSubscription(fusion_tenant_id=tenant.id, name="voice", enterprise_id=enterprise.id)
    session.add(subscription)
    await session.flush()
    return enterprise.id, tenant.uuid, subscription.id



@asynccontextmanager
async def counted_app(live: Any, *, credential_cache_seconds: float) -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    """The app on the live server's database in process (so that its statements can be counted), its credential
    cache's TTL set (0: every request looks its token up, one statement), and the count of statements its engine
    sent."""
    app = create_app(live.settings.model_copy(update={"credential_cache_seconds": credential_cache_seconds}),
                     jobs_role=None)
    engine = app.state.container.engine.sync_engine
    sent = [0]

    def count(*_: Any) -> None:
        sent[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            yield client, sent
    finally:
        event.remove(engine, "before_cursor_execute", count)
        await app.state.container.aclose()
