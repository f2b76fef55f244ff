"""Fusion test helpers: logins per level on the demo provider tree, tenant/subscription creation through the
API, and onboarding a subscription to an emulated Microsoft tenant (admin consent + wizard)."""

import asyncio
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from teamsvoice import demo
from teamsvoice.core.db import create_engine, session_factory
from teamsvoice.domain.fusion import tenants as fusion_tenants
from teamsvoice.domain.orgs.models import Reseller

INSTANCE = "draas_v1"
BASE = f"/api/v01/draas/{INSTANCE}"
PASSWORD = "Fusion-Passw0rd!"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class FusionWorld:
    client: httpx.AsyncClient
    live: object
    organisation: demo.DemoOrganisation
    tokens: dict[str, str] = field(default_factory=dict)

    async def login(self, username: str, password: str = PASSWORD) -> str:
        response = await self.client.post("/api/v01/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    async def as_(self, who: str) -> dict[str, str]:
        if who not in self.tokens:
            self.tokens[who] = await self.login(who)
        return bearer(self.tokens[who])

    async def create_tenant(self, who: str = "reseller", name: str = "Acme", **extra) -> dict:
        response = await self.client.post(f"{BASE}/tenants", headers=await self.as_(who), json={"name": name, **extra})
        assert response.status_code == 200, response.text
        return response.json()

    async def create_subscription(self, tenant_uuid: str, who: str = "reseller", name: str = "Teams") -> dict:
        response = await self.client.post(f"{BASE}/tenants/{tenant_uuid}/subscriptions", headers=await self.as_(who),
                                          json={"name": name, "billingId": "B-1"})
        assert response.status_code == 200, response.text
        return response.json()

    async def tenant_login(self, tenant_uuid: str, username: str, permissions: list[str] | None = None) -> None:
        await self._with_session(lambda s: self._tenant_login(s, tenant_uuid, username, permissions))

    async def _tenant_login(self, session, tenant_uuid, username, permissions):  # type: ignore[no-untyped-def]
        from teamsvoice.domain.fusion.models import FusionTenant

        tenant = await session.scalar(select(FusionTenant).where(FusionTenant.uuid == tenant_uuid))
        await fusion_tenants.create_login(session, username=username, password=PASSWORD, level="tenant",
                                          fusion_tenant_id=tenant.id, permissions=permissions)

    async def _with_session(self, work):  # type: ignore[no-untyped-def]
        engine = create_engine(self.live.settings.effective_database_url)
        try:
            async with session_factory(engine)() as session:
                await work(session)
                await session.commit()
        finally:
            await engine.dispose()

    async def onboard(self, path: str, microsoft: dict, who: str = "reseller") -> dict:
        """POST admins, run the wizard; on missing consent the tenant admin grants it at the wizard's URL (and
        lands on the consent callback), then the wizard runs again."""
        headers = await self.as_(who)
        admin = microsoft["globalAdmin"]
        created = await self.client.post(f"{path}/msteams/admins", headers=headers,
                                         json={"msUsername": admin["username"], "msPassword": admin["password"]})
        assert created.status_code == 200, created.text
        wizard = await self.run_wizard(path, headers)
        if wizard["running"] is False and wizard.get("consentUrl"):
            callback = await asyncio.to_thread(demo.grant_admin_consent, wizard["consentUrl"], admin["username"],
                                               admin["password"], str(self.live.emulator.ca_cert_path))
            answered = await self.client.get(callback)  # the admin's browser lands on the consent callback
            assert answered.status_code == 200 and "Consent granted" in answered.text, answered.text
            wizard = await self.run_wizard(path, headers)
        assert wizard["status"] == "wizard_6_OK", wizard
        return wizard

    async def run_wizard(self, path: str, headers: dict) -> dict:
        started = await self.client.post(f"{path}/msteams/wizard", headers=headers)
        assert started.status_code == 200, started.text
        for _ in range(300):
            state = (await self.client.get(f"{path}/msteams/wizard", headers=headers)).json()
            if not state["running"]:
                return state
            await asyncio.sleep(0.1)
        raise AssertionError("the wizard did not finish")


async def make_world(client: httpx.AsyncClient, live, organisation: demo.DemoOrganisation) -> FusionWorld:  # type: ignore[no-untyped-def]
    """Logins: system (partner), distributor (master), reseller (reseller 1), other-reseller (reseller 2)."""
    world = FusionWorld(client, live, organisation)

    async def logins(session) -> None:  # type: ignore[no-untyped-def]
        partner = await session.scalar(select(Reseller).where(Reseller.level == "PARTNER"))
        for username, level, reseller_id in (
            ("system", "system", partner.id), ("distributor", "distributor", organisation.master.reseller_id),
            ("reseller", "reseller", organisation.resellers[0].reseller_id),
            ("other-reseller", "reseller", organisation.resellers[1].reseller_id),
        ):
            await fusion_tenants.create_login(session, username=username, password=PASSWORD, level=level,
                                              reseller_id=reseller_id)

    await world._with_session(logins)
    return world
