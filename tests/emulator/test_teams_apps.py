"""Teams app catalog and per-user app installation through Graph v1.0."""

import io
import json
import uuid
import zipfile

import httpx
import pytest
from emulator_support import App, Browser, Tenant, delegated_token
from test_schema_conformance import check_object



def package(manifest_id: str, version: str, name: str = "Teams Voice", **overrides: object) -> bytes:
    manifest = {"$schema": "https://developer.microsoft.com/json-schemas/teams/v1.16/MicrosoftTeams.schema.json",
                "manifestVersion": "1.16", "id": manifest_id, "version": version,
                "name": {"short": name, "full": f"{name} for Teams"},
                "description": {"short": "Calling", "full": "Calling for everyone"}, **overrides}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        archive.writestr("color.png", b"\x89PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def admin_graph(http: httpx.Client, emulator, tenant: Tenant, consented_app: App):
    with httpx.Client(verify=str(emulator.ca_cert_path), timeout=10) as client:
        token = delegated_token(http, Browser(client), emulator.url, tenant, consented_app, "Directory.ReadWrite.All")
    with httpx.Client(base_url=f"{emulator.url}/v1.0", verify=str(emulator.ca_cert_path),
                      headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        yield client


ZIP = {"Content-Type": "application/zip"}


def test_publish_update_and_delete_in_the_catalog(admin_graph: httpx.Client, graph: httpx.Client, http: httpx.Client, tenant: Tenant) -> None:
    manifest_id = str(uuid.uuid4())
    refused = graph.post("/appCatalogs/teamsApps", content=package(manifest_id, "1.0.0"), headers=ZIP)
    assert refused.status_code == 403  # application permissions cannot publish
    published = admin_graph.post("/appCatalogs/teamsApps", content=package(manifest_id, "1.0.0"), headers=ZIP)
    assert published.status_code == 200, published.text
    app = published.json()
    assert app["externalId"] == manifest_id and app["distributionMethod"] == "organization" and app["displayName"] == "Teams Voice"
    duplicate = admin_graph.post("/appCatalogs/teamsApps", content=package(manifest_id, "1.0.1"), headers=ZIP)
    assert duplicate.status_code == 409 and duplicate.json()["error"]["code"] == "Conflict"
    invalid = admin_graph.post("/appCatalogs/teamsApps", content=package("not-a-guid", "1", name=""), headers=ZIP)
    assert invalid.status_code == 400 and "'version'" in invalid.json()["error"]["message"]
    assert admin_graph.post("/appCatalogs/teamsApps", content=b"not a zip", headers=ZIP).status_code == 400
    assert admin_graph.post("/appCatalogs/teamsApps", json={"id": manifest_id}).status_code == 415

    found = graph.get(f"/appCatalogs/teamsApps?$filter=externalId eq '{manifest_id}'&$expand=appDefinitions").json()["value"]
    assert [a["id"] for a in found] == [app["id"]]
    assert found[0]["appDefinitions"][0]["version"] == "1.0.0" and found[0]["appDefinitions"][0]["publishingState"] == "published"
    organization = graph.get("/appCatalogs/teamsApps?$filter=distributionMethod eq 'organization'").json()["value"]
    assert app["id"] in [a["id"] for a in organization] and "appDefinitions" not in organization[0]

    older = admin_graph.post(f"/appCatalogs/teamsApps/{app['id']}/appDefinitions", content=package(manifest_id, "0.9.0"), headers=ZIP)
    assert older.status_code == 400
    other = admin_graph.post(f"/appCatalogs/teamsApps/{app['id']}/appDefinitions", content=package(str(uuid.uuid4()), "2.0.0"), headers=ZIP)
    assert other.status_code == 400
    updated = admin_graph.post(f"/appCatalogs/teamsApps/{app['id']}/appDefinitions", content=package(manifest_id, "1.1.0", name="Teams Voice 2"), headers=ZIP)
    assert updated.status_code == 200 and updated.json()["version"] == "1.1.0" and updated.json()["teamsAppId"] == app["id"]
    fetched = graph.get(f"/appCatalogs/teamsApps/{app['id']}?$expand=appDefinitions").json()
    assert [d["version"] for d in fetched["appDefinitions"]] == ["1.0.0", "1.1.0"]

    catalog = http.get(f"/_admin/tenants/{tenant.tenant_id}/apps").json()["catalog"]
    assert any(a["id"] == app["id"] and len(a["appDefinitions"]) == 2 for a in catalog)
    assert admin_graph.delete(f"/appCatalogs/teamsApps/{app['id']}").status_code == 204
    assert graph.get(f"/appCatalogs/teamsApps/{app['id']}").status_code == 404


def test_install_upgrade_and_uninstall_for_a_user(admin_graph: httpx.Client, graph: httpx.Client, http: httpx.Client, tenant: Tenant) -> None:
    manifest_id = str(uuid.uuid4())
    app = admin_graph.post("/appCatalogs/teamsApps", content=package(manifest_id, "1.0.0"), headers=ZIP).json()
    user = graph.get("/users?$top=1&$filter=usageLocation eq 'GB'").json()["value"][0]["id"]
    bind = {"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{app['id']}"}
    installed = graph.post(f"/users/{user}/teamwork/installedApps", json=bind)
    assert installed.status_code == 201, installed.text
    installation_id = installed.json()["id"]
    assert graph.post(f"/users/{user}/teamwork/installedApps", json=bind).status_code == 409
    ghost = {"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{uuid.uuid4()}"}
    assert graph.post(f"/users/{user}/teamwork/installedApps", json=ghost).status_code == 404
    assert graph.post(f"/users/{user}/teamwork/installedApps", json={}).status_code == 400

    admin_graph.post(f"/appCatalogs/teamsApps/{app['id']}/appDefinitions", content=package(manifest_id, "1.2.0"), headers=ZIP)
    listed = graph.get(f"/users/{user}/teamwork/installedApps?$expand=teamsAppDefinition&$filter=teamsApp/id eq '{app['id']}'").json()["value"]
    assert [i["id"] for i in listed] == [installation_id] and listed[0]["teamsAppDefinition"]["version"] == "1.0.0"
    assert "teamsApp" not in listed[0]
    assert graph.get(f"/users/{user}/teamwork/installedApps?$filter=teamsApp/id eq '{uuid.uuid4()}'").json()["value"] == []
    assert graph.post(f"/users/{user}/teamwork/installedApps/{installation_id}/upgrade").status_code == 204
    upgraded = graph.get(f"/users/{user}/teamwork/installedApps/{installation_id}?$expand=teamsAppDefinition,teamsApp").json()
    assert upgraded["teamsAppDefinition"]["version"] == "1.2.0" and upgraded["teamsApp"]["externalId"] == manifest_id

    installations = http.get(f"/_admin/tenants/{tenant.tenant_id}/apps").json()["installations"]
    assert {"id": installation_id, "userId": user, "teamsAppId": app["id"], "externalId": manifest_id, "version": "1.2.0"}.items() <= next(
        i for i in installations if i["id"] == installation_id).items()
    assert graph.delete(f"/users/{user}/teamwork/installedApps/{installation_id}").status_code == 204
    assert graph.delete(f"/users/{user}/teamwork/installedApps/{installation_id}").status_code == 404
    assert graph.get(f"/users/{user}/teamwork/installedApps").json()["value"] == []


def test_app_objects_conform(admin_graph: httpx.Client, graph: httpx.Client) -> None:
    import json as _json
    from pathlib import Path

    path = Path("/work/shared/microsoft/graph-v1.0-entities-subset.json")
    if not path.exists():
        pytest.skip("Graph schema subset not available")
    schema = _json.loads(path.read_text())
    manifest_id = str(uuid.uuid4())
    app = admin_graph.post("/appCatalogs/teamsApps", content=package(manifest_id, "3.0.0"), headers=ZIP).json()
    user = graph.get("/users?$top=1&$filter=usageLocation eq 'US'").json()["value"][0]["id"]
    graph.post(f"/users/{user}/teamwork/installedApps", json={"teamsApp@odata.bind": f"https://graph.microsoft.com/v1.0/appCatalogs/teamsApps/{app['id']}"})
    for item in graph.get("/appCatalogs/teamsApps?$expand=appDefinitions").json()["value"]:
        check_object(schema, "graph.teamsApp", item)
    for item in graph.get(f"/users/{user}/teamwork/installedApps?$expand=teamsAppDefinition,teamsApp").json()["value"]:
        check_object(schema, "graph.userScopeTeamsAppInstallation", item)
