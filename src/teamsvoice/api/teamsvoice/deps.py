"""Who calls teamsvoice's own API: a ConnecttoTeams access token (from /oauth/token) or a Fusion access token
(from /api/v01/auth/login), each scoped as its own family scopes it.

- ConnecttoTeams: a reseller-level login sees the enterprises of its reseller and of the resellers below it;
  an enterprise login its own enterprise.
- Fusion: a system, distributor or reseller login sees the tenants of its node of the organisation tree and
  of the nodes below it (exactly `fusion/repository.visible_tenants`), i.e. the enterprises behind their
  subscriptions; a tenant login sees the enterprises behind its own tenant's subscriptions only. A Fusion
  login also needs the Fusion role named for each route (READ_ROLE, CHANGE_ROLE, OFFBOARD_ROLE below; the
  strings of spec 004's MS Teams section), as on the Fusion API: without it, 403.

Either way the routes see `VoiceCaller.scopes`: ConnecttoTeams `Principal`s the voice-state domain filters by
(one for every login, except a Fusion tenant login: one per enterprise of its subscriptions).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from teamsvoice.api.connecttoteams import deps as ctt
from teamsvoice.api.deps import UnitOfWorkDep
from teamsvoice.api.fusion import deps as fusion
from teamsvoice.core.errors import PermissionDenied
from teamsvoice.domain.fusion import repository as fusion_repository
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import ALL_ROLES, RESELLER_LEVEL_OF
from teamsvoice.domain.orgs.principal import Principal

_MST = "tenants.instance.subscriptions.instance.msteams"
READ_ROLE = f"{_MST}.status.read"  # tenants, plan, apply jobs, export, drift events, number reconciliation
CHANGE_ROLE = f"{_MST}.sync"  # apply, adopt, restore, drift scan and settings, the drift webhook
OFFBOARD_ROLE = f"{_MST}.users.instance.delete"  # offboarding a user (its number freed, account disabled/deleted)
for _role in (READ_ROLE, CHANGE_ROLE, OFFBOARD_ROLE):
    if _role not in ALL_ROLES:
        raise ValueError(f"Unknown Fusion role '{_role}'")


@dataclass(frozen=True)
class VoiceCaller:
    family: str  # connecttoteams or fusion
    scopes: tuple[Principal, ...]
    reseller_level: bool  # a provider's login (not a customer's enterprise or tenant login)

    @property
    def principal(self) -> Principal:
        """The caller's single scope; a Fusion tenant login with several enterprises uses `scopes`."""
        if len(self.scopes) != 1:
            raise PermissionDenied("This endpoint needs a reseller-level login")
        return self.scopes[0]


def _looks_like_fusion(request: Request) -> bool:
    """Fusion access tokens are JWTs (three dot-separated parts); ConnecttoTeams tokens are opaque."""
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    return token.count(".") == 2


async def _fusion_scopes(uow: UnitOfWorkDep, principal: FusionPrincipal) -> tuple[Principal, ...]:
    if not principal.is_tenant_level:
        level = RESELLER_LEVEL_OF.get(principal.level, "RESELLER")
        return (Principal(portal_user_id=0, username=principal.username, user_type=level, reseller_id=principal.reseller_id,
                          enterprise_id=None, reseller_scope=principal.reseller_scope),)
    enterprise_ids = await fusion_repository.enterprise_ids_of_tenant(uow.session, principal.fusion_tenant_id or 0)
    return tuple(Principal(portal_user_id=0, username=principal.username, user_type="ENTERPRISE", reseller_id=None,
                           enterprise_id=enterprise_id, reseller_scope=frozenset()) for enterprise_id in enterprise_ids)


def caller_with(fusion_role: str, *, reseller_level: bool = False) -> Callable[..., Awaitable[VoiceCaller]]:
    """A dependency giving the caller: authenticated by either family, holding `fusion_role` if a Fusion
    login, and (with reseller_level) a provider's login rather than a customer's."""
    if fusion_role not in ALL_ROLES:
        raise ValueError(f"Unknown Fusion role '{fusion_role}'")

    async def resolve(request: Request, uow: UnitOfWorkDep) -> VoiceCaller:
        if _looks_like_fusion(request):
            principal = await fusion.current_principal(request, uow)
            if not principal.holds(fusion_role):
                raise PermissionDenied(f"The API consumer doesn't have sufficient rights to perform this action "
                                       f"(required role: {fusion_role})")
            caller = VoiceCaller("fusion", await _fusion_scopes(uow, principal), not principal.is_tenant_level)
        else:
            principal_ctt = await ctt.current_principal(request, uow)
            caller = VoiceCaller("connecttoteams", (principal_ctt,), not principal_ctt.is_enterprise_level)
        if reseller_level and not caller.reseller_level:
            raise PermissionDenied("This endpoint needs a reseller-level login (a ConnecttoTeams reseller, or a Fusion "
                                   "system, distributor or reseller login)")
        return caller

    resolve.required_roles = (fusion_role,)  # type: ignore[attr-defined]
    return resolve


ReaderDep = Annotated[VoiceCaller, Depends(caller_with(READ_ROLE))]
ChangerDep = Annotated[VoiceCaller, Depends(caller_with(CHANGE_ROLE))]
ResellerChangerDep = Annotated[VoiceCaller, Depends(caller_with(CHANGE_ROLE, reseller_level=True))]
OffboarderDep = Annotated[VoiceCaller, Depends(caller_with(OFFBOARD_ROLE, reseller_level=True))]
