"""A dedicated emulator over HTTPS for the connector tests (fault injection must not disturb other areas),
a seeded tenant, our app registered and admin-consented through the emulator's sign-in pages, and a
MicrosoftConnector configured exactly as production builds it."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from m365_emulator.server import EmulatorServer
from m365_emulator.settings import EmulatorSettings
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.microsoft.support import (
    MsEmulator, RegisteredApp, SeededTenant, admin_consent, connector_settings, register_app, seed_tenant,
)


@pytest.fixture(scope="session")
def ms_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MsEmulator]:
    server = EmulatorServer(EmulatorSettings(data_dir=tmp_path_factory.mktemp("m365-connector"), public_url=""))
    server.start()
    with httpx.Client(base_url=server.url, verify=str(server.ca_cert_path), timeout=30) as admin:
        yield MsEmulator(server.url, Path(server.ca_cert_path), admin)
    server.stop()


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


@pytest.fixture(scope="session")
async def connector(ms_emulator: MsEmulator, app: RegisteredApp, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MicrosoftConnector]:
    connector = MicrosoftConnector(connector_settings(ms_emulator, app, tmp_path_factory.mktemp("tv")))
    yield connector
    await connector.aclose()

