"""Teams' own view of a tenant beyond voice settings (ports.TeamsAdmin): a user's SIP address
(Get-CsOnlineUser) and the probes that say whether Graph's admin/teams and the Teams cmdlets answer."""

from teamsvoice.microsoft.graph import GraphClient
from teamsvoice.microsoft.ports import Cmdlets


class TeamsAdminAdapter:
    def __init__(self, graph: GraphClient, cmdlets: Cmdlets) -> None:
        self._graph = graph
        self._cmdlets = cmdlets

    async def sip_address(self, id_or_upn: str) -> str | None:
        output = await self._cmdlets.run("Get-CsOnlineUser", {"Identity": id_or_upn})
        if not output or not output[0].get("SipAddress"):
            return None
        return str(output[0]["SipAddress"])

    async def check_graph_teams_admin(self) -> None:
        await self._graph.get("/admin/teams/userConfigurations", **{"$top": 1})

    async def check_powershell(self, as_user: str | None = None) -> None:
        if as_user is not None:
            await self._cmdlets.run("Get-CsOnlineUser", {"Identity": as_user})
        else:
            await self._cmdlets.run("Get-CsOnlineVoiceRoutingPolicy", {"Identity": "Global"})
