"""Teams apps through Graph v1.0: the tenant's app catalog (org-published apps), per-user installations,
and the directory writes the CallApp service account needs."""

from typing import Any
from urllib.parse import quote

from teamsvoice.core.errors import NotFound
from teamsvoice.microsoft.calling_ports import CatalogApp, Installation
from teamsvoice.microsoft.paths import object_segment
from teamsvoice.microsoft.ports import TenantConnection

GRAPH_BIND_BASE = "https://graph.microsoft.com/v1.0"


def _newest_version(app: dict[str, Any]) -> str | None:
    definitions = app.get("appDefinitions") or []
    return definitions[-1].get("version") if definitions else None


class GraphTeamsApps:
    def __init__(self, graph: Any) -> None:
        self._graph = graph

    async def find_app(self, external_id: str) -> CatalogApp | None:
        page = await self._graph.get("/appCatalogs/teamsApps", **{
            "$filter": f"externalId eq '{external_id}'", "$expand": "appDefinitions"})
        for app in page.get("value", []):
            return CatalogApp(app["id"], app.get("externalId") or external_id, _newest_version(app))
        return None

    async def publish(self, package: bytes) -> CatalogApp:
        response = await self._graph.request("POST", "/appCatalogs/teamsApps", content=package,
                                             headers={"Content-Type": "application/zip"})
        app = response.json()
        return CatalogApp(app["id"], app.get("externalId") or "", _newest_version(app))

    async def update(self, app_id: str, package: bytes) -> None:
        await self._graph.request("POST", f"/appCatalogs/teamsApps/{quote(app_id, safe='')}/appDefinitions", content=package,
                                  headers={"Content-Type": "application/zip"})

    async def installation(self, user_id: str, app_id: str) -> Installation | None:
        async for item in self._graph.pages(f"/users/{object_segment(user_id)}/teamwork/installedApps",
                                            **{"$expand": "teamsApp,teamsAppDefinition"}):
            app = item.get("teamsApp") or {}
            if app.get("id") == app_id:
                return Installation(item["id"], (item.get("teamsAppDefinition") or {}).get("version"))
        return None

    async def install(self, user_id: str, app_id: str) -> None:
        await self._graph.post(f"/users/{object_segment(user_id)}/teamwork/installedApps",
                               {"teamsApp@odata.bind": f"{GRAPH_BIND_BASE}/appCatalogs/teamsApps/{app_id}"})

    async def upgrade(self, user_id: str, installation_id: str) -> None:
        await self._graph.request("POST", f"/users/{object_segment(user_id)}/teamwork/installedApps/{quote(installation_id, safe='')}/upgrade")


class GraphUsers:
    def __init__(self, graph: Any) -> None:
        self._graph = graph

    async def find(self, upn: str) -> dict[str, Any] | None:
        try:
            return await self._graph.get(f"/users/{object_segment(upn)}")
        except NotFound:
            return None

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return (await self._graph.post("/users", body)).json()

    async def set_password(self, user_id: str, password: str) -> None:
        await self._graph.request("PATCH", f"/users/{object_segment(user_id)}", json={
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": False}})


def teams_apps(connection: TenantConnection) -> GraphTeamsApps:
    return GraphTeamsApps(connection.graph)


def users(connection: TenantConnection) -> GraphUsers:
    return GraphUsers(connection.graph)
