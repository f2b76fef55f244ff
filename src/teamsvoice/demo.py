"""Demo data for the embedded default: a provider tree with API credentials, and the Microsoft tenants
(in the emulator) that its customers will onboard. Written once, on first start."""

import json
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.db import create_blocking_engine, sync_transaction
from teamsvoice.core import phone
from teamsvoice.core.ids import new_client_id
from teamsvoice.core.security import Keyring, hash_secret, new_token
from teamsvoice.domain.fusion import numbers as fusion_numbers
from teamsvoice.domain.fusion import onboarding
from teamsvoice.domain.fusion.onboarding import CONSENT_CALLBACK_PATH as FUSION_CONSENT_CALLBACK_PATH
from teamsvoice.domain.fusion import tenants as fusion_tenants
from teamsvoice.domain.fusion.models import FusionTenant, FusionWizardRun
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.orgs.models import ApiClient, Enterprise, PbxType, PortalUser, Reseller, SbcGateway
from teamsvoice.settings import Settings

CREDENTIALS_FILE = "demo-credentials.json"
DEMO_TENANTS = [
    {"displayName": "Contoso Ltd", "domain": "contoso.example", "country": "US"},
    {"displayName": "Fabrikam NV", "domain": "fabrikam.example", "country": "BE"},
    # Onboarded to Fusion subscriptions by the seed (the two above stay free for ConnecttoTeams registration).
    {"displayName": "Adatum Corp", "domain": "adatum.example", "country": "US"},
    {"displayName": "Litware BV", "domain": "litware.example", "country": "NL"},
]
FUSION_DEMO_DOMAINS = ("adatum.example", "litware.example")
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


async def has_organisation(session: AsyncSession) -> bool:
    """Whether the database already has resellers (then nothing is seeded)."""
    return bool(await session.scalar(select(func.count(Reseller.id))))


async def seed_organisation(session: AsyncSession) -> DemoOrganisation | None:
    """Creates the demo provider tree, unless the database already has resellers."""
    if await has_organisation(session):
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


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def register_application(admin_url: str, ca_bundle: str | None, *, client_id: str, client_secret: str,
                         redirect_uri: str) -> None:
    """Registers teamsvoice's multi-tenant app in the emulator (kept current on every start)."""
    with httpx.Client(base_url=admin_url, verify=ca_bundle or True, timeout=30) as client:
        client.post("/_admin/applications", json={
            "appId": client_id, "displayName": "teamsvoice", "clientSecret": client_secret,
            # The ConnecttoTeams consent callback, and the Fusion admin-consent landing page on the same origin.
            "redirectUris": [redirect_uri, _origin(redirect_uri) + FUSION_CONSENT_CALLBACK_PATH],
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


# --- Fusion ---------------------------------------------------------------------------------------

FUSION_NUMBERS = {"US": ("+1", 4139301600), "BE": ("+32", 22100100), "NL": ("+31", 302861200)}
FUSION_NUMBERS_PER_SUBSCRIPTION = 10


class _Forms(HTMLParser):
    """Reads the emulator's sign-in and consent forms (action, hidden fields)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), {}))
        elif tag == "input" and self.forms and values.get("name") and values.get("type") == "hidden":
            self.forms[-1][1][values["name"]] = values.get("value", "")


def _form(page: str) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page)
    if not parser.forms:
        raise RuntimeError(f"expected a form in the sign-in page: {page[:300]}")
    return parser.forms[0]


def grant_admin_consent(consent_url: str, username: str, password: str, ca_bundle: str | None) -> str:
    """What the tenant's Global Administrator does with the wizard's consent URL: sign in and accept. Answers
    where Microsoft sends the browser then: teamsvoice's consent callback, with the code and state."""
    with httpx.Client(verify=ca_bundle or True, timeout=60, follow_redirects=False) as browser:
        page = browser.get(consent_url)
        action, fields = _form(page.text)
        answer = browser.post(urljoin(consent_url, action), data={**fields, "username": username, "password": password})
        if answer.status_code == 200:
            action, fields = _form(answer.text)
            answer = browser.post(urljoin(consent_url, action), data={**fields, "consent": "accept"})
        location = answer.headers.get("Location", "")
        if answer.status_code != 302 or "code=" not in location:
            raise RuntimeError(f"admin consent was not granted: {answer.status_code} {answer.text[:300]}")
        return location


def accept_consent_redirect(settings: Settings, keyring: Keyring, location: str) -> None:
    """What the consent callback does with Microsoft's answer, for the seed (no API is listening yet): the code
    redeemed, the consent recorded for the subscription."""
    import asyncio
    from urllib.parse import parse_qs

    from teamsvoice.core.db import create_engine, session_factory, transaction
    from teamsvoice.microsoft.connector import MicrosoftConnector

    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}

    async def accept() -> onboarding.ConsentAnswer:
        engine, connector = create_engine(settings.effective_database_url), MicrosoftConnector(settings)
        try:
            async with transaction(session_factory(engine)) as session:
                return await onboarding.accept_admin_consent(session, connector, keyring, settings.public_url or "",
                                                             state=query.get("state"), code=query.get("code"))
        finally:
            await connector.aclose()
            await engine.dispose()

    answer = asyncio.run(accept())
    if not answer.granted:
        raise RuntimeError(f"admin consent was not accepted: {answer.title}: {answer.message}")


@dataclass
class FusionSeed:
    logins: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    runs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (wizard run id, Microsoft tenant)


async def seed_fusion(session: AsyncSession, keyring: Keyring, organisation: DemoOrganisation,
                      microsoft_tenants: list[dict[str, Any]]) -> FusionSeed:
    """Logins per level, one tenant + subscription per Microsoft tenant (with numbers in its country and the
    tenant admin as MS Teams administrator), and a wizard run for each, to be executed by `onboard_fusion`."""
    partner = await session.scalar(select(Reseller).where(Reseller.level == "PARTNER").order_by(Reseller.id))
    assert partner is not None
    seed = FusionSeed()
    for level, reseller_id in (("system", partner.id), ("distributor", organisation.master.reseller_id),
                               ("reseller", organisation.resellers[1].reseller_id)):
        password = new_token(12)
        await fusion_tenants.create_login(session, username=f"fusion-{level}", password=password, level=level,
                                          reseller_id=reseller_id)
        seed.logins.append({"level": level, "username": f"fusion-{level}", "password": password})
    owner = await session.get(Reseller, organisation.resellers[1].reseller_id)
    assert owner is not None
    for microsoft in (t for t in microsoft_tenants if t["domain"] in FUSION_DEMO_DOMAINS):
        spec = next(t for t in DEMO_TENANTS if t["domain"] == microsoft["domain"])
        tenant = FusionTenant(name=spec["displayName"], billing_id=f"BILL-{spec['domain']}", markup=0.0,
                              owner_reseller_id=owner.id)
        session.add(tenant)
        await session.flush()
        subscription = await fusion_tenants.create_subscription(
            session, tenant, name="MS Teams Direct Routing", billing_id=f"SUB-{spec['domain']}", ms_teams_users=50,
            sip_trunk_channels=0)
        enterprise = await session.get(Enterprise, subscription.enterprise_id)
        assert enterprise is not None
        access = SubscriptionAccess(principal=None, tenant=tenant, subscription=subscription, enterprise=enterprise)  # type: ignore[arg-type]
        code, first = FUSION_NUMBERS[spec["country"]]
        digits = phone.calling_code(code)
        await fusion_numbers.add_numbers(session, access, fusion_numbers.expand_ranges(
            digits, [[first, first + FUSION_NUMBERS_PER_SUBSCRIPTION - 1]], spec["country"]), "ranges")
        admin = microsoft["globalAdmin"]
        await onboarding.set_admin(session, keyring, access, admin["username"], admin["password"])
        run = await onboarding.start_wizard(session, access)
        password = new_token(12)
        username = f"fusion-tenant-{spec['domain'].split('.')[0]}"
        await fusion_tenants.create_login(session, username=username, password=password, level="tenant",
                                          fusion_tenant_id=tenant.id)
        seed.logins.append({"level": "tenant", "username": username, "password": password, "tenantUuid": tenant.uuid})
        seed.subscriptions.append({"tenantUuid": tenant.uuid, "subscriptionId": subscription.id,
                                   "msTenantId": microsoft["tenantId"], "country": spec["country"]})
        seed.runs.append((run.id, microsoft))
    return seed


def onboard_fusion(settings: Settings, keyring: Keyring, seed: FusionSeed) -> None:
    """Runs each subscription's onboarding wizard (the same steps as the durable job). Its first run stops at the
    consent URL: the demo tenant's admin grants it there, the answer is accepted as the callback would, and the
    wizard runs again."""
    from teamsvoice.jobs.fusion_wizard import run_wizard

    engine = create_blocking_engine(settings.effective_database_url)
    try:
        for run_id, microsoft in seed.runs:
            if run_wizard(engine, settings, keyring, run_id):
                continue
            with sync_transaction(engine) as session:
                run = session.get(FusionWizardRun, run_id)
                assert run is not None
                if not run.consent_url:
                    raise RuntimeError(f"Fusion onboarding of {microsoft['domain']} failed: {run.error}")
                consent = run.consent_url
                retry = FusionWizardRun(subscription_id=run.subscription_id, running=True,
                                        steps=onboarding.initial_steps(), status="wizard_0_OK")
                session.add(retry)
                session.flush()
                retry_id = retry.id
            accept_consent_redirect(settings, keyring, grant_admin_consent(
                consent, microsoft["globalAdmin"]["username"], microsoft["globalAdmin"]["password"], settings.microsoft_ca_bundle))
            if not run_wizard(engine, settings, keyring, retry_id):
                with sync_transaction(engine) as session:
                    failed = session.get(FusionWizardRun, retry_id)
                    raise RuntimeError(f"Fusion onboarding of {microsoft['domain']} failed: {failed.error if failed else '?'}")
    finally:
        engine.dispose()


def fusion_document(seed: FusionSeed, draas_instance: str) -> dict[str, Any]:
    return {"draasInstance": draas_instance,
            "subscriptions": [{k: s[k] for k in ("tenantUuid", "subscriptionId", "msTenantId")} for s in seed.subscriptions],
            "logins": seed.logins}
