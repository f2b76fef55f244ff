"""Directory reads on Graph v1.0 and Teams voice: reads on Graph's admin/teams, writes through cmdlets."""

from typing import Any

from teamsvoice.microsoft.graph import GraphClient
from teamsvoice.microsoft.paths import object_segment
from teamsvoice.microsoft.ports import Cmdlets, VoiceState

GLOBAL_ADMIN_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"


class GraphDirectory:
    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    async def organization(self) -> dict[str, Any]:
        return (await self._graph.get("/organization"))["value"][0]

    async def user(self, id_or_upn: str) -> dict[str, Any]:
        return await self._graph.get(f"/users/{object_segment(id_or_upn)}")

    async def is_global_admin(self, user_id: str) -> bool:
        async for entry in self._graph.pages(f"/users/{object_segment(user_id)}/memberOf"):
            if entry.get("roleTemplateId") == GLOBAL_ADMIN_TEMPLATE_ID:
                return True
        return False


class TeamsVoiceAdapter:
    def __init__(self, graph: GraphClient, cmdlets: Cmdlets) -> None:
        self._graph = graph
        self._cmdlets = cmdlets

    async def voice_state(self, user_id: str) -> VoiceState:
        config = await self._graph.get(f"/admin/teams/userConfigurations/{object_segment(user_id)}")
        policy = next(
            (
                (a.get("policyAssignment") or {}).get("displayName")
                for a in config.get("effectivePolicyAssignments") or []
                if "voicerouting" in str(a.get("policyType", "")).lower()
            ),
            None,
        )
        return VoiceState(
            user_id=config["id"], user_principal_name=config.get("userPrincipalName", ""),
            enterprise_voice=bool(config.get("isEnterpriseVoiceEnabled")),
            phone_numbers=[n["telephoneNumber"] for n in config.get("telephoneNumbers") or []],
            voice_routing_policy=policy if policy not in ("", "Global") else None,
        )

    async def assign_number(self, user_principal_name: str, phone_number: str) -> None:
        await self._cmdlets.run(
            "Set-CsPhoneNumberAssignment",
            {"Identity": user_principal_name, "PhoneNumber": phone_number, "PhoneNumberType": "DirectRouting"},
        )

    async def remove_numbers(self, user_principal_name: str) -> None:
        await self._cmdlets.run("Remove-CsPhoneNumberAssignment", {"Identity": user_principal_name, "RemoveAll": True})

    async def set_enterprise_voice(self, user_principal_name: str, enabled: bool) -> None:
        await self._cmdlets.run(
            "Set-CsPhoneNumberAssignment", {"Identity": user_principal_name, "EnterpriseVoiceEnabled": enabled}
        )

    async def grant_voice_routing_policy(self, user_principal_name: str, policy: str | None) -> None:
        await self._cmdlets.run(
            "Grant-CsOnlineVoiceRoutingPolicy", {"Identity": user_principal_name, "PolicyName": policy}
        )
