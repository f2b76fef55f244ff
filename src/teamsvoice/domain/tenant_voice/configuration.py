"""The Direct Routing objects of a tenant: what is wanted, how it differs from what Teams holds, and
converging it. One comparison rule for every caller:

- gateways by FQDN (case-insensitive); a gateway differs when its SIP port differs or it is disabled;
- PSTN usages by name (case-insensitive), only added, never removed (other routes may use them);
- voice routes by identity; a route differs when its number pattern, gateways (case-insensitive) or usages
  differ, order aside; the priority is set on creation only (the tenant's admin may reorder routes);
- voice routing policies by identity (case-insensitive); a policy differs when its usages differ, order aside.
Objects the tenant has and the wanted configuration does not name are left alone.
"""

from dataclasses import dataclass
from typing import Literal

from teamsvoice.microsoft.calling_ports import (
    DirectRouting,
    PstnGateway,
    RoutingInventory,
    VoiceRoute,
    VoiceRoutingPolicy,
)

Kind = Literal["gateway", "usage", "route", "policy"]


@dataclass(frozen=True)
class ConfigurationChange:
    """One object to create or change. `wanted` is the object as it should be; `seen` as Teams holds it
    (None when missing)."""

    kind: Kind
    identity: str
    wanted: PstnGateway | str | VoiceRoute | VoiceRoutingPolicy
    seen: PstnGateway | str | VoiceRoute | VoiceRoutingPolicy | None

    @property
    def action(self) -> Literal["create", "change"]:
        return "create" if self.seen is None else "change"

    def describe(self) -> str:
        noun = {"gateway": "PSTN gateway", "usage": "PSTN usage", "route": "voice route",
                "policy": "voice routing policy"}[self.kind]
        done = {"usage": "added"}.get(self.kind, "created") if self.seen is None else "updated"
        return f"{noun} {self.identity} {done}"


def same_route(seen: VoiceRoute, wanted: VoiceRoute) -> bool:
    return (seen.number_pattern, sorted(g.lower() for g in seen.gateways), sorted(seen.usages)) == (
        wanted.number_pattern, sorted(g.lower() for g in wanted.gateways), sorted(wanted.usages))


def same_policy(seen: VoiceRoutingPolicy, wanted: VoiceRoutingPolicy) -> bool:
    return sorted(seen.usages) == sorted(wanted.usages)


def changes(wanted: RoutingInventory, seen: RoutingInventory) -> list[ConfigurationChange]:
    """What converging `seen` to `wanted` takes, in the order Teams needs (a usage before the route and the
    policy that name it, a gateway before its route)."""
    out: list[ConfigurationChange] = []
    gateways = {g.fqdn.lower(): g for g in seen.gateways}
    for gateway in wanted.gateways:
        have = gateways.get(gateway.fqdn.lower())
        if have is None or have.sip_port != gateway.sip_port or not have.enabled:
            out.append(ConfigurationChange("gateway", gateway.fqdn, gateway, have))
    usages = {u.lower() for u in seen.usages}
    out += [ConfigurationChange("usage", u, u, None) for u in wanted.usages if u.lower() not in usages]
    routes = {r.identity.lower(): r for r in seen.routes}
    for route in wanted.routes:
        have_route = routes.get(route.identity.lower())
        if have_route is None or not same_route(have_route, route):
            out.append(ConfigurationChange("route", route.identity, route, have_route))
    policies = {p.identity.lower(): p for p in seen.policies}
    for policy in wanted.policies:
        have_policy = policies.get(policy.identity.lower())
        if have_policy is None or not same_policy(have_policy, policy):
            out.append(ConfigurationChange("policy", policy.identity, policy, have_policy))
    return out


async def apply_change(routing: DirectRouting, change: ConfigurationChange) -> None:
    wanted = change.wanted
    if isinstance(wanted, PstnGateway):
        await (routing.create_gateway if change.seen is None else routing.update_gateway)(wanted.fqdn, wanted.sip_port)
    elif isinstance(wanted, str):
        await routing.add_usage(wanted)
    elif isinstance(wanted, VoiceRoute):
        await (routing.create_route if change.seen is None else routing.update_route)(wanted)
    else:
        await (routing.create_policy if change.seen is None else routing.update_policy)(wanted)


async def ensure(routing: DirectRouting, wanted: RoutingInventory) -> list[str]:
    """Create or correct each wanted object, leave alone what already matches; idempotent. Returns what
    changed, in words."""
    todo = changes(wanted, await routing.inventory())
    for change in todo:
        await apply_change(routing, change)
    return [change.describe() for change in todo]
