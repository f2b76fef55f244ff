"""A real emulator over HTTPS for the whole session, with a seeded tenant and a consented app."""

from collections.abc import Iterator

import httpx
import pytest
from emulator_support import (
    ADMIN_PASSWORD,
    App,
    Browser,
    Tenant,
    app_token,
    cmdlet_invoker,
    authorize_url,
    redirect_params,
    register_app,
    seed_tenant,
)

from m365_emulator.server import EmulatorServer
from m365_emulator.settings import EmulatorSettings


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    server = EmulatorServer(EmulatorSettings(data_dir=tmp_path_factory.mktemp("m365")))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url, verify=str(emulator.ca_cert_path), timeout=10) as client:
        yield client


@pytest.fixture()
def browser(emulator: EmulatorServer) -> Iterator[Browser]:
    with httpx.Client(verify=str(emulator.ca_cert_path), timeout=10, follow_redirects=False) as client:
        yield Browser(client)


@pytest.fixture(scope="session")
def tenant(http: httpx.Client) -> Tenant:
    return seed_tenant(http, "contoso.example", user_count=120)


@pytest.fixture(scope="session")
def other_tenant(http: httpx.Client) -> Tenant:
    return seed_tenant(http, "fabrikam.example", user_count=3)


@pytest.fixture(scope="session")
def consented_app(http: httpx.Client, emulator: EmulatorServer, tenant: Tenant) -> App:
    """An app the tenant's Global Administrator has consented to (delegated and application)."""
    app = register_app(http, "teamsvoice")
    with httpx.Client(verify=str(emulator.ca_cert_path), timeout=10) as client:
        url = authorize_url(emulator.url, tenant.tenant_id, app, "openid offline_access Directory.ReadWrite.All")
        response = Browser(client).sign_in_and_consent(url, tenant.admin, ADMIN_PASSWORD)
    assert "code" in redirect_params(response)
    return app


@pytest.fixture(scope="session")
def graph(http: httpx.Client, emulator: EmulatorServer, tenant: Tenant, consented_app: App) -> Iterator[httpx.Client]:
    """Graph with an app-only token for the seeded tenant."""
    token = app_token(http, tenant, consented_app)
    with httpx.Client(
        base_url=f"{emulator.url}/v1.0",
        verify=str(emulator.ca_cert_path),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def pwsh(http: httpx.Client, tenant: Tenant, consented_app: App):
    """Invoke a Teams cmdlet in the seeded tenant: pwsh("Get-CsOnlineUser", Identity=...)."""
    return cmdlet_invoker(http, tenant, consented_app)
