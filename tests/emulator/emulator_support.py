"""Helpers for the emulator tests: seeding over /_admin, and a small browser that walks the sign-in and
consent pages by their HTML forms."""

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlparse

import httpx

from tests.support.browser import forms

ADMIN_PASSWORD = "Adm1n-Passw0rd!"
GRAPH_APPLICATION_PERMISSIONS = [
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Group.ReadWrite.All",
    "LicenseAssignment.ReadWrite.All",
    "TeamsUserConfiguration.Read.All",
    "TeamsTelephoneNumber.ReadWrite.All",
    "TeamsPolicyUserAssign.ReadWrite.All",
    "AppCatalog.Read.All",
    "TeamsAppInstallation.ReadWriteForUser.All",
]
REDIRECT_URI = "https://localhost:5001/auth/callback"


@dataclass
class App:
    client_id: str
    secret: str
    redirect_uri: str


@dataclass
class Tenant:
    tenant_id: str
    domain: str
    admin: str
    admin_id: str


class Browser:
    """Drives the emulator's HTML pages the way a user without JavaScript would."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def open(self, url: str) -> httpx.Response:
        return self.client.get(url)

    def submit(self, page: httpx.Response, values: dict[str, str], button: tuple[str, str] | None = None) -> httpx.Response:
        form = forms(page.text)[0]
        data = {**form.fields, **values}
        if button:
            data[button[0]] = button[1]
        return self.client.post(urljoin(str(page.url), form.action), data=data)

    def sign_in(self, url: str, username: str, password: str) -> httpx.Response:
        return self.submit(self.open(url), {"username": username, "password": password})

    def consent(self, page: httpx.Response, accept: bool = True) -> httpx.Response:
        return self.submit(page, {}, ("consent", "accept" if accept else "cancel"))

    def sign_in_and_consent(self, url: str, username: str, password: str) -> httpx.Response:
        page = self.sign_in(url, username, password)
        if page.status_code == 200 and "Permissions requested" in page.text:
            page = self.consent(page)
        return page


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = urlparse(response.headers["location"])
    return {key: values[0] for key, values in parse_qs(location.query or location.fragment).items()}


def seed_tenant(http: httpx.Client, domain: str, user_count: int = 20) -> Tenant:
    response = http.post(
        "/_admin/tenants",
        json={
            "displayName": domain.split(".")[0].capitalize(),
            "domain": domain,
            "userCount": user_count,
            "globalAdmin": {"username": f"admin@{domain}", "password": ADMIN_PASSWORD},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(body["tenantId"], domain, body["globalAdmin"]["username"], body["globalAdmin"]["id"])


def register_app(http: httpx.Client, name: str, delegated: list[str] | None = None) -> App:
    app = App(str(uuid.uuid4()), f"secret-{uuid.uuid4()}", REDIRECT_URI)
    response = http.post(
        "/_admin/applications",
        json={
            "appId": app.client_id,
            "displayName": name,
            "clientSecret": app.secret,
            "redirectUris": [app.redirect_uri],
            "delegatedPermissions": delegated or ["Directory.ReadWrite.All", "User.ReadWrite.All"],
            "applicationPermissions": GRAPH_APPLICATION_PERMISSIONS,
        },
    )
    assert response.status_code == 201, response.text
    return app


def authorize_url(base: str, tenant: str, app: App, scope: str, **extra: str) -> str:
    params = {
        "client_id": app.client_id,
        "response_type": "code",
        "redirect_uri": app.redirect_uri,
        "scope": scope,
        "state": "xyz",
        **extra,
    }
    return str(httpx.URL(f"{base}/{tenant}/oauth2/v2.0/authorize", params=params))


def app_token(http: httpx.Client, tenant: Tenant, app: App, resource: str = "https://graph.microsoft.com") -> str:
    response = http.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.secret,
            "scope": f"{resource}/.default",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


TEAMS_ADMIN_API = "48ac35b8-9aa8-4d74-927d-1f4a14a0b239"


def cmdlet_invoker(http: httpx.Client, tenant: Tenant, app: App):
    token = app_token(http, tenant, app, resource=TEAMS_ADMIN_API)

    def invoke(cmdlet: str, **parameters: object) -> httpx.Response:
        return http.post(
            "/_powershell/invoke",
            json={"cmdlet": cmdlet, "parameters": parameters},
            headers={"Authorization": f"Bearer {token}"},
        )

    return invoke


def delegated_token(http: httpx.Client, browser: "Browser", base: str, tenant: Tenant, app: App, scope: str) -> str:
    """A delegated Graph token for the tenant's Global Administrator, through the authorization code flow."""
    url = authorize_url(base, tenant.tenant_id, app, f"openid offline_access {scope}")
    code = redirect_params(browser.sign_in_and_consent(url, tenant.admin, ADMIN_PASSWORD))["code"]
    response = http.post(
        f"/{tenant.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "authorization_code", "client_id": app.client_id, "client_secret": app.secret,
              "code": code, "redirect_uri": app.redirect_uri},
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]
