"""Demo data for the embedded default: a provider tree with API credentials, and the Microsoft tenants
(in the emulator) that its customers will onboard. Written once, on first start."""

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.ids import new_client_id
from teamsvoice.core.security import hash_secret, new_token
from teamsvoice.domain.orgs.models import ApiClient, PbxType, PortalUser, Reseller, SbcGateway

CREDENTIALS_FILE = "demo-credentials.json"
DEMO_TENANTS = [
    {"displayName": "Contoso Ltd", "domain": "contoso.example", "country": "US"},
    {"displayName": "Fabrikam NV", "domain": "fabrikam.example", "country": "BE"},
]
REGIONS = [("US-East", "sbc-us-east"), ("EU-West", "sbc-eu-west")]


@dataclass
class Login:
    reseller_id: int
    name: str
    client_id: str
    client_secret: str
    username: str
    password: str

    def wire(self) -> dict[str, Any]:
        return {"resellerId": self.reseller_id, "name": self.name, "clientId": self.client_id,
                "clientSecret": self.client_secret, "username": self.username, "password": self.password}


@dataclass
class DemoOrganisation:
    master: Login
    resellers: list[Login] = field(default_factory=list)


async def _reseller_with_login(session: AsyncSession, name: str, level: str, parent_id: int | None, username: str) -> Login:
    reseller = Reseller(name=name, level=level, parent_id=parent_id, registered_redirect_urls=[])
    session.add(reseller)
    await session.flush()
    password, client_id, client_secret = new_token(12), new_client_id(), new_token(24)
    session.add(PortalUser(username=username, password_hash=hash_secret(password), user_type=level,
                           reseller_id=reseller.id, email=f"{username}@provider.example"))
    session.add(ApiClient(client_id=client_id, secret_hash=hash_secret(client_secret), reseller_id=reseller.id))
    for region, host in REGIONS:
        session.add(SbcGateway(reseller_id=reseller.id, region=region, fqdn=f"{host}.{username}.provider.example"))
    session.add(PbxType(reseller_id=reseller.id, pbx_name="BroadWorks", pbx_label="Cisco BroadWorks", is_default=True))
    session.add(PbxType(reseller_id=reseller.id, pbx_name="Asterisk", pbx_label="Asterisk PBX", hosting_type="OnPrem"))
    await session.flush()
    return Login(reseller.id, name, client_id, client_secret, username, password)


async def seed_organisation(session: AsyncSession) -> DemoOrganisation | None:
    """Creates the demo provider tree, unless the database already has resellers."""
    if await session.scalar(select(func.count(Reseller.id))):
        return None
    partner = Reseller(name="Demo Partner", level="PARTNER", registered_redirect_urls=[])
    session.add(partner)
    await session.flush()
    master = await _reseller_with_login(session, "Demo Master Reseller", "MASTER_RESELLER", partner.id, "master-admin")
    demo = DemoOrganisation(master=master)
    for index, name in enumerate(["Northwind Telecom", "Tailspin Voice"], start=1):
        demo.resellers.append(
            await _reseller_with_login(session, name, "RESELLER", master.reseller_id, f"reseller{index}-admin"))
    return demo


def seed_microsoft_tenants(admin_url: str, ca_bundle: str | None) -> list[dict[str, Any]]:
    """Asks the emulator's admin API for the demo tenants (idempotent by domain)."""
    tenants = []
    with httpx.Client(base_url=admin_url, verify=ca_bundle or True, timeout=60) as client:
        for spec in DEMO_TENANTS:
            password = f"Demo-{secrets.token_urlsafe(9)}"
            response = client.post("/_admin/tenants", json={
                "displayName": spec["displayName"], "domain": spec["domain"], "userCount": 24,
                "globalAdmin": {"username": f"admin@{spec['domain']}", "password": password},
            })
            response.raise_for_status()
            created = response.json()
            tenants.append({"tenantId": created["tenantId"], "domain": created["domain"],
                            "globalAdmin": {"username": created["globalAdmin"]["username"],
                                            "password": created["globalAdmin"].get("password", password)}})
    return tenants


def register_application(admin_url: str, ca_bundle: str | None, *, client_id: str, client_secret: str,
                         redirect_uri: str) -> None:
    """Registers teamsvoice's multi-tenant app in the emulator (kept current on every start)."""
    with httpx.Client(base_url=admin_url, verify=ca_bundle or True, timeout=30) as client:
        client.post("/_admin/applications", json={
            "appId": client_id, "displayName": "teamsvoice", "clientSecret": client_secret,
            "redirectUris": [redirect_uri],
            "delegatedPermissions": [],
            "applicationPermissions": [
                "User.ReadWrite.All", "Directory.ReadWrite.All", "Organization.Read.All", "Group.ReadWrite.All",
                "TeamsTelephoneNumber.ReadWrite.All", "TeamsPolicyUserAssign.ReadWrite.All",
                "TeamsUserConfiguration.Read.All", "TeamsAppInstallation.ReadWriteForUser.All",
                "AppCatalog.ReadWrite.All",
            ],
        }).raise_for_status()


def write_credentials(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2))
    path.chmod(0o600)


def read_credentials(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None
