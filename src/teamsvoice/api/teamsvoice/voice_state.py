"""Plan, apply, export/restore and drift of a tenant's voice state. Thin: parse, call the domain, render."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse

from teamsvoice.api.connecttoteams.deps import PrincipalDep, ResellerDep
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.voice_state import apply as applying
from teamsvoice.domain.voice_state import drift, repository, workflows
from teamsvoice.domain.voice_state.state import export_document
from teamsvoice.microsoft.voice_state import UserAccountsAdapter, lookup_user_ids
from teamsvoice.microsoft.voice_state import tenant_voice

PREFIX = "/api/teamsvoice/v1"
router = APIRouter(prefix=PREFIX, tags=["teamsvoice: voice state, plan, apply, drift"])
TenantId = Annotated[str, Path(description="The Microsoft tenant id the enterprise is linked to", max_length=64)]


def _body_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return body


@router.get("/tenants", summary="The linked tenants the caller may see, with their open drift")
async def list_tenants(uow: UnitOfWorkDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return await drift.tenants_overview(uow.session, principal)


@router.get("/tenants/{tenant_id}/plan", summary="What apply would change in the tenant (reads Microsoft, changes nothing)")
async def get_plan(tenant_id: TenantId, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep) -> dict[str, Any]:
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    _, plan = await applying.current_plan(uow.session, enterprise, tenant_voice(container.connector.connect(tenant_id)))
    return plan.wire()


@router.post("/tenants/{tenant_id}/apply", status_code=202,
             summary="Adopt Microsoft's value for the differences named in `adopt`, then converge the rest (a job)")
async def post_apply(
    tenant_id: TenantId, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    fields = _body_object(body)
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    adopted: list[dict[str, str]] = []
    if fields.get("adopt"):
        _, plan = await applying.current_plan(uow.session, enterprise, tenant_voice(container.connector.connect(tenant_id)))
        adopted = await applying.adopt(uow.session, enterprise, plan, fields["adopt"],
                                       container.settings.number_quarantine_seconds)
    converge = fields.get("converge", True)
    if not isinstance(converge, bool):
        raise ValidationFailed("converge: must be true or false")
    job = await applying.new_apply_job(uow.session, enterprise, "api") if converge else None
    if job is not None:
        job_id, job_key = job.id, job.job_key
        uow.after_commit(lambda: workflows.enqueue_apply(job_id, job_key))
    return {"tenantId": tenant_id, "adopted": adopted, "jobId": job.id if job else None,
            "status": job.status if job else None}


@router.get("/tenants/{tenant_id}/apply/{job_id}", summary="An apply job: its plan and each operation's result")
async def get_apply(
    tenant_id: TenantId, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], uow: UnitOfWorkDep, principal: PrincipalDep,
) -> dict[str, Any]:
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    return applying.render_job(await applying.apply_job(uow.session, enterprise, job_id), tenant_id)


@router.get("/tenants/{tenant_id}/export", summary="The tenant's desired voice state as a JSON document")
async def get_export(tenant_id: TenantId, uow: UnitOfWorkDep, principal: PrincipalDep) -> dict[str, Any]:
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    return export_document(await repository.desired_state(uow.session, enterprise))


@router.post("/tenants/{tenant_id}/restore",
             summary="Make a voice state document (from export; `{document, renameDomain}` for a replacement tenant) the "
             "tenant's desired state; then plan / apply")
async def post_restore(
    tenant_id: TenantId, uow: UnitOfWorkDep, container: ContainerDep, principal: ResellerDep,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    wanted = applying.restore_request(body)  # checked before anything is asked of Microsoft
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    await uow.session.commit()  # no read transaction open while Microsoft answers
    user_ids = await lookup_user_ids(container.connector.connect(tenant_id).directory, [u.user_principal_name for u in wanted.users])
    return await applying.restore(uow.session, enterprise, wanted, user_ids)


@router.post("/tenants/{tenant_id}/users/{upn}/offboard",
             summary="Offboard a voice user: number to quarantine, numbers removed in Teams, account disabled or deleted")
async def post_offboard(
    tenant_id: TenantId, upn: Annotated[str, Path(max_length=255)], uow: UnitOfWorkDep, container: ContainerDep,
    principal: ResellerDep, body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    fields = _body_object(body)
    delete_user = fields.get("deleteUser", False)
    if not isinstance(delete_user, bool):
        raise ValidationFailed("deleteUser: must be true or false")
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    connection = container.connector.connect(tenant_id)
    return await applying.offboard(uow.session, enterprise, upn, delete_user=delete_user,
                                   quarantine_seconds=container.settings.number_quarantine_seconds,
                                   voice=connection.voice, accounts=UserAccountsAdapter(connection))


@router.get("/numbers/reconciliation",
            summary="Numbers across the caller's tenants where the inventory, the records and Teams disagree")
async def get_number_reconciliation(uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep) -> dict[str, Any]:
    findings, errors = await applying.reconcile_numbers_in_scope(
        uow.session, principal, lambda tenant: tenant_voice(container.connector.connect(tenant)))
    return {"findings": findings, "unreachable": errors}


@router.get("/drift", summary="Drift events of the caller's tenants (open ones unless `all`)")
async def get_drift(
    uow: UnitOfWorkDep, principal: PrincipalDep, tenant: Annotated[str | None, Query(max_length=64)] = None,
    all_events: Annotated[bool, Query(alias="all")] = False,
) -> list[dict[str, Any]]:
    return await drift.events(uow.session, principal, tenant, include_resolved=all_events)


@router.post("/drift/scan", status_code=202, summary="Scan the caller's tenants for drift now (a job)")
async def post_scan(uow: UnitOfWorkDep, principal: PrincipalDep) -> dict[str, Any]:
    enterprise_ids = await drift.enterprises_in_scope(uow.session, principal)
    scan_key = drift.new_scan_key()
    uow.after_commit(lambda: workflows.enqueue_scan(scan_key, enterprise_ids))
    return {"scanId": scan_key, "tenants": len(enterprise_ids)}


@router.put("/tenants/{tenant_id}/drift-settings", summary="Per-tenant drift settings: autoApply")
async def put_drift_settings(
    tenant_id: TenantId, uow: UnitOfWorkDep, principal: ResellerDep, body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    fields = _body_object(body)
    auto_apply = fields.get("autoApply")
    if not isinstance(auto_apply, bool):
        raise ValidationFailed("autoApply: must be true or false")
    enterprise = await repository.tenant_in_scope(uow.session, principal, tenant_id)
    settings = await drift.set_auto_apply(uow.session, enterprise, auto_apply)
    return {"tenantId": tenant_id, "autoApply": settings.auto_apply}


@router.put("/webhook", summary="Where the caller's reseller receives signed drift events; answers the signing secret once")
async def put_webhook(
    uow: UnitOfWorkDep, container: ContainerDep, principal: ResellerDep, body: Annotated[Any, Body()] = None,
) -> JSONResponse:
    fields = _body_object(body)
    url = fields.get("url")
    if not isinstance(url, str) or not url:
        raise ValidationFailed("url: is required")
    secret = await drift.set_webhook(uow.session, container.keyring, container.settings, principal, url)
    return JSONResponse({"url": url, "secret": secret, "signature": drift.SIGNATURE_DOC},
                        headers={"Cache-Control": "no-store"})
