"""Plan, apply, export/restore and drift of a tenant's voice state. Thin: parse, call the domain, render."""

from typing import Annotated, Any

from fastapi import Body, Path, Query, Request
from fastapi.responses import JSONResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.teamsvoice import docs, paging
from teamsvoice.api.teamsvoice.deps import ChangerDep, OffboarderDep, ReaderDep, ResellerChangerDep, VoiceCaller
from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.voice_state import apply as applying
from teamsvoice.domain.voice_state import drift, repository, workflows
from teamsvoice.domain.voice_state import numbers as reconciliation
from teamsvoice.domain.voice_state.state import export_document
from teamsvoice.microsoft.voice_state import lookup_user_ids
from teamsvoice.microsoft.voice_state import tenant_voice

PREFIX = "/api/teamsvoice/v1"
router = APIRouter(prefix=PREFIX, tags=["teamsvoice: voice state, plan, apply, drift"])
TenantId = Annotated[
    str, Path(description="The Microsoft tenant id the enterprise is linked to", max_length=64)
]


async def _tenant(uow: UnitOfWorkDep, caller: VoiceCaller, tenant_id: str) -> Enterprise:
    """The enterprise linked to the tenant, if one of the caller's scopes holds it; else 404."""
    for scope in caller.scopes:
        try:
            return await repository.tenant_in_scope(uow.session, scope, tenant_id)
        except NotFound:
            continue
    raise NotFound(f"Tenant {tenant_id} not found")


def _body_object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed("The request body must be a JSON object")
    return body


@router.get("/tenants", summary="The linked tenants the caller may see, with their open drift",
    openapi_extra=docs.EITHER_TOKEN,
    responses=docs.ok(docs.schema(docs.TenantOverview, array=True), "The tenants"),
    description="A reseller sees the tenants of its enterprises (and of resellers below it), an enterprise "
    "its own.",
)
async def list_tenants(uow: UnitOfWorkDep, caller: ReaderDep) -> list[dict[str, Any]]:
    return [row for scope in caller.scopes for row in await drift.tenants_overview(uow.session, scope)]


@router.get("/tenants/{tenant_id}/plan", summary="What apply would change in the tenant (reads Microsoft, changes nothing)",
    openapi_extra=docs.EITHER_TOKEN,
    responses=docs.ok(docs.Plan, "The plan") | docs.MICROSOFT,
    description="Compares the desired voice state with what Teams holds: each difference with its action.",
)
async def get_plan(tenant_id: TenantId, uow: UnitOfWorkDep, container: ContainerDep, caller: ReaderDep) -> dict[str, Any]:
    enterprise = await _tenant(uow, caller, tenant_id)
    _, plan = await applying.current_plan(uow.session, enterprise, tenant_voice(container.connector.connect(tenant_id)))
    return plan.wire()


@router.post("/tenants/{tenant_id}/apply", status_code=202,
             summary="Adopt Microsoft's value for the differences named in `adopt`, then converge the rest (a job)",
    openapi_extra=docs.body(docs.ApplyRequest, required=False, example={"adopt": [], "converge": True}),
    responses=docs.ok(docs.ApplyAccepted, "Accepted: the apply job", status=202) | docs.MICROSOFT,
    description="Body optional: `adopt` (differences where Microsoft's value becomes the desired one), "
    "`converge` (default true: start a job that makes Teams match). 202 with the job.",
)
async def post_apply(
    tenant_id: TenantId, uow: UnitOfWorkDep, container: ContainerDep, caller: ChangerDep,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    fields = _body_object(body)
    enterprise = await _tenant(uow, caller, tenant_id)
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
        uow.after_commit(lambda: workflows.enqueue_apply(job_id, job_key), swept=True)
    return {"tenantId": tenant_id, "adopted": adopted, "jobId": job.id if job else None,
            "status": job.status if job else None}


@router.get("/tenants/{tenant_id}/apply/{job_id}", summary="An apply job: its plan and each operation's result",
    openapi_extra=docs.EITHER_TOKEN,
    responses=docs.ok(docs.ApplyJob, "The apply job"),
    description="The job's status, the differences it acted on and each operation's result.",
)
async def get_apply(
    tenant_id: TenantId, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], uow: UnitOfWorkDep, caller: ReaderDep,
) -> dict[str, Any]:
    enterprise = await _tenant(uow, caller, tenant_id)
    return applying.render_job(await applying.apply_job(uow.session, enterprise, job_id), tenant_id)


@router.get("/tenants/{tenant_id}/export", summary="The tenant's desired voice state as a JSON document",
    openapi_extra=docs.EITHER_TOKEN,
    responses=docs.ok(docs.VoiceStateDocument, "The document", example=docs.EXAMPLE_DOCUMENT),
    description="Gateways, PSTN usages, voice routes and policies, users: the document restore takes.",
)
async def get_export(tenant_id: TenantId, uow: UnitOfWorkDep, caller: ReaderDep) -> dict[str, Any]:
    enterprise = await _tenant(uow, caller, tenant_id)
    return export_document(await repository.desired_state(uow.session, enterprise))


@router.post("/tenants/{tenant_id}/restore",
             summary="Make a voice state document (from export; `{document, renameDomain}` for a replacement tenant) the "
             "tenant's desired state; then plan / apply",
    openapi_extra=docs.body(
        docs.schema(docs.VoiceStateDocument, docs.RestoreRequest), example=docs.EXAMPLE_DOCUMENT
    ), responses=docs.ok(docs.Restored, "The desired state was replaced") | docs.MICROSOFT,
    description="A document from export, or `{document, renameDomain: {from, to}}` for a replacement tenant. "
    "Users must exist in the tenant. Changes only the desired state; apply pushes it.",
)
async def post_restore(
    tenant_id: TenantId, uow: UnitOfWorkDep, container: ContainerDep, caller: ResellerChangerDep,
    body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    wanted = applying.restore_request(body)  # checked before anything is asked of Microsoft
    enterprise = await _tenant(uow, caller, tenant_id)
    await uow.end_transaction()  # no read transaction open while Microsoft answers
    user_ids = await lookup_user_ids(container.connector.connect(tenant_id).directory_admin,
                                     [u.user_principal_name for u in wanted.users])
    return await applying.restore(uow.session, enterprise, wanted, user_ids)


@router.post("/tenants/{tenant_id}/users/{upn}/offboard",
             summary="Offboard a voice user: number to quarantine, numbers removed in Teams, account disabled or deleted",
    openapi_extra=docs.body(docs.OffboardRequest, required=False, example={"deleteUser": False}),
    responses=docs.ok(docs.Offboarded, "The user was offboarded") | docs.MICROSOFT,
    description="Body optional: `deleteUser` (default false: the account is disabled). The number goes to "
    "quarantine. The records are committed first: should Microsoft then fail, the error's message says what is "
    "recorded and whether sending the request again finishes it (a 503: yes; a refusal, such as a 403 for an account "
    "with an admin role: not until that is resolved in Microsoft). The record names the account disabled or deleted "
    "only once Microsoft did it.",
)
async def post_offboard(
    tenant_id: TenantId, upn: Annotated[str, Path(max_length=255)], uow: UnitOfWorkDep, container: ContainerDep,
    caller: OffboarderDep, body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    fields = _body_object(body)
    delete_user = fields.get("deleteUser", False)
    if not isinstance(delete_user, bool):
        raise ValidationFailed("deleteUser: must be true or false")
    enterprise = await _tenant(uow, caller, tenant_id)
    connection = container.connector.connect(tenant_id)
    return await applying.offboard(uow.session, enterprise, upn, delete_user=delete_user,
                                   quarantine_seconds=container.settings.number_quarantine_seconds,
                                   voice=connection.voice, accounts=connection.user_accounts)


def _scopes(caller: VoiceCaller) -> list[list[int | None]]:
    """Whom a cursor of the caller's lists was issued for (its pages answer only the scopes it was issued for)."""
    return [[scope.reseller_id, scope.enterprise_id] for scope in caller.scopes]


@router.get("/numbers/reconciliation",
    openapi_extra=docs.EITHER_TOKEN,
            summary="Numbers across the caller's tenants where the inventory, the records and Teams disagree",
    responses={200: docs.answer("The findings of one page", docs.Reconciliation, headers=docs.NEXT_LINK)}
    | docs.MICROSOFT,
    description="Each finding names the number, who holds it in our records and in Teams, and whether it is "
    "in the inventory; tenants Microsoft did not answer for are listed in `unreachable`. Paged, in tenant then "
    "number order: up to `limit` findings a page, read from at most 50 tenants (a page may hold fewer findings, "
    "even none, and still have a `next`); follow the `next` cursor (also the `Link: rel=\"next\"` header) until "
    "it is absent. Each page reads Microsoft only for its own tenants.",
)
async def get_number_reconciliation(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, caller: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=paging.MAX_CURSOR_LENGTH)] = None,
) -> JSONResponse:
    context = {"scopes": _scopes(caller)}
    start = None
    if cursor is not None:
        held = paging.unseal(container.keyring, cursor, "numbers", context, fields={"e": int, "n": (str, type(None))})
        start = reconciliation.NumbersPosition(held["e"], held["n"])
    page = await reconciliation.findings_page(uow.session, caller.scopes,
                                              lambda tenant: tenant_voice(container.connector.connect(tenant)), start, limit)
    following = None if page.following is None else paging.seal(
        container.keyring, "numbers", context, {"e": page.following.enterprise_id, "n": page.following.after_number})
    return JSONResponse({"findings": [f.wire() for f in page.findings],
                         "unreachable": [{"tenantId": tenant, "error": error} for tenant, error in page.unreachable],
                         "next": following}, headers=paging.link_header(request, following))


@router.get("/drift", summary="Drift events of the caller's tenants (open ones unless `all`)",
    openapi_extra=docs.EITHER_TOKEN,
    responses={200: docs.answer("The drift events of one page (oldest first)", docs.schema(docs.DriftEvent, array=True),
                                headers=docs.NEXT_LINK)},
    description="`tenant` (a tenant id) narrows; `all=true` includes resolved events. Paged, oldest first: "
    "`limit` events a page; the next page's URL is the `Link: rel=\"next\"` header (its `cursor`), absent on the "
    "last page. Resolved events are kept `TEAMSVOICE_DRIFT_RETENTION_DAYS`.",
)
async def get_drift(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, caller: ReaderDep,
    tenant: Annotated[str | None, Query(max_length=64)] = None,
    all_events: Annotated[bool, Query(alias="all")] = False,
    limit: Annotated[int, Query(ge=1, le=paging.MAX_LIMIT)] = paging.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=paging.MAX_CURSOR_LENGTH)] = None,
) -> JSONResponse:
    context = {"scopes": _scopes(caller), "tenant": tenant, "all": all_events}
    after = None
    if cursor is not None:
        after = paging.unseal(container.keyring, cursor, "drift", context, fields={"e": int})["e"]
    found = sorted([e for scope in caller.scopes for e in await drift.events(
        uow.session, scope, tenant, include_resolved=all_events, after_id=after, limit=limit + 1)],
        key=lambda event: event["eventId"])
    events, more = found[:limit], len(found) > limit
    following = paging.seal(container.keyring, "drift", context, {"e": events[-1]["eventId"]}) if more else None
    return JSONResponse(events, headers=paging.link_header(request, following))


@router.post("/drift/scan", status_code=202, summary="Scan the caller's tenants for drift now (a job)",
    openapi_extra=docs.EITHER_TOKEN,
    responses=docs.ok(docs.ScanStarted, "Accepted: the scan", status=202),
    description="A durable job; results appear in GET /drift.",
)
async def post_scan(uow: UnitOfWorkDep, caller: ChangerDep) -> dict[str, Any]:
    enterprise_ids = sorted({e for scope in caller.scopes for e in await drift.enterprises_in_scope(uow.session, scope)})
    scan_key = drift.new_scan_key()
    uow.after_commit(lambda: workflows.enqueue_scan(scan_key, enterprise_ids))
    return {"scanId": scan_key, "tenants": len(enterprise_ids)}


@router.put("/tenants/{tenant_id}/drift-settings", summary="Per-tenant drift settings: autoApply",
    openapi_extra=docs.body(docs.DriftSettingsRequest, example={"autoApply": True}),
    responses=docs.ok(docs.DriftSettings, "The settings"),
    description="`autoApply` true: drift found by a scan is applied at once.",
)
async def put_drift_settings(
    tenant_id: TenantId, uow: UnitOfWorkDep, caller: ResellerChangerDep, body: Annotated[Any, Body()] = None,
) -> dict[str, Any]:
    fields = _body_object(body)
    auto_apply = fields.get("autoApply")
    if not isinstance(auto_apply, bool):
        raise ValidationFailed("autoApply: must be true or false")
    enterprise = await _tenant(uow, caller, tenant_id)
    settings = await drift.set_auto_apply(uow.session, enterprise, auto_apply)
    return {"tenantId": tenant_id, "autoApply": settings.auto_apply}


@router.put("/webhook", summary="Where the caller's reseller receives signed drift events; answers the signing secret once",
    openapi_extra=docs.body(
        docs.WebhookRequest, example={"url": "https://portal.example.com/teamsvoice-events"}
    ), responses=docs.ok(docs.Webhook, "The webhook and its signing secret"),
    description="`url` required. Drift events are posted signed (see `signature`); the secret is answered "
    "only here.",
)
async def put_webhook(
    uow: UnitOfWorkDep, container: ContainerDep, caller: ResellerChangerDep, body: Annotated[Any, Body()] = None,
) -> JSONResponse:
    fields = _body_object(body)
    url = fields.get("url")
    if not isinstance(url, str) or not url:
        raise ValidationFailed("url: is required")
    secret = await drift.set_webhook(uow.session, container.keyring, container.settings, caller.principal, url)
    return JSONResponse({"url": url, "secret": secret, "signature": drift.SIGNATURE_DOC},
                        headers={"Cache-Control": "no-store"})
