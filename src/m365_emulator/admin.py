"""The emulator's own admin API under /_admin (not a Microsoft API). Unauthenticated by design: the
emulator is meant to listen on loopback only. It registers multi-tenant applications (as in the
provider's home tenant) and seeds customer tenants; both operations are idempotent upserts."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from . import application_instances, teams_voice, voice_routing
from .context import EmulatorDep
from .faults import FaultConfig
from .graph import apps as graph_apps
from .graph import teams as graph_teams
from .directory import hash_secret, user_by_upn, verify_secret
from .tenants import DEFAULT_GROUPS, LicenseSpec, TenantSpec, TenantSpecError, create_tenant, resolve_tenant, tenant_summary

router = APIRouter(prefix="/_admin")


class ApplicationRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appId: StrictStr = Field(min_length=1)
    displayName: StrictStr = Field(min_length=1)
    clientSecret: StrictStr = Field(min_length=1)
    redirectUris: list[StrictStr] = []
    delegatedPermissions: list[StrictStr] = []
    applicationPermissions: list[StrictStr] = []


class GlobalAdmin(BaseModel):
    username: StrictStr = Field(min_length=3)
    password: StrictStr = Field(min_length=1)


class License(BaseModel):
    skuPartNumber: StrictStr
    units: StrictInt = Field(ge=0)


class TenantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    displayName: StrictStr = Field(min_length=1)
    domain: StrictStr = Field(min_length=3, pattern=r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
    userCount: StrictInt = Field(default=20, ge=0, le=20000)
    globalAdmin: GlobalAdmin
    licenses: list[License] | None = None
    groups: list[StrictStr] | None = None


@router.post("/applications", status_code=201)
def register_application(registration: ApplicationRegistration, emulator: EmulatorDep) -> dict[str, Any]:
    with emulator.store.transaction() as tx:
        tx.put(
            "app",
            registration.appId,
            {
                "appId": registration.appId,
                "displayName": registration.displayName,
                "secretHash": hash_secret(registration.clientSecret),
                "redirectUris": registration.redirectUris,
                "delegatedPermissions": registration.delegatedPermissions,
                "applicationPermissions": registration.applicationPermissions,
            },
        )
    return registration.model_dump(exclude={"clientSecret"})


@router.get("/applications")
def list_applications(emulator: EmulatorDep) -> list[dict[str, Any]]:
    with emulator.store.transaction() as tx:
        apps = tx.list("app")
    return [{key: value for key, value in app.items() if key != "secretHash"} for app in apps]


@router.post("/tenants", status_code=201)
def create_tenant_endpoint(request: TenantRequest, emulator: EmulatorDep) -> JSONResponse:
    spec = TenantSpec(
        display_name=request.displayName,
        domain=request.domain,
        user_count=request.userCount,
        admin_username=request.globalAdmin.username,
        admin_password=request.globalAdmin.password,
        licenses=[LicenseSpec(l.skuPartNumber, l.units) for l in request.licenses] if request.licenses else None,
        groups=request.groups if request.groups is not None else list(DEFAULT_GROUPS),
    )
    try:
        with emulator.store.transaction() as tx:
            tenant, created = create_tenant(tx, spec)
            admin = user_by_upn(tx, tenant["adminUsername"])
            users = len(tx.list("user", tenant["id"]))
            # Seeding is idempotent; the password is echoed only when it is the tenant admin's real one.
            password_matches = bool(
                admin and admin["_passwordHash"] and verify_secret(request.globalAdmin.password, admin["_passwordHash"])
            )
    except TenantSpecError as exc:
        return JSONResponse({"error": {"code": "InvalidTenantSpec", "message": str(exc)}}, status_code=400)
    return JSONResponse(
        {
            "tenantId": tenant["id"],
            "domain": tenant["domain"],
            "initialDomain": tenant["initialDomain"],
            "globalAdmin": {
                "username": tenant["adminUsername"],
                "password": request.globalAdmin.password if password_matches else None,
                "id": admin["id"] if admin else None,
            },
            "users": users,
            "created": created,
        },
        status_code=201,
    )


@router.get("/tenants")
def list_tenants(emulator: EmulatorDep) -> list[dict[str, Any]]:
    with emulator.store.transaction() as tx:
        return [tenant_summary(tx, tenant) for tenant in tx.list("tenant")]


@router.get("/tenants/{tenant}")
def get_tenant(tenant: str, emulator: EmulatorDep) -> JSONResponse:
    with emulator.store.transaction() as tx:
        resolved = resolve_tenant(tx, tenant)
        if resolved is None:
            return _not_found(tenant)
        return JSONResponse(tenant_summary(tx, resolved))


def _not_found(tenant: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "NotFound", "message": f"Tenant '{tenant}' not found."}}, status_code=404)


@router.get("/tenants/{tenant}/voice")
def get_tenant_voice(tenant: str, emulator: EmulatorDep) -> JSONResponse:
    """Teams voice state as the cmdlets and Graph left it: Direct Routing configuration, per-user policy
    grants, number assignments and resource accounts."""
    with emulator.store.transaction() as tx:
        resolved = resolve_tenant(tx, tenant)
        if resolved is None:
            return _not_found(tenant)
        tenant_id = resolved["id"]
        grants = [
            {"userId": c["id"], "policyType": policy_type, "policyName": a["displayName"], "policyId": a["policyId"]}
            for c in tx.list("teams_user", tenant_id)
            for policy_type, a in c["_policies"].items()
        ]
        body = {
            "tenantId": tenant_id,
            **voice_routing.state(tx, tenant_id),
            "grants": grants,
            "numbers": [teams_voice.number_assignment(n) for n in tx.list("number", tenant_id)],
            "assignmentRequests": {n["telephoneNumber"]: n.get("_assignCount", 1) for n in tx.list("number", tenant_id)},
            "numberOperations": graph_teams.operation_log(tx, tenant_id),
            "enterpriseVoiceEnabled": [c["id"] for c in tx.list("teams_user", tenant_id) if c["isEnterpriseVoiceEnabled"]],
            "applicationInstances": application_instances.state(tx, tenant_id),
        }
    return JSONResponse(body)


@router.get("/tenants/{tenant}/apps")
def get_tenant_apps(tenant: str, emulator: EmulatorDep) -> JSONResponse:
    """The tenant's Teams app catalog (every app with all its definitions) and per-user installations."""
    with emulator.store.transaction() as tx:
        resolved = resolve_tenant(tx, tenant)
        if resolved is None:
            return _not_found(tenant)
        return JSONResponse(graph_apps.state(tx, resolved["id"]))


@router.get("/faults")
def get_faults(emulator: EmulatorDep) -> dict[str, Any]:
    """The fault and throttle configuration in force, what remains of counted faults, and what was injected."""
    return emulator.faults.view()


@router.put("/faults")
def put_faults(config: FaultConfig, emulator: EmulatorDep) -> dict[str, Any]:
    """Replace the configuration (see m365_emulator.faults for the shape); counters and buckets restart."""
    emulator.faults.configure(config)
    return emulator.faults.view()


@router.delete("/faults")
def delete_faults(emulator: EmulatorDep) -> dict[str, Any]:
    emulator.faults.reset()
    return emulator.faults.view()
