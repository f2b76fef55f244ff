"""teamsvoice's records of a tenant's voice state, read as a desired state and written back where a plan
says the records, not Microsoft, must change (adopt; users deleted in Entra ID).

Sources: ConnecttoTeams' provisionDirectRouting rows (`direct_routes`), the Fusion onboarding wizard's
configuration (the `teamsvoice` usage/route/policy on the reseller's SBC name in the tenant's domain),
`teams_voice_users` for both families, and the Fusion subscription's number inventory.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import NotFound
from teamsvoice.domain.calling.models import DirectRoute
from teamsvoice.domain.fusion import onboarding
from teamsvoice.domain.fusion.models import FusionSubscription
from teamsvoice.domain.inventory import repository as inventory_repository
from teamsvoice.core.limits import shown
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.service import tenant_id_of
from teamsvoice.domain.orgs.models import Enterprise, SbcGateway
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.teams_users.models import FusionResourceAccount
from teamsvoice.domain.voice_state.models import NumberQuarantine
from teamsvoice.domain.voice_state.state import Assignment, DesiredState
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy


async def tenant_in_scope(session: AsyncSession, principal: Principal, tenant_id: str) -> Enterprise:
    """The enterprise linked to the Microsoft tenant (named in any case: `orgs.service.tenant_id_of`), if the caller
    may see it; else 404."""
    enterprise = await orgs.get_enterprise_by_tenant(session, principal, tenant_id_of("tenant", tenant_id))
    if enterprise is None:
        raise NotFound(f"Tenant {shown(tenant_id)} not found")
    return enterprise


async def linked_enterprises(session: AsyncSession) -> Sequence[Enterprise]:
    """Every enterprise linked to a Microsoft tenant (the drift scan's platform-wide view)."""
    return (await session.scalars(select(Enterprise).where(Enterprise.tenant_id.is_not(None)).order_by(Enterprise.id))).all()


def _add(routing: RoutingInventory, gateway: PstnGateway, usage: str, route: VoiceRoute, policy: VoiceRoutingPolicy) -> None:
    if all(g.fqdn != gateway.fqdn for g in routing.gateways):
        routing.gateways.append(gateway)
    if usage not in routing.usages:
        routing.usages.append(usage)
    if all(r.identity != route.identity for r in routing.routes):
        routing.routes.append(route)
    if all(p.identity != policy.identity for p in routing.policies):
        routing.policies.append(policy)


async def desired_state(session: AsyncSession, enterprise: Enterprise) -> DesiredState:
    assert enterprise.tenant_id is not None
    routing = RoutingInventory()
    for row in await session.scalars(select(DirectRoute).where(DirectRoute.enterprise_id == enterprise.id).order_by(DirectRoute.id)):
        _add(routing, PstnGateway(row.gateway_fqdn.lower(), row.sip_port, True), row.pstn_usage,
             VoiceRoute(row.voice_route, row.number_pattern, [row.gateway_fqdn.lower()], [row.pstn_usage], 0),
             VoiceRoutingPolicy(row.voice_routing_policy, [row.pstn_usage]))
    subscription = await session.scalar(select(FusionSubscription).where(FusionSubscription.enterprise_id == enterprise.id))
    inventory: frozenset[str] = frozenset()
    accounts: set[int] = set()  # the records of the subscription's resource accounts
    if subscription is not None:
        inventory = await inventory_repository.inventory_e164s(session, subscription.id)
        accounts = set(await session.scalars(select(FusionResourceAccount.voice_user_id).where(
            FusionResourceAccount.subscription_id == subscription.id,
            FusionResourceAccount.voice_user_id.is_not(None))))
        if enterprise.tenant_domain:
            sbc = await session.scalar(select(SbcGateway).where(SbcGateway.reseller_id == enterprise.reseller_id).order_by(SbcGateway.id))
            # What the onboarding wizard created in the tenant (one rule: fusion/onboarding.voice_configuration)
            fusion = onboarding.voice_configuration(onboarding.sbc_fqdn_in(enterprise.tenant_domain, sbc.fqdn if sbc else None))
            _add(routing, fusion.gateways[0], fusion.usages[0], fusion.routes[0], fusion.policies[0])
    users = [Assignment(u.user_principal_name.lower(), u.microsoft_user_id, u.phone_number, u.voice_routing_policy,
                        u.calling_enabled, u.id in accounts)
             for u in await session.scalars(select(TeamsVoiceUser).where(TeamsVoiceUser.enterprise_id == enterprise.id)
                                            .order_by(TeamsVoiceUser.id))]
    return DesiredState(enterprise.tenant_id, routing, users, inventory)


async def voice_user(session: AsyncSession, enterprise: Enterprise, upn: str) -> TeamsVoiceUser | None:
    return await voice_users.find(session, enterprise.id, upn)


async def free_deleted_user(session: AsyncSession, enterprise: Enterprise, upn: str, quarantine_seconds: float, *,
                            status: str = "USER_DELETED", detail: dict[str, Any] | None = None) -> str | None:
    """The user is gone from Entra ID: its record loses number and calling; the number goes to quarantine
    (no one gets it before the quarantine ends) and then back to the inventory. Answers the number freed.
    Offboarding frees its user the same way under its own `status` (OFFBOARDED) and `detail`: the audit entry
    of the change names what happened, not a deletion that was none."""
    record = await voice_user(session, enterprise, upn)
    if record is None:
        return None
    number = record.phone_number
    record.phone_number, record.calling_enabled, record.microsoft_user_id = None, False, None
    record.settle()
    record.last_sync_status = status
    record.last_sync_detail = {"changes": [f"{number} freed"] if number else [], **(detail or {})}
    if number and quarantine_seconds > 0:
        await quarantine(session, enterprise, [(number, upn)], quarantine_seconds)
    return number


async def quarantine(session: AsyncSession, enterprise: Enterprise, held: Sequence[tuple[str, str]], seconds: float) -> None:
    """Each (number, its last holder) in quarantine for `seconds` from now: one read per chunk of numbers, not one
    per number (an unlink puts every number of the tenant's users there at once)."""
    until = utcnow() + timedelta(seconds=seconds)
    numbers = [number for number, _ in held]
    existing: dict[str, NumberQuarantine] = {}
    for chunk in inventory_repository.chunks(numbers):
        existing |= {row.e164: row for row in await session.scalars(select(NumberQuarantine).where(NumberQuarantine.e164.in_(chunk)))}
    for number, holder in held:
        row = existing.get(number)
        if row is None:
            row = existing[number] = NumberQuarantine(enterprise_id=enterprise.id, e164=number, previous_holder=holder,
                                                      until=until)
            session.add(row)
        row.enterprise_id, row.previous_holder, row.until = enterprise.id, holder, until
    await session.flush()


async def restore_direct_routes(session: AsyncSession, enterprise: Enterprise, routing: RoutingInventory) -> None:
    """Each voice route of `routing` whose gateway is `<SBC label>.<tenant domain>` for one of the reseller's
    SBC gateways becomes (or updates) the enterprise's direct route for that SBC, with the route's usage and
    the policy that uses it."""
    if not enterprise.tenant_domain or enterprise.tenant_id is None:
        return
    sbcs = {s.fqdn.split(".")[0].lower(): s for s in await session.scalars(
        select(SbcGateway).where(SbcGateway.reseller_id == enterprise.reseller_id))}
    ports = {g.fqdn.lower(): g.sip_port for g in routing.gateways}
    for route in routing.routes:
        fqdn = next((g.lower() for g in route.gateways if g.lower().endswith("." + enterprise.tenant_domain.lower())), None)
        sbc = sbcs.get(fqdn.split(".")[0]) if fqdn else None
        policy = next((p for p in routing.policies if set(p.usages) & set(route.usages)), None)
        if sbc is None or policy is None or not route.usages or fqdn is None:
            continue
        row = await session.scalar(select(DirectRoute).where(DirectRoute.enterprise_id == enterprise.id,
                                                             DirectRoute.sbc_gateway_id == sbc.id))
        if row is None:
            row = DirectRoute(enterprise_id=enterprise.id, sbc_gateway_id=sbc.id, last_changes=[])
            session.add(row)
        row.tenant_id, row.gateway_fqdn, row.sip_port = enterprise.tenant_id, fqdn, ports.get(fqdn, sbc.sip_port)
        row.pstn_usage, row.voice_route, row.number_pattern = route.usages[0], route.identity, route.number_pattern
        row.voice_routing_policy = policy.identity
    await session.flush()
