"""An onboarded subscription with free numbers, for the MS Teams users tests."""

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.support import BASE, FusionWorld, make_world


@dataclass
class Onboarded:
    world: FusionWorld
    path: str
    headers: dict
    tenant: dict
    numbers: list[str]

    async def users(self, count: int = 10, *, teams_phone: bool = True) -> list[dict]:
        """The first `count` users licensed for Teams Phone (`voiceEnabled: yes`), the ones that may be given a
        number (Microsoft refuses one to the others, and so does teamsvoice); every user with teams_phone=False."""
        params = {"page_size": count} | ({"filters": json.dumps({"is_voice_enabled": "yes"})} if teams_phone else {})
        response = await self.world.client.get(f"{self.path}/msteams/users", headers=self.headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()["users"]

    async def graph(self, path: str, **params: str) -> dict:
        connector = MicrosoftConnector(self.world.live.settings)
        try:
            return await connector.connect(self.tenant["tenantId"]).graph.get(path, **params)
        finally:
            await connector.aclose()

    async def resource_account_settled(self, ra_id: int) -> dict:
        """The resource account once its job has ended (status active or error), as the list answers it."""
        for _ in range(200):
            accounts = (await self.world.client.get(f"{self.path}/msteams/resource_accounts", headers=self.headers)).json()["resourceAccounts"]
            mine = [a for a in accounts if a.get("draas", {}).get("id") == ra_id]
            if mine and mine[0]["draas"]["status"] in ("active", "error"):
                return mine[0]
            await asyncio.sleep(0.1)
        raise AssertionError("the resource account did not settle")

    async def teams_numbers(self, user_id: str) -> list[str]:
        config = await self.graph(f"/admin/teams/userConfigurations/{user_id}")
        return [n["telephoneNumber"] for n in config.get("telephoneNumbers") or []]

    async def recorded_number(self, user_id: str) -> str | None:
        """The user's number as teamsvoice records it (the API's `draas.phoneNumber`)."""
        got = await self.world.client.get(f"{self.path}/msteams/user/{user_id}", headers=self.headers)
        assert got.status_code == 200, got.text
        return got.json().get("draas", {}).get("phoneNumber")

    async def free_numbers(self) -> list[str]:
        free = await self.world.client.get(f"{self.path}/free_numbers", headers=self.headers, params={"page_size": 100})
        assert free.status_code == 200, free.text
        return free.json()["freeNumbers"]

    @asynccontextmanager
    async def as_a_worker(self) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], SubscriptionAccess, MicrosoftConnector]]:
        """The subscription's database and Microsoft as a job's process reaches them, beside the live server (whose
        job engine runs on meanwhile): sessions, the subscription's access and a connector of the block's own."""
        from teamsvoice.core.db import create_engine, session_factory, transaction
        from teamsvoice.domain.teams_users import bulk

        engine = create_engine(self.world.live.settings.effective_database_url)
        sessions = session_factory(engine)
        connector = MicrosoftConnector(self.world.live.settings)
        try:
            async with transaction(sessions) as session:
                access = await bulk.load_access(session, int(self.path.rsplit("/", 1)[1]))
            yield sessions, access, connector
        finally:
            await connector.aclose()
            await engine.dispose()


async def onboard(client, live, organisation, *, tenant_index: int = 0, count: int = 20,  # type: ignore[no-untyped-def]
                  microsoft: dict | None = None) -> Onboarded:
    """A subscription onboarded to the seeded tenant `tenant_index`, or to `microsoft` (`emulated_tenant`'s)."""
    world = await make_world(client, live, organisation)
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}"
    microsoft = microsoft if microsoft is not None else live.emulator.tenants[tenant_index]
    await world.onboard(path, microsoft)
    headers = await world.as_("reseller")
    # Fresh numbers each test: the emulated tenant keeps its Teams numbers across tests.
    start = 22000000 + random.randrange(0, 7_000_000 // 100) * 100
    added = await client.post(f"{path}/numbers", headers=headers, json={"countryCode": "+32", "ranges": [[start, start + count - 1]]})
    assert added.status_code == 200, added.text
    return Onboarded(world, path, headers, microsoft, [f"+32{start + i}" for i in range(count)])
