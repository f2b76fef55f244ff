"""Fusion route dependencies: authenticate (401), require a role (403), resolve path objects in scope (404).

Usage (see docs/fusion-foundation.md):

    @router.get("/draas/{draas_instance}/tenants/{uuid}/subscriptions/{subscription_id}/msteams/users")
    async def list_users(access: Annotated[SubscriptionAccess, Depends(subscription_access(
            "tenants.instance.subscriptions.instance.msteams.users.list"))], uow: UnitOfWorkDep, ...)

The role is checked before the path is resolved, so a caller without the role gets 403 whatever the path.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path, Request

from teamsvoice.api.deps import UnitOfWorkDep, cached_caller, container_of
from teamsvoice.core.errors import AuthenticationFailed, PermissionDenied
from teamsvoice.domain.audit import context as audit
from teamsvoice.domain.fusion.auth import principal_for_access_token
from teamsvoice.domain.fusion.models import FusionTenant
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import ALL_ROLES
from teamsvoice.core.errors import NotFound
from teamsvoice.domain.fusion.scope import SubscriptionAccess, subscription_in_scope, tenant_in_scope


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Missing bearer token (Authorization: Bearer <access_token>)")
    return token.strip()


async def current_principal(request: Request, uow: UnitOfWorkDep) -> FusionPrincipal:
    token = bearer_token(request)
    container = container_of(request)
    principal = await cached_caller(container, "fusion", token,
                                    lambda: principal_for_access_token(uow.session, container.keyring, token))
    audit.identify(name=principal.username, login_family=audit.FUSION, login_id=principal.user_id,
                   reseller_id=principal.reseller_id)
    return principal


def _known(permission: str) -> str:
    if permission not in ALL_ROLES:
        raise ValueError(f"Unknown Fusion role '{permission}': add it to domain/fusion/roles.py")
    return permission


def _check_role(principal: FusionPrincipal, permission: str) -> FusionPrincipal:
    if not principal.holds(permission):
        raise PermissionDenied(f"The API consumer doesn't have sufficient rights to perform this action "
                               f"(required role: {permission})")
    return principal


def require(permission: str) -> Callable[..., Awaitable[FusionPrincipal]]:
    """A dependency giving the caller once it is known to hold `permission` (a spec Required-role string)."""
    _known(permission)

    async def check(principal: Annotated[FusionPrincipal, Depends(current_principal)]) -> FusionPrincipal:
        return _check_role(principal, permission)

    check.required_roles = (permission,)  # type: ignore[attr-defined]  # read by the role-vocabulary test
    return check


# `tenant_access` and `instance_checked` check the role themselves rather than through `require`'s dependency:
# one dependency less for FastAPI to resolve on every request, and the same order (caller, role, then the path),
# since their path parameters are text, which FastAPI never refuses before calling them. `subscription_access`
# keeps `require` as its dependency: its `{subscription_id}` is an integer, and a caller without the role gets
# 403 before a malformed id gets 400.


def check_instance(request: Request, draas_instance: str) -> None:
    """The path's `{draas_instance}` is the one this deployment serves (`TEAMSVOICE_FUSION_DRAAS_INSTANCE`), else
    a 404 as for anything that does not exist."""
    if draas_instance != container_of(request).settings.fusion_draas_instance:
        raise NotFound(f"Unknown draas instance '{draas_instance}'")


def tenant_access(permission: str) -> Callable[..., Awaitable[FusionTenant]]:
    """Role check, then the path's `{draas_instance}` and `{uuid}` resolved to a tenant in the caller's scope."""
    _known(permission)

    async def resolve(
        request: Request, principal: Annotated[FusionPrincipal, Depends(current_principal)], uow: UnitOfWorkDep,
        draas_instance: Annotated[str, Path()], uuid: Annotated[str, Path()],
    ) -> FusionTenant:
        _check_role(principal, permission)
        check_instance(request, draas_instance)
        return await tenant_in_scope(uow.session, principal, uuid)

    resolve.required_roles = (permission,)  # type: ignore[attr-defined]
    return resolve


def subscription_access(permission: str) -> Callable[..., Awaitable[SubscriptionAccess]]:
    """Role check, then `{draas_instance}/tenants/{uuid}/subscriptions/{subscription_id}` resolved in scope."""
    checker = require(permission)

    async def resolve(
        request: Request, principal: Annotated[FusionPrincipal, Depends(checker)], uow: UnitOfWorkDep,
        draas_instance: Annotated[str, Path()], uuid: Annotated[str, Path()],
        subscription_id: Annotated[int, Path()],
    ) -> SubscriptionAccess:
        check_instance(request, draas_instance)
        return await subscription_in_scope(uow.session, principal, uuid, subscription_id)

    return resolve


def instance_checked(permission: str) -> Callable[..., Awaitable[FusionPrincipal]]:
    """Role check, then the path's `{draas_instance}` (for routes on the instance itself, e.g. the tenant list)."""
    _known(permission)

    async def resolve(
        request: Request, principal: Annotated[FusionPrincipal, Depends(current_principal)],
        draas_instance: Annotated[str, Path()],
    ) -> FusionPrincipal:
        _check_role(principal, permission)
        check_instance(request, draas_instance)
        return principal

    resolve.required_roles = (permission,)  # type: ignore[attr-defined]
    return resolve
