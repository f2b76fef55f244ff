"""Provisioning endpoints (/provisioning/*): an enterprise token with an MSAL object, or a reseller token
with the consented-reseller object (spec 001)."""

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.connecttoteams import calling_wire, docs
from teamsvoice.api.connecttoteams.deps import PrincipalDep, ResellerDep
from teamsvoice.api.connecttoteams.wire import (CompleteRegistrationBody, JobKey, body_id, json_object,
                                                 render_credentials, render_enterprise)
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.stopping import ServerStopping, answer_if_stopping
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.core.limits import shown, whole_number
from teamsvoice.domain.calling import jobs, routing, unified_app, workflows
from teamsvoice.domain.consent.repository import consents_of
from teamsvoice.domain.orgs import repository as orgs_repository, service as orgs
from teamsvoice.domain.provisioning import service
from teamsvoice.domain.sbc.workflows import enqueue_sync

router = APIRouter(prefix="/provisioning", tags=["ConnecttoTeams: provisioning"])


@router.post("/completeEnterpriseRegistration", summary="Finish registration; answers the enterprise with its API credentials",
             description="Spec 000 Part II.4: `enterpriseId` (from newEnterprise) and `tenantId` (from the "
             "msalAuthenticationResult posted to your redirectUrl) are required. The answer's "
             "`entAPICredentialInfo` gives the enterprise-level API credentials: store them securely.",
             responses=docs.ok(
                 docs.RegisteredEnterprise, "The registered enterprise with its API credentials"
             ),
    openapi_extra=body_example(
        {"enterpriseId": 719, "tenantId": "tenantid", "givenName": "givenName", "familyName": "familyName"}
    ),
)
async def complete_enterprise_registration(
    body: CompleteRegistrationBody, uow: UnitOfWorkDep, principal: ResellerDep
) -> dict[str, Any]:
    enterprise, credentials = await orgs.complete_registration(
        uow.session, principal, enterprise_id=body.enterpriseId, tenant_id=body.tenantId,
        given_name=body.givenName, family_name=body.familyName,
    )
    return render_enterprise(enterprise, await consents_of(uow.session, enterprise.id)) | {
        "entAPICredentialInfo": render_credentials(credentials)
    }


@router.post("/disableCallingForUser/{upn}", summary="Remove the user's numbers and disable Enterprise Voice",
             description="Spec 001: body the MSAL object (enterprise token) or the consented-reseller object "
             "`{tenantId, resellerId}` (reseller token). Answers the user's outcome in Teams.",
             openapi_extra=docs.MSAL_BODY,
             responses=docs.ok(docs.UserCallingResult, "The user's outcome") | docs.MICROSOFT)
async def disable_calling_for_user(
    upn: str, request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    access = await service.authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    return calling_wire.render_reconciled(await service.set_calling(uow.session, access, upn, enabled=False))


@router.post("/enableCallingForUser/{upn}", summary="Enable Enterprise Voice with the user's number and policy",
             description="Spec 001: body the MSAL object (enterprise token) or the consented-reseller object "
             "`{tenantId, resellerId}` (reseller token). Answers the user's outcome in Teams.",
             openapi_extra=docs.MSAL_BODY,
             responses=docs.ok(docs.UserCallingResult, "The user's outcome") | docs.MICROSOFT)
async def enable_calling_for_user(
    upn: str, request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    access = await service.authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    return calling_wire.render_reconciled(await service.set_calling(uow.session, access, upn, enabled=True))


@router.post(
    "/updateUserDetails", summary="Set a Teams user's phone number and voice routing policy, and push them",
    description='Body: the MSAL object (or consented-reseller object) plus `userPrincipalName` (or `teamsUserId`), '
    'and any of `phoneNumber` (E.164, null removes) and `voiceRoutingPolicy` (null: Global); a field left out '
    'is kept, an empty one is a 400.',
    openapi_extra=docs.request_body(docs.UpdateUserDetailsRequest, example={
        **docs.CONSENTED_RESELLER, "userPrincipalName": "thomas.anderson@contoso.com",
        "phoneNumber": "+31302861233",
        "voiceRoutingPolicy": "World-DRaaS"}),
    responses=docs.ok(docs.UserCallingResult, "The user's outcome") | docs.MICROSOFT,
)
async def update_user_details(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    body = await json_object(request)
    access = await service.authorize_provisioning(uow.session, principal, container.connector, body)
    named = "userPrincipalName" if body.get("userPrincipalName") not in (None, "") else "teamsUserId"
    upn = body.get(named)
    if upn is not None and not isinstance(upn, str):
        raise ValidationFailed(f"{named}: must be a string (the user's userPrincipalName)")
    if not upn or not upn.strip():
        raise ValidationFailed("userPrincipalName: is required")
    changes: dict[str, Any] = {}
    for field, key in (("phoneNumber", "phone_number"), ("voiceRoutingPolicy", "voice_routing_policy")):
        if field in body:
            if body[field] is not None and not isinstance(body[field], str):
                raise ValidationFailed(f"{field}: must be a string or null")
            changes[key] = body[field]
    if "phone_number" in changes:  # a PBX user's number is its Teams number: the SBC registers with it
        uow.after_commit(lambda: enqueue_sync(container.settings))
    return calling_wire.render_reconciled(await service.update_user_details(uow.session, access, upn.strip(), **changes))


@router.post(
    "/syncTeamsRegistrations", summary="Push every configured user to Teams ('Sync Teams Users')",
    description="Up to 25 users (or without `?async=true`) it runs inline and answers 200 with per-user results "
    "(503 with Retry-After if the server stops meanwhile: send it again, each user's push changes only what differs). "
    "Larger enterprises, or `?async=true`, get 202 `{jobId, status, statusUrl}`: a durable job whose progress "
    "GET /provisioning/getSyncJobStatus/{jobId} reports (teamsvoice's design).",
    openapi_extra=docs.MSAL_BODY,
    responses=docs.ok(docs.SyncResults, "Synchronised inline: per-user results")
    | {
        202: docs.answer(
            "Accepted as a durable job", docs.JobAccepted, headers={"Location": "The job's status URL"}
        )
    }
    | docs.MICROSOFT,
)
async def sync_teams_registrations(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep,
    async_: Annotated[bool, Query(alias="async")] = False,
) -> Any:
    access = await service.authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    users = await jobs.voice_user_count(uow.session, access.enterprise)
    if async_ or users > jobs.INLINE_SYNC_LIMIT:
        return await _accept_job(uow, request, container, access.enterprise, workflows.SYNC_TEAMS_USERS)
    results: list[service.Reconciled] = []
    with answer_if_stopping(lambda: _sync_stopped(access.enterprise.id, users, results)):
        await workflows.sync_registrations(uow.session, access, container.settings.number_quarantine_seconds, results)
    counts = {status: sum(1 for r in results if r.status == status) for status in ("UPDATED", "UNCHANGED", "FAILED")}
    return {"enterpriseId": access.enterprise.id, "results": [calling_wire.render_reconciled(r) for r in results],
            "updated": counts["UPDATED"], "unchanged": counts["UNCHANGED"], "failed": counts["FAILED"]}


def _sync_stopped(enterprise_id: int, users: int, done: list[service.Reconciled]) -> ServerStopping:
    """An inline sync the server's stop cancelled (uvicorn's graceful timeout): it has no job that goes on, and
    each user's push changes only what differs, so sending it again finishes it."""
    outcomes = "; ".join(f"{r.user_principal_name} {r.status}" for r in done)  # FAILED ones too: "done", not "pushed"
    return ServerStopping(
        f"The server is stopping and answered before the sync of enterprise {enterprise_id} had ended: "
        f"{len(done)} of {users} users done{f' ({outcomes})' if outcomes else ''}. Send the sync again: each user's "
        f"push changes only what differs from Teams, so what was done is not done twice and the rest is finished")


async def _accept_job(uow: UnitOfWorkDep, request: Request, container: ContainerDep, enterprise: Any, kind: str,
                      graph_token: str | None = None) -> JSONResponse:
    job = await jobs.create_job(uow.session, container.keyring, enterprise, kind, graph_token)
    job_id, job_key = job.id, job.job_key

    async def start() -> None:
        await workflows.enqueue(job_id)

    uow.after_commit(start, swept=True)
    status_url = str(request.url_for("get_sync_job_status", jobId=job_key))
    return JSONResponse(status_code=202, content={"jobId": job_key, "type": kind, "status": "QUEUED", "statusUrl": status_url},
                        headers={"Location": status_url})


@router.get("/getSyncJobStatus/{jobId}", name="get_sync_job_status",
            summary="Progress of a durable sync (teamsvoice's design)",
            description="The job of syncTeamsRegistrations or syncUnifiedApp: status, `counts` per status and "
            "`processed` (of all its per-user results) and its per-user `results`, in the order the job first "
            f"recorded each user: all of them up to {jobs.RESULTS_PAGE_MAX:,}. A larger job's are read in pages: "
            "`offset` (default 0) skips that many, `limit` (1 to "
            f"{jobs.RESULTS_PAGE_MAX:,}, default {jobs.RESULTS_PAGE_MAX:,}) answers at most that many; more remain "
            "while `offset` plus the answer's number of `results` is below `processed`.",
            responses=docs.ok(docs.SyncJobStatus, "The job"))
async def get_sync_job_status(
    jobId: JobKey, uow: UnitOfWorkDep, principal: PrincipalDep,
    offset: Annotated[str | None, Query(description="Results to skip (ASCII digits; default 0)")] = None,
    limit: Annotated[str | None, Query(description="Results to answer at most (ASCII digits, 1 to "
                                                   f"{jobs.RESULTS_PAGE_MAX}; default {jobs.RESULTS_PAGE_MAX})")] = None,
) -> dict[str, Any]:
    return calling_wire.render_job(await jobs.job_progress(
        uow.session, principal, jobId, offset=_count("offset", offset, 0),
        limit=_count("limit", limit, jobs.RESULTS_PAGE_MAX)))


def _count(name: str, text: str | None, default: int) -> int:
    """A query's count as sent (`default` when it is not): ASCII digits, else a 400 naming it."""
    if text is None:
        return default
    number = whole_number(text)
    if number is None:
        raise ValidationFailed(f"{name}: must be a whole number (ASCII digits), not '{shown(text)}'")
    return number


@router.post(
    "/verifyTenantForDirectRouting", summary="Is the tenant ready for Direct Routing? (teamsvoice's design)",
    description="Body: the MSAL object (or consented-reseller object) and `sbcGatewayId`. Answers 200 "
    "`{enterpriseId, tenantId, sbcGatewayId, pstnGatewayFqdn, ready, checks: [{check, passed, required, detail, fix}]}` "
    "with checks sbcDomain, voiceLicences, enterpriseServices, consents (required) and routingObjects (information).",
    openapi_extra=docs.request_body(
        docs.DirectRoutingRequest, example={**docs.CONSENTED_RESELLER, "sbcGatewayId": 5678}
    ),
    responses=docs.ok(docs.Readiness, "The readiness checks") | docs.MICROSOFT,
)
async def verify_tenant_for_direct_routing(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    body = await json_object(request)
    access = await service.authorize_provisioning(uow.session, principal, container.connector, body)
    readiness = await routing.verify(uow.session, access, body_id(body, "sbcGatewayId"))
    return {"enterpriseId": access.enterprise.id, "tenantId": access.enterprise.tenant_id,
            "sbcGatewayId": body.get("sbcGatewayId")} | calling_wire.render_readiness(readiness)


@router.post(
    "/provisionDirectRouting", summary="Create the tenant's Direct Routing objects for an SBC gateway (idempotent)",
    description="Vendor body (vendor-notes 1.1): the MSAL object (or consented-reseller object) and `sbcGatewayId`. "
    "Creates or corrects the PSTN gateway, PSTN usage, voice route and online voice routing policy; what already "
    "matches is left alone. Answers 200 with the direct route (its `directRouteId`) and `changes` (our addition).",
    openapi_extra=docs.request_body(
        docs.DirectRoutingRequest, example={**docs.CONSENTED_RESELLER, "sbcGatewayId": 5678}
    ),
    responses=docs.ok(docs.ProvisionedDirectRoute, "The direct route") | docs.MICROSOFT,
)
async def provision_direct_routing(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    body = await json_object(request)
    access = await service.authorize_provisioning(uow.session, principal, container.connector, body)
    route, changes = await routing.provision(uow.session, access, body_id(body, "sbcGatewayId"))
    gateway = await orgs_repository.sbc_gateway(uow.session, route.sbc_gateway_id)
    return calling_wire.render_route(route, gateway.region if gateway else None) | {"changes": changes}


@router.post(
    "/syncUnifiedApp", status_code=202, summary="Publish the Unified App and install it for configured users (teamsvoice's design)",
    description="Body: the MSAL object (or consented-reseller object). Answers 202 `{jobId, status, statusUrl}`; "
    "With an enterprise token the GA's MSAL token publishes (Graph accepts only delegated tokens for the org "
    "catalog); installs use the application's consent. The durable job publishes (or updates) the app in the tenant's catalog, then installs or upgrades it for every "
    "PBX and CallApp user. Progress: GET /provisioning/getSyncJobStatus/{jobId}.",
    openapi_extra=docs.MSAL_BODY,
    responses=docs.ok(docs.JobAccepted, "Accepted as a durable job", status=202) | docs.MICROSOFT,
)
async def sync_unified_app(request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep) -> JSONResponse:
    body = await json_object(request)
    access = await service.authorize_provisioning(uow.session, principal, container.connector, body)
    await unified_app.template_of(uow.session, access.enterprise.id)
    msal_result = service.find_msal_result(body) if principal.is_enterprise_level else None
    return await _accept_job(uow, request, container, access.enterprise, workflows.SYNC_UNIFIED_APP,
                             msal_result["accessToken"] if msal_result else None)
