"""Enterprise-level endpoints (/enterprise/*), called with a reseller-level token."""

from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.connecttoteams import calling_wire, docs
from teamsvoice.api.connecttoteams.calling_wire import ConfigureUserBody
from teamsvoice.api.connecttoteams.deps import PrincipalDep, ResellerDep
from teamsvoice.api.connecttoteams.wire import (ActionItemBody, TenantId, render_credentials, render_enterprise,
                                                 tenant_id_text)
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.domain.calling import service as calling
from teamsvoice.domain.consent import repository as consents, service as consent
from teamsvoice.domain.orgs import service
from teamsvoice.domain.sbc.workflows import enqueue_sync

router = APIRouter(prefix="/enterprise", tags=["ConnecttoTeams: enterprise"])


def callback_url(container: ContainerDep, request: Request) -> str:
    base = container.settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/restricted/handleResponse"


@router.post(
    "/getActionItemUrl", response_class=PlainTextResponse,
    summary="Microsoft sign-in/consent URL for an action type; answers the URL as bare text",
    description="Spec 000 Part II-IV: `actionType` REGISTRATION (then completeEnterpriseRegistration), "
    "GET_USER_SYNC_CONSENT, GET_SERVICE_PROVIDER_MANAGEMENT_CONSENT, GET_CALL_APP_CONSENT, ... Present the "
    "URL to the enterprise's Global Administrator; the outcome is posted as JSON to `redirectUrl`. The action "
    "type decides the consent: `consentType` may be left out; one naming another action's consent (e.g. "
    "`Presence` with GET_USER_SYNC_CONSENT) is a 400 naming the consent the action gives.",
    openapi_extra=docs.request_body(docs.ActionItemRequest, example={
        "actionType": "REGISTRATION", "enterpriseName": "Contoso",
        "redirectUrl": "https://portal.example.com/consent"}),
    responses=docs.ok(
        docs.URL_TEXT, "The URL to present", media="text/plain", example=docs.ACTION_URL_EXAMPLE
    ),
)
async def get_action_item_url(
    body: ActionItemBody, request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: ResellerDep
) -> str:
    settings = container.settings
    return await consent.create_action_url(
        uow.session, principal, container.connector, container.keyring, action_type=body.actionType,
        enterprise_name=body.enterpriseName, redirect_url=body.redirectUrl,
        callback_url=callback_url(container, request), ttl_seconds=settings.consent_state_ttl_seconds,
        allow_loopback=settings.allow_loopback_redirects, enterprise_id=body.enterpriseId,
        consent_type=body.consentType,
    )


@router.post("/regenerateAPICredentials", summary="New enterprise API credentials; the old ones stop working",
             description="Spec 001: body the tenantId as bare text (`--data-raw '<tenantId>'`); the "
             "enterprise must be registered. Store the answer securely: the secrets are not shown again.",
             openapi_extra=docs.TENANT_ID_TEXT,
             responses=docs.ok(docs.EnterpriseCredentials, "The new credentials", example=docs.CREDENTIALS_EXAMPLE))
async def regenerate_api_credentials(request: Request, uow: UnitOfWorkDep, principal: ResellerDep) -> dict[str, Any]:
    tenant_id = await tenant_id_text(request)
    return render_credentials(await service.regenerate_credentials(uow.session, principal, tenant_id))


@router.post("/getEnterpriseInfoForTenant", summary="The enterprise linked to a tenant (bare tenantId body), with its consents",
             description="Spec 001: `canResellerManageEnterpriseProvisioning` and an `EnterpriseManagement` "
             "entry in `consentsByEnterprise` together mean the reseller may provision with the "
             "consented-reseller object.",
             openapi_extra=docs.TENANT_ID_TEXT, responses=docs.ok(docs.EnterpriseInfo, "The enterprise"))
async def get_enterprise_info_for_tenant(request: Request, uow: UnitOfWorkDep, principal: ResellerDep) -> dict[str, Any]:
    return await _enterprise_info(uow, principal, await tenant_id_text(request))


@router.get("/getEnterpriseInfoForTenant", summary="The same, with ?tenantId=",
            description="As POST /enterprise/getEnterpriseInfoForTenant, the tenant id in the query.",
            responses=docs.ok(docs.EnterpriseInfo, "The enterprise"))
async def get_enterprise_info_for_tenant_query(tenantId: TenantId, uow: UnitOfWorkDep, principal: ResellerDep) -> dict[str, Any]:
    return await _enterprise_info(uow, principal, tenantId)  # (the POST's rule: `tenant_id_text`)


async def _enterprise_info(uow: UnitOfWorkDep, principal: ResellerDep, tenant_id: str) -> dict[str, Any]:
    enterprise = await service.enterprise_for_tenant(uow.session, principal, tenant_id)
    return render_enterprise(enterprise, await consents.consents_of(uow.session, enterprise.id))


@router.post("/configureUser", summary="Configure a PBX user (spec 003 Part III); push it with syncTeamsRegistrations",
             description="Spec 003's body. A reseller token needs no MSAL object (then `tenantID` names the "
             "enterprise); an enterprise token needs one. The SIP password is stored encrypted and never "
             "returned. Answers 200 with the user (teamsvoice's addition: the vendor documents only 200 OK). "
             "With an SBC attached, the user's registration to its PBX follows within seconds (a durable "
             "job). An extension (`pbxUserId`) is one user's at a PBX: every location at its "
             "`canonicalPbxSIPDomain`, whichever enterprise's; another user's is a 409 (teamsvoice's rule).",
             responses=docs.ok(docs.PbxUserInfo, "The configured user") | docs.MICROSOFT,
    openapi_extra=body_example(docs.CONFIGURE_USER_EXAMPLE),
)
async def configure_user(body: ConfigureUserBody, uow: UnitOfWorkDep, container: ContainerDep,
                         principal: PrincipalDep) -> dict[str, Any]:
    configured, location = await calling.configure_user(
        uow.session, principal, container.connector, container.keyring,
        {"authenticationResult": body.authenticationResult} if body.authenticationResult else {},
        body.to_draft("PBX"), body.tenantID)
    uow.after_commit(lambda: enqueue_sync(container.settings))
    return calling_wire.render_pbx_user(configured, location)
