"""Direct Routing for an enterprise's tenant: readiness checks, and idempotent provisioning of the PSTN
gateway, PSTN usage, voice route and online voice routing policy for one of its SBC gateways.

Gateway FQDN scheme (teamsvoice's design): Teams only accepts a PSTN gateway whose FQDN is under a domain
verified in the tenant. The tenant's gateway is therefore `<SBC host label>.<tenant's default custom domain>`
(e.g. `sbc-us-east.contoso.com`), a DNS name the customer points (CNAME) at the provider's SBC FQDN.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.domain.calling import repository
from teamsvoice.domain.calling.common import CALLING_CONSENTS, CONSENT_ACTIONS, missing_consents, require_registered
from teamsvoice.domain.calling.models import DirectRoute
from teamsvoice.domain.orgs.models import Enterprise, SbcGateway
from teamsvoice.domain.orgs.service import CALLING_SERVICES
from teamsvoice.domain.provisioning.service import ProvisioningAccess
from teamsvoice.domain.tenant_voice import configuration
from teamsvoice.domain.tenant_voice.rules import teams_phone_skus, voice_domain
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy

NUMBER_PATTERN = r"^\+?\d+$"
ROUTE_PRIORITY = 0  # Teams priorities are 0-based; set on creation only (other routes may shift it)


@dataclass(frozen=True)
class RoutingPlan:
    """The objects one SBC gateway needs in the tenant."""

    gateway: SbcGateway
    fqdn: str
    usage: str
    route: VoiceRoute
    policy: VoiceRoutingPolicy

    def wanted(self) -> RoutingInventory:
        return RoutingInventory([PstnGateway(self.fqdn, self.gateway.sip_port, True)], [self.usage], [self.route],
                                [self.policy])


@dataclass
class Check:
    name: str
    passed: bool
    required: bool
    detail: str
    fix: str | None = None


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


def _describe_existing(plan: RoutingPlan, inventory: RoutingInventory) -> tuple[bool, str]:
    todo = {(c.kind, c.identity.lower()): c.action for c in configuration.changes(plan.wanted(), inventory)}

    def state(kind: str, identity: str) -> str:
        action = todo.get((kind, identity.lower()))
        return "present" if action is None else "to create" if action == "create" else "to update"

    parts = [
        f"PSTN gateway {plan.fqdn}: " + state("gateway", plan.fqdn),
        f"PSTN usage {plan.usage}: " + state("usage", plan.usage),
        f"voice route {plan.route.identity}: " + state("route", plan.route.identity),
        f"voice routing policy {plan.policy.identity}: " + state("policy", plan.policy.identity),
        f"tenant has {len(inventory.gateways)} gateway(s), {len(inventory.routes)} route(s), "
        f"{len(inventory.policies)} policy(ies) in all",
    ]
    return not todo, "; ".join(parts)


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
    await end_transaction(session)  # nothing to write; end the read transaction before calling Microsoft

    admin = access.connection.directory_admin
    tenant_domain = voice_domain(await admin.domains())
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
    phone = teams_phone_skus(await admin.subscribed_skus())
    enabled, consumed = sum(s.prepaid for s in phone), sum(s.consumed for s in phone)
    checks.insert(1, Check(
        "voiceLicences", enabled > 0, True,
        f"{enabled} Teams Phone licence(s), {consumed} assigned",
        None if enabled else "Buy Teams Phone Standard (MCOEV) licences for the tenant and assign them to voice users",
    ))
    if plan is not None:
        in_place, detail = _describe_existing(plan, await access.connection.direct_routing.inventory())
        checks.append(Check("routingObjects", in_place, False, detail,
                            None if in_place else "Run /provisioning/provisionDirectRouting"))
    return Readiness(plan, checks)


async def provision(session: AsyncSession, access: ProvisioningAccess, sbc_gateway_id: Any) -> tuple[DirectRoute, list[str]]:
    readiness = await verify(session, access, sbc_gateway_id)
    if not readiness.ready or readiness.plan is None:
        failed = [f"{c.name}: {c.fix or c.detail}" for c in readiness.checks if c.required and not c.passed]
        raise PreconditionFailed("The tenant is not ready for Direct Routing: " + " | ".join(failed))
    plan = readiness.plan
    changes = await configuration.ensure(access.connection.direct_routing, plan.wanted())
    enterprise = access.enterprise
    record = await repository.route_for_gateway(session, enterprise.id, plan.gateway.id)
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
    return await repository.routes_of(session, enterprise.id)

