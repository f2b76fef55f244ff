"""A dedicated emulator over HTTPS for the connector tests (fault injection must not disturb other areas),
a seeded tenant, our app registered and admin-consented through the emulator's sign-in pages, and a
MicrosoftConnector configured exactly as production builds it."""

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from m365_emulator.server import EmulatorServer
from m365_emulator.settings import EmulatorSettings
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.settings import Settings
from tests.support.browser import forms

ADMIN_PASSWORD = "Adm1n-Passw0rd!"
APPLICATION_PERMISSIONS = [
    "User.ReadWrite.All", "Directory.ReadWrite.All", "Group.ReadWrite.All", "LicenseAssignment.ReadWrite.All",
    "Organization.Read.All", "TeamsUserConfiguration.Read.All", "TeamsTelephoneNumber.ReadWrite.All",
    "TeamsPolicyUserAssign.ReadWrite.All",
]
REDIRECT_URI = "https://localhost:5001/auth/callback"


@dataclass
class MsEmulator:
    url: str
    ca: Path
    admin: httpx.Client


@dataclass
class SeededTenant:
    tenant_id: str
    domain: str
    admin: str


@dataclass
class RegisteredApp:
    client_id: str
    secret: str


@pytest.fixture(scope="session")
def ms_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MsEmulator]:
    server = EmulatorServer(EmulatorSettings(data_dir=tmp_path_factory.mktemp("m365-connector"), public_url=""))
    server.start()
    with httpx.Client(base_url=server.url, verify=str(server.ca_cert_path), timeout=30) as admin:
        yield MsEmulator(server.url, Path(server.ca_cert_path), admin)
    server.stop()


def seed_tenant(emulator: MsEmulator, domain: str, users: int, licences: list[dict] | None = None) -> SeededTenant:
    body = {"displayName": domain.split(".")[0].capitalize(), "domain": domain, "userCount": users,
            "globalAdmin": {"username": f"admin@{domain}", "password": ADMIN_PASSWORD}}
    if licences is not None:
        body["licenses"] = licences
    response = emulator.admin.post("/_admin/tenants", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    return SeededTenant(created["tenantId"], domain, created["globalAdmin"]["username"])


def register_app(emulator: MsEmulator) -> RegisteredApp:
    app = RegisteredApp(str(uuid.uuid4()), f"secret-{uuid.uuid4()}")
    response = emulator.admin.post("/_admin/applications", json={
        "appId": app.client_id, "displayName": "teamsvoice-connector-tests", "clientSecret": app.secret,
        "redirectUris": [REDIRECT_URI], "delegatedPermissions": ["Directory.ReadWrite.All", "User.ReadWrite.All"],
        "applicationPermissions": APPLICATION_PERMISSIONS,
    })
    assert response.status_code == 201, response.text
    return app


def admin_consent(emulator: MsEmulator, tenant: SeededTenant, app: RegisteredApp) -> None:
    """The tenant's Global Administrator signs in and accepts, as in a browser without JavaScript."""
    url = str(httpx.URL(f"{emulator.url}/{tenant.tenant_id}/oauth2/v2.0/authorize", params={
        "client_id": app.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": "openid offline_access Directory.ReadWrite.All", "state": "s", "prompt": "admin_consent",
    }))
    with httpx.Client(verify=str(emulator.ca), timeout=30) as browser:
        page = browser.get(url)
        form = forms(page.text)[0]
        page = browser.post(urljoin(str(page.url), form.action),
                            data={**form.fields, "username": tenant.admin, "password": ADMIN_PASSWORD})
        if page.status_code == 200 and forms(page.text):
            form = forms(page.text)[0]
            page = browser.post(urljoin(str(page.url), form.action), data={**form.fields, "consent": "accept"})
        assert page.status_code == 302 and "code=" in page.headers["location"], page.text


@pytest.fixture(scope="session")
def app(ms_emulator: MsEmulator) -> RegisteredApp:
    return register_app(ms_emulator)


@pytest.fixture(scope="session")
def tenant(ms_emulator: MsEmulator, app: RegisteredApp) -> SeededTenant:
    seeded = seed_tenant(ms_emulator, "northwind.example", users=150, licences=[
        {"skuPartNumber": "ENTERPRISEPACK", "units": 400}, {"skuPartNumber": "MCOEV", "units": 400},
        {"skuPartNumber": "PHONESYSTEM_VIRTUALUSER", "units": 2},
    ])
    admin_consent(ms_emulator, seeded, app)
    return seeded


def connector_settings(emulator: MsEmulator, app: RegisteredApp, tmp: Path, **overrides: object) -> Settings:
    values = dict(
        data_dir=tmp, microsoft_mode="emulator", microsoft_login_url=emulator.url,
        microsoft_graph_url=f"{emulator.url}/v1.0", microsoft_powershell_url=f"{emulator.url}/_powershell/invoke",
        microsoft_ca_bundle=str(emulator.ca), microsoft_client_id=app.client_id, microsoft_client_secret=app.secret,
        microsoft_retry_base_delay_seconds=0.05,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
async def connector(ms_emulator: MsEmulator, app: RegisteredApp, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MicrosoftConnector]:
    connector = MicrosoftConnector(connector_settings(ms_emulator, app, tmp_path_factory.mktemp("tv")))
    yield connector
    await connector.aclose()
