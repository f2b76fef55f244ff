"""Direct Routing for an enterprise's tenant: readiness checks, and idempotent provisioning of the PSTN
gateway, PSTN usage, voice route and online voice routing policy for one of its SBC gateways.

Gateway FQDN scheme (teamsvoice's design): Teams only accepts a PSTN gateway whose FQDN is under a domain
verified in the tenant. The tenant's gateway is therefore `<SBC host label>.<tenant's default custom domain>`
(e.g. `sbc-us-east.contoso.com`), a DNS name the customer points (CNAME) at the provider's SBC FQDN.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.domain.calling.common import CALLING_CONSENTS, CONSENT_ACTIONS, missing_consents, require_registered
from teamsvoice.domain.calling.models import DirectRoute
from teamsvoice.domain.orgs.models import Enterprise, SbcGateway
from teamsvoice.domain.orgs.service import CALLING_SERVICES
from teamsvoice.domain.provisioning.service import ProvisioningAccess
from teamsvoice.microsoft.calling_ports import DirectRouting, RoutingInventory, TenantFacts, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.direct_routing import direct_routing, tenant_facts

NUMBER_PATTERN = r"^\+?\d+$"
ROUTE_PRIORITY = 0  # Teams priorities are 0-based; set on creation only (other routes may shift it)
VOICE_SERVICE_PLANS = ("MCOEV", "MCOEV_VIRTUALUSER")


@dataclass(frozen=True)
class RoutingPlan:
    """The objects one SBC gateway needs in the tenant."""

    gateway: SbcGateway
    fqdn: str
    usage: str
    route: VoiceRoute
    policy: VoiceRoutingPolicy


@dataclass
class Check:
    name: str
    passed: bool
    required: bool
    detail: str
    fix: str | None = None

    def wire(self) -> dict[str, Any]:
        return {"check": self.name, "passed": self.passed, "required": self.required, "detail": self.detail,
                "fix": self.fix}


@dataclass
class Readiness:
    plan: RoutingPlan | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return all(c.passed for c in self.checks if c.required)


def object_name(gateway: SbcGateway) -> str:
    return "teamsvoice-" + re.sub(r"[^A-Za-z0-9-]", "-", gateway.region)


def plan_for(gateway: SbcGateway, tenant_domain: str) -> RoutingPlan:
    name = object_name(gateway)
    fqdn = f"{gateway.fqdn.split('.')[0].lower()}.{tenant_domain.lower()}"
    return RoutingPlan(
        gateway=gateway, fqdn=fqdn, usage=name,
        route=VoiceRoute(name, NUMBER_PATTERN, [fqdn], [name], ROUTE_PRIORITY),
        policy=VoiceRoutingPolicy(name, [name]),
    )


async def gateway_of(session: AsyncSession, enterprise: Enterprise, sbc_gateway_id: Any) -> SbcGateway:
    if not isinstance(sbc_gateway_id, int) or isinstance(sbc_gateway_id, bool):
        raise ValidationFailed("sbcGatewayId: is required and must be an integer")
    gateway = await session.get(SbcGateway, sbc_gateway_id)
    if gateway is None or gateway.reseller_id != enterprise.reseller_id:
        raise NotFound(f"SBC gateway {sbc_gateway_id} not found")
    return gateway


def _tenant_domain(domains: list[dict[str, Any]]) -> str | None:
    custom = [d for d in domains if not str(d.get("id", "")).lower().endswith(".onmicrosoft.com")]
    default = next((d for d in custom if d.get("isDefault")), custom[0] if custom else None)
    return str(default["id"]) if default else None


def _voice_licences(skus: list[dict[str, Any]]) -> tuple[int, int]:
    enabled = consumed = 0
    for sku in skus:
        if any(p.get("servicePlanName") in VOICE_SERVICE_PLANS for p in sku.get("servicePlans") or []):
            enabled += int((sku.get("prepaidUnits") or {}).get("enabled") or 0)
            consumed += int(sku.get("consumedUnits") or 0)
    return enabled, consumed


def _same_route(existing: VoiceRoute | None, wanted: VoiceRoute) -> bool:
    return existing is not None and (existing.number_pattern, [g.lower() for g in existing.gateways], existing.usages) == (
        wanted.number_pattern, [g.lower() for g in wanted.gateways], wanted.usages)


def _describe_existing(plan: RoutingPlan, inventory: RoutingInventory) -> tuple[bool, str]:
    gateway = next((g for g in inventory.gateways if g.fqdn.lower() == plan.fqdn), None)
    route = next((r for r in inventory.routes if r.identity == plan.route.identity), None)
    policy = next((p for p in inventory.policies if p.identity == plan.policy.identity), None)
    parts = [
        f"PSTN gateway {plan.fqdn}: " + ("present" if gateway else "to create"),
        f"PSTN usage {plan.usage}: " + ("present" if plan.usage in inventory.usages else "to create"),
        f"voice route {plan.route.identity}: " + ("present" if _same_route(route, plan.route) else "to update" if route else "to create"),
        f"voice routing policy {plan.policy.identity}: "
        + ("present" if policy == plan.policy else "to update" if policy else "to create"),
        f"tenant has {len(inventory.gateways)} gateway(s), {len(inventory.routes)} route(s), "
        f"{len(inventory.policies)} policy(ies) in all",
    ]
    in_place = bool(gateway and gateway.enabled and gateway.sip_port == plan.gateway.sip_port
                    and plan.usage in inventory.usages and _same_route(route, plan.route) and policy == plan.policy)
    return in_place, "; ".join(parts)


async def verify(session: AsyncSession, access: ProvisioningAccess, sbc_gateway_id: Any) -> Readiness:
    enterprise = access.enterprise
    require_registered(enterprise)
    gateway = await gateway_of(session, enterprise, sbc_gateway_id)
    checks: list[Check] = []
    services_ok = any(s in enterprise.services for s in CALLING_SERVICES)
    gateway_ok = gateway.id in enterprise.sbc_gateway_ids
    checks.append(Check(
        "enterpriseServices", services_ok and gateway_ok, True,
        f"services {enterprise.services}; SBC gateways {enterprise.sbc_gateway_ids}",
        None if services_ok and gateway_ok else
        f"Edit the enterprise (/reseller/editEnterprise) to include a calling service {list(CALLING_SERVICES)} "
        f"and SBC gateway {gateway.id} in sbcGateways",
    ))
    missing = await missing_consents(session, enterprise, CALLING_CONSENTS)
    checks.append(Check(
        "consents", not missing, True,
        f"required {list(CALLING_CONSENTS)}; missing {missing}",
        None if not missing else "Have the Global Administrator complete "
        + ", ".join(CONSENT_ACTIONS[m] for m in missing) + " (/enterprise/getActionItemUrl)",
    ))
    await session.commit()  # nothing to write; end the read transaction before calling Microsoft

    facts: TenantFacts = tenant_facts(access.connection)
    domains = await facts.verified_domains()
    tenant_domain = _tenant_domain(domains)
    plan = plan_for(gateway, tenant_domain) if tenant_domain else None
    if plan is None:
        checks.insert(0, Check(
            "sbcDomain", False, True, "the tenant has no verified custom domain (only *.onmicrosoft.com)",
            f"Add and verify a custom domain in the tenant, then create a DNS CNAME <name>.<domain> -> {gateway.fqdn}",
        ))
    else:
        too_long = len(plan.fqdn) > 63
        checks.insert(0, Check(
            "sbcDomain", not too_long, True,
            f"PSTN gateway FQDN {plan.fqdn} is under the verified domain {tenant_domain}; "
            f"it must resolve (CNAME) to the SBC {gateway.fqdn}:{gateway.sip_port}",
            f"Use a shorter default domain: {plan.fqdn} exceeds Teams' 63 characters" if too_long else None,
        ))
    enabled, consumed = _voice_licences(await facts.subscribed_skus())
    checks.insert(1, Check(
        "voiceLicences", enabled > 0, True,
        f"{enabled} Teams Phone licence(s), {consumed} assigned",
        None if enabled else "Buy Teams Phone Standard (MCOEV) licences for the tenant and assign them to voice users",
    ))
    if plan is not None:
        in_place, detail = _describe_existing(plan, await direct_routing(access.connection).inventory())
        checks.append(Check("routingObjects", in_place, False, detail,
                            None if in_place else "Run /provisioning/provisionDirectRouting"))
    return Readiness(plan, checks)


async def _ensure(routing: DirectRouting, plan: RoutingPlan) -> list[str]:
    """Create or correct each object; leave alone what already matches."""
    inventory = await routing.inventory()
    changes: list[str] = []
    gateway = next((g for g in inventory.gateways if g.fqdn.lower() == plan.fqdn), None)
    if gateway is None:
        await routing.create_gateway(plan.fqdn, plan.gateway.sip_port)
        changes.append(f"PSTN gateway {plan.fqdn} created")
    elif gateway.sip_port != plan.gateway.sip_port or not gateway.enabled:
        await routing.update_gateway(plan.fqdn, plan.gateway.sip_port)
        changes.append(f"PSTN gateway {plan.fqdn} updated")
    if plan.usage not in inventory.usages:
        await routing.add_usage(plan.usage)
        changes.append(f"PSTN usage {plan.usage} added")
    route = next((r for r in inventory.routes if r.identity == plan.route.identity), None)
    if route is None:
        await routing.create_route(plan.route)
        changes.append(f"voice route {plan.route.identity} created")
    elif not _same_route(route, plan.route):
        await routing.update_route(plan.route)
        changes.append(f"voice route {plan.route.identity} updated")
    policy = next((p for p in inventory.policies if p.identity == plan.policy.identity), None)
    if policy is None:
        await routing.create_policy(plan.policy)
        changes.append(f"voice routing policy {plan.policy.identity} created")
    elif policy != plan.policy:
        await routing.update_policy(plan.policy)
        changes.append(f"voice routing policy {plan.policy.identity} updated")
    return changes


async def provision(session: AsyncSession, access: ProvisioningAccess, sbc_gateway_id: Any) -> tuple[DirectRoute, list[str]]:
    readiness = await verify(session, access, sbc_gateway_id)
    if not readiness.ready or readiness.plan is None:
        failed = [f"{c.name}: {c.fix or c.detail}" for c in readiness.checks if c.required and not c.passed]
        raise PreconditionFailed("The tenant is not ready for Direct Routing: " + " | ".join(failed))
    plan = readiness.plan
    changes = await _ensure(direct_routing(access.connection), plan)
    enterprise = access.enterprise
    record = await session.scalar(select(DirectRoute).where(
        DirectRoute.enterprise_id == enterprise.id, DirectRoute.sbc_gateway_id == plan.gateway.id))
    if record is None:
        record = DirectRoute(enterprise_id=enterprise.id, sbc_gateway_id=plan.gateway.id)
        session.add(record)
    record.tenant_id = access.connection.tenant_id
    record.gateway_fqdn, record.sip_port, record.pstn_usage = plan.fqdn, plan.gateway.sip_port, plan.usage
    record.voice_route, record.number_pattern = plan.route.identity, plan.route.number_pattern
    record.voice_routing_policy = plan.policy.identity
    record.last_changes, record.provisioned_at = changes, utcnow()
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent run recorded the route first; the tenant objects are in place
        raise Conflict("provisionDirectRouting ran concurrently for this gateway; run it again") from exc
    return record, changes


async def routes_of(session: AsyncSession, enterprise: Enterprise) -> list[DirectRoute]:
    query = select(DirectRoute).where(DirectRoute.enterprise_id == enterprise.id).order_by(DirectRoute.id)
    return list((await session.scalars(query)).all())


def render_route(route: DirectRoute, region: str | None = None) -> dict[str, Any]:
    return {
        "directRouteId": route.id, "enterpriseId": route.enterprise_id, "sbcGatewayId": route.sbc_gateway_id,
        "sbcGatewayRegion": region, "tenantId": route.tenant_id, "pstnGatewayFqdn": route.gateway_fqdn,
        "sipSignalingPort": route.sip_port, "pstnUsage": route.pstn_usage, "voiceRoute": route.voice_route,
        "numberPattern": route.number_pattern, "voiceRoutingPolicy": route.voice_routing_policy,
        "provisionedOn": route.provisioned_at.strftime("%Y-%m-%d %H:%M:%S"),
    }
