"""State survives a restart with the same data directory."""

from pathlib import Path

import httpx
from emulator_support import ADMIN_PASSWORD, Browser, authorize_url, redirect_params, register_app, seed_tenant

from m365_emulator.server import EmulatorServer
from m365_emulator.settings import EmulatorSettings


def test_restart_keeps_tenants_apps_and_consents(tmp_path: Path) -> None:
    first = EmulatorServer(EmulatorSettings(data_dir=tmp_path))
    first.start()
    try:
        with httpx.Client(base_url=first.url, verify=str(first.ca_cert_path)) as http:
            tenant = seed_tenant(http, "northwind.example", user_count=5)
            app = register_app(http, "Persistent app")
            with httpx.Client(verify=str(first.ca_cert_path)) as client:
                url = authorize_url(first.url, tenant.tenant_id, app, "openid Directory.ReadWrite.All")
                assert "code" in redirect_params(Browser(client).sign_in_and_consent(url, tenant.admin, ADMIN_PASSWORD))
            jwks_before = http.get(f"/{tenant.tenant_id}/discovery/v2.0/keys").json()
    finally:
        first.stop()

    second = EmulatorServer(EmulatorSettings(data_dir=tmp_path))
    second.start()
    try:
        with httpx.Client(base_url=second.url, verify=str(second.ca_cert_path)) as http:
            assert http.get(f"/{tenant.tenant_id}/discovery/v2.0/keys").json() == jwks_before
            again = seed_tenant(http, "northwind.example", user_count=5)
            assert again.tenant_id == tenant.tenant_id and again.admin_id == tenant.admin_id
            summary = http.get(f"/_admin/tenants/{tenant.tenant_id}").json()
            assert summary["userCount"] == 6
            assert summary["consentedApps"][0]["appId"] == app.client_id
            token = http.post(
                f"/{tenant.domain}/oauth2/v2.0/token",
                data={"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": app.secret,
                      "scope": "https://graph.microsoft.com/.default"},
            )
            assert token.status_code == 200, token.text
            users = http.get("/v1.0/users", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            assert len(users.json()["value"]) == 6
    finally:
        second.stop()
