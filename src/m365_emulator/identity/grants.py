"""Consent state: a service principal per (tenant, app) holding tenant-wide delegated grants (admin
consent), per-user delegated grants, and granted application permissions (app roles)."""

import uuid

from .. import clock
from ..store import Document, Transaction
from .scopes import GRAPH, ScopeRequest, parse_scopes


def principal_key(tenant_id: str, app_id: str) -> str:
    return f"{tenant_id}|{app_id}"


def service_principal(tx: Transaction, tenant_id: str, app_id: str) -> Document | None:
    return tx.get("service_principal", principal_key(tenant_id, app_id))


def registered_permissions(permissions: list[str]) -> ScopeRequest:
    """An app registration's permission list; unqualified names are Microsoft Graph's."""
    return parse_scopes(" ".join(permissions))


def expand_default(app: Document, request: ScopeRequest) -> dict[str, list[str]]:
    """`<resource>/.default` stands for every delegated permission the app registered for that resource."""
    registered = registered_permissions(app["delegatedPermissions"]).by_resource
    expanded: dict[str, list[str]] = {}
    for app_id, names in request.by_resource.items():
        result: list[str] = []
        for name in names:
            for scope in registered.get(app_id, []) if name == ".default" else [name]:
                if scope not in result:
                    result.append(scope)
        expanded[app_id] = result
    # A sign-in without resource scopes still yields a Graph token (Entra adds User.Read).
    return expanded or {GRAPH.app_id: ["User.Read"]}


def granted_delegated(tx: Transaction, tenant_id: str, app_id: str, user_id: str) -> dict[str, list[str]]:
    principal = service_principal(tx, tenant_id, app_id)
    if principal is None:
        return {}
    granted: dict[str, list[str]] = {}
    for source in (principal["_adminGrants"], principal["_userGrants"].get(user_id, {})):
        for resource_id, scopes in source.items():
            merged = granted.setdefault(resource_id, [])
            merged.extend(scope for scope in scopes if scope not in merged)
    return granted


def is_granted(granted: dict[str, list[str]], wanted: dict[str, list[str]]) -> bool:
    return all(set(scopes) <= set(granted.get(resource_id, [])) for resource_id, scopes in wanted.items())


def record_consent(
    tx: Transaction,
    tenant_id: str,
    app: Document,
    user_id: str,
    scopes: dict[str, list[str]],
    admin: bool,
) -> Document:
    """Admin consent grants the scopes to everyone in the tenant plus the app's registered application
    permissions (so client credentials work afterwards); user consent covers only that user."""
    principal = service_principal(tx, tenant_id, app["appId"]) or {
        "id": str(uuid.uuid4()),
        "appId": app["appId"],
        "displayName": app["displayName"],
        "appOwnerOrganizationId": None,
        "servicePrincipalType": "Application",
        "accountEnabled": True,
        "_adminGrants": {},
        "_userGrants": {},
        "_appRoles": {},
        "_consentedAt": None,
    }
    target = principal["_adminGrants"] if admin else principal["_userGrants"].setdefault(user_id, {})
    for resource_id, names in scopes.items():
        existing = target.setdefault(resource_id, [])
        existing.extend(name for name in names if name not in existing)
    if admin:
        roles = registered_permissions(app["applicationPermissions"]).by_resource
        principal["_appRoles"] = {resource_id: sorted(names) for resource_id, names in roles.items()}
        principal["_consentedAt"] = clock.iso_now()
    tx.put("service_principal", principal_key(tenant_id, app["appId"]), principal, tenant_id)
    return principal
