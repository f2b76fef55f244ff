"""Helpers for the connector tests: seeding over /_admin, admin consent through the sign-in pages, settings."""

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

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


def admin_consent(emulator: MsEmulator, tenant: SeededTenant, app: RegisteredApp,
                  scope: str = "Directory.ReadWrite.All") -> str:
    """The tenant's Global Administrator signs in and accepts, as in a browser without JavaScript. Answers the
    authorization code the redirect carries (a delegated token for the administrator, if redeemed)."""
    url = str(httpx.URL(f"{emulator.url}/{tenant.tenant_id}/oauth2/v2.0/authorize", params={
        "client_id": app.client_id, "response_type": "code", "redirect_uri": REDIRECT_URI,
        "scope": f"openid offline_access {scope}", "state": "s", "prompt": "admin_consent",
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
    return parse_qs(urlsplit(page.headers["location"]).query)["code"][0]


def connector_settings(emulator: MsEmulator, app: RegisteredApp, tmp: Path, **overrides: object) -> Settings:
    values = dict(
        data_dir=tmp, microsoft_mode="emulator", microsoft_login_url=emulator.url,
        microsoft_graph_url=f"{emulator.url}/v1.0", microsoft_powershell_url=f"{emulator.url}/_powershell/invoke",
        microsoft_ca_bundle=str(emulator.ca), microsoft_client_id=app.client_id, microsoft_client_secret=app.secret,
        microsoft_retry_base_delay_seconds=0.05,
    )
    values.update(overrides)
    return Settings(**values)
