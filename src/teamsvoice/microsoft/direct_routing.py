"""Direct Routing objects of a tenant through the MicrosoftTeams cmdlets (Graph v1.0 has none of them)."""

from typing import Any

from teamsvoice.core.remembered import Remembered
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.ports import Cmdlets

POLICY_NAMES_SECONDS = 60.0
# Tenant id -> its per-user voice routing policies' names in lower case: what `has_policy` last read.
_POLICY_NAMES: Remembered[frozenset[str]] = Remembered(POLICY_NAMES_SECONDS)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _untag(identity: str) -> str:
    return identity.split(":", 1)[1] if identity.lower().startswith("tag:") else identity


class CmdletDirectRouting:
    def __init__(self, cmdlets: Cmdlets, tenant_id: str) -> None:
        self._cmdlets = cmdlets
        self._tenant_id = tenant_id

    async def inventory(self) -> RoutingInventory:
        gateways = await self._cmdlets.run("Get-CsOnlinePSTNGateway", {})
        usages = await self._cmdlets.run("Get-CsOnlinePstnUsage", {})
        routes = await self._cmdlets.run("Get-CsOnlineVoiceRoute", {})
        return RoutingInventory(
            gateways=[PstnGateway(str(g.get("Fqdn") or g.get("Identity")), int(g.get("SipSignalingPort") or 0),
                                  bool(g.get("Enabled"))) for g in gateways],
            usages=[u for entry in usages for u in _strings(entry.get("Usage"))],
            routes=[VoiceRoute(str(r.get("Identity")), str(r.get("NumberPattern") or ""),
                               _strings(r.get("OnlinePstnGatewayList")), _strings(r.get("OnlinePstnUsages")),
                               int(r.get("Priority") or 0)) for r in routes],
            policies=await self.routing_policies(),
        )

    async def policy_names(self) -> list[str]:
        return [policy.identity for policy in await self.routing_policies()]

    async def has_policy(self, name: str) -> bool:
        """Whether a grant's -PolicyName `name` finds a per-user policy of the tenant (as Teams matches it: any
        case, "Tag:" or not). The names are read at most every POLICY_NAMES_SECONDS per tenant (a bulk job's items
        each ask: a cmdlet each); a name not among those read is asked again (a policy made since)."""
        wanted = _untag(name).lower()
        known = _POLICY_NAMES.get(self._tenant_id)
        if known is None or wanted not in known:
            known = frozenset(n.lower() for n in await self.policy_names() if n != "Global")
            _POLICY_NAMES.put(self._tenant_id, known)
        return wanted in known

    async def routing_policies(self) -> list[VoiceRoutingPolicy]:
        return [VoiceRoutingPolicy(_untag(str(p.get("Identity"))), _strings(p.get("OnlinePstnUsages")),
                                   p.get("Description") or None)
                for p in await self._cmdlets.run("Get-CsOnlineVoiceRoutingPolicy", {})]

    async def create_gateway(self, fqdn: str, sip_port: int) -> None:
        await self._cmdlets.run("New-CsOnlinePSTNGateway", {"Fqdn": fqdn, "SipSignalingPort": sip_port, "Enabled": True})

    async def update_gateway(self, fqdn: str, sip_port: int) -> None:
        await self._cmdlets.run("Set-CsOnlinePSTNGateway", {"Identity": fqdn, "SipSignalingPort": sip_port, "Enabled": True})

    async def add_usage(self, usage: str) -> None:
        await self._cmdlets.run("Set-CsOnlinePstnUsage", {"Identity": "Global", "Usage": {"Add": [usage]}})

    def _route_parameters(self, route: VoiceRoute) -> dict[str, Any]:
        return {"Identity": route.identity, "NumberPattern": route.number_pattern,
                "OnlinePstnGatewayList": route.gateways, "OnlinePstnUsages": route.usages, "Priority": route.priority}

    async def create_route(self, route: VoiceRoute) -> None:
        await self._cmdlets.run("New-CsOnlineVoiceRoute", self._route_parameters(route))

    async def update_route(self, route: VoiceRoute) -> None:
        parameters = self._route_parameters(route)
        del parameters["Priority"]  # keep the route where the tenant's admin may have moved it
        await self._cmdlets.run("Set-CsOnlineVoiceRoute", parameters)

    async def create_policy(self, policy: VoiceRoutingPolicy) -> None:
        await self._cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": policy.identity, "OnlinePstnUsages": policy.usages})

    async def update_policy(self, policy: VoiceRoutingPolicy) -> None:
        await self._cmdlets.run("Set-CsOnlineVoiceRoutingPolicy", {"Identity": policy.identity, "OnlinePstnUsages": policy.usages})

