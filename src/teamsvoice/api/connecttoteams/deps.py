"""Authentication for the ConnecttoTeams routes: the bearer token gives the Principal."""

from typing import Annotated

from fastapi import Depends, Request

from teamsvoice.api.deps import UnitOfWorkDep, cached_caller, container_of
from teamsvoice.core.errors import AuthenticationFailed, PermissionDenied
from teamsvoice.domain.audit import context as audit
from teamsvoice.domain.orgs.auth import principal_for_token
from teamsvoice.domain.orgs.principal import Principal


async def current_principal(request: Request, uow: UnitOfWorkDep) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Full authentication is required to access this resource", code="unauthorized")
    token = token.strip()
    principal = await cached_caller(container_of(request), "connecttoteams", token, lambda: principal_for_token(uow.session, token))
    audit.identify(name=principal.username, login_family=audit.CONNECTTOTEAMS, login_id=principal.portal_user_id,
                   reseller_id=principal.reseller_id)
    return principal


async def reseller_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.is_enterprise_level:
        raise PermissionDenied("This endpoint needs a reseller-level token")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
ResellerDep = Annotated[Principal, Depends(reseller_principal)]
