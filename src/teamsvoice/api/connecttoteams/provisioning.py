"""Provisioning endpoints (/provisioning/*): an enterprise token with an MSAL object, or a reseller token
with the consented-reseller object (spec 001)."""

from typing import Any

from fastapi import APIRouter, Request

from teamsvoice.api.connecttoteams.deps import PrincipalDep, ResellerDep
from teamsvoice.api.connecttoteams.wire import CompleteRegistrationBody, json_object, render_credentials, render_enterprise
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.consent.service import consents_of
from teamsvoice.domain.orgs import service as orgs
from teamsvoice.domain.provisioning import service

router = APIRouter(prefix="/provisioning", tags=["ConnecttoTeams: provisioning"])


@router.post("/completeEnterpriseRegistration", summary="Finish registration; answers the enterprise with its API credentials")
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


@router.post("/disableCallingForUser/{upn}", summary="Remove the user's numbers and disable Enterprise Voice")
async def disable_calling_for_user(
    upn: str, request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    access = await service.authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    return await service.set_calling(uow.session, access, upn, enabled=False)


@router.post("/enableCallingForUser/{upn}", summary="Enable Enterprise Voice with the user's number and policy")
async def enable_calling_for_user(
    upn: str, request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    access = await service.authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    return await service.set_calling(uow.session, access, upn, enabled=True)


@router.post(
    "/updateUserDetails", summary="Set a Teams user's phone number and voice routing policy, and push them",
    description='Body: the MSAL object (or consented-reseller object) plus `userPrincipalName` (or `teamsUserId`), '
    'and any of `phoneNumber` (E.164, null removes) and `voiceRoutingPolicy` (null: Global).',
)
async def update_user_details(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    body = await json_object(request)
    access = await service.authorize_provisioning(uow.session, principal, container.connector, body)
    upn = body.get("userPrincipalName") or body.get("teamsUserId")
    if not isinstance(upn, str) or not upn.strip():
        raise ValidationFailed("userPrincipalName: is required")
    changes: dict[str, Any] = {}
    for field, key in (("phoneNumber", "phone_number"), ("voiceRoutingPolicy", "voice_routing_policy")):
        if field in body:
            if body[field] is not None and not isinstance(body[field], str):
                raise ValidationFailed(f"{field}: must be a string or null")
            changes[key] = body[field]
    return await service.update_user_details(uow.session, access, upn.strip(), **changes)


@router.post("/syncTeamsRegistrations", summary="Push every configured user to Teams ('Sync Teams Users')")
async def sync_teams_registrations(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, principal: PrincipalDep
) -> dict[str, Any]:
    access = await service.authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    results = await service.sync_registrations(uow.session, access)
    counts = {status: sum(1 for r in results if r["status"] == status) for status in ("UPDATED", "UNCHANGED", "FAILED")}
    return {"enterpriseId": access.enterprise.id, "results": results,
            "updated": counts["UPDATED"], "unchanged": counts["UNCHANGED"], "failed": counts["FAILED"]}
