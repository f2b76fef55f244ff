"""Teams resource accounts (ports.ResourceAccounts) through the *-CsOnlineApplicationInstance cmdlets (Graph
v1.0 has no API for them)."""

from typing import Any

from teamsvoice.core.errors import NotFound, UpstreamError
from teamsvoice.microsoft.cmdlets import says_not_found
from teamsvoice.microsoft.ports import ApplicationInstance, Cmdlets


def _instance(data: dict[str, Any]) -> ApplicationInstance:
    phone = str(data["PhoneNumber"]).removeprefix("tel:") if data.get("PhoneNumber") else None
    return ApplicationInstance(str(data["ObjectId"]), str(data.get("UserPrincipalName") or ""),
                               str(data.get("DisplayName") or ""), str(data.get("ApplicationId") or ""), phone)


class CmdletResourceAccounts:
    def __init__(self, cmdlets: Cmdlets) -> None:
        self._cmdlets = cmdlets

    async def create(self, user_principal_name: str, application_id: str, display_name: str) -> str:
        created = await self._cmdlets.run("New-CsOnlineApplicationInstance", {
            "UserPrincipalName": user_principal_name, "ApplicationId": application_id, "DisplayName": display_name})
        return str(created[0]["ObjectId"])

    async def get(self, object_id: str) -> ApplicationInstance:
        """NotFound when Teams has none under that id (no output, or its not-found error)."""
        try:
            found = await self._cmdlets.run("Get-CsOnlineApplicationInstance", {"Identity": object_id})
        except UpstreamError as exc:
            if says_not_found(exc):
                raise NotFound(f"Teams has no resource account {object_id}") from exc
            raise
        if not found:
            raise NotFound(f"Teams has no resource account {object_id}")
        return _instance(found[0])

    async def update(self, object_id: str, *, display_name: str | None = None,
                     application_id: str | None = None) -> None:
        changes: dict[str, Any] = {}
        if display_name is not None:
            changes["DisplayName"] = display_name
        if application_id is not None:
            changes["ApplicationId"] = application_id
        if changes:
            await self._cmdlets.run("Set-CsOnlineApplicationInstance", {"Identity": object_id, **changes})

    async def all(self) -> list[ApplicationInstance]:
        return [_instance(item) for item in await self._cmdlets.run("Get-CsOnlineApplicationInstance", {})]
