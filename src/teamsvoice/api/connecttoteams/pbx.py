"""PBX endpoints (/pbx/*)."""

from typing import Any

from fastapi import Request, Response

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.connecttoteams import calling_wire, docs
from teamsvoice.api.connecttoteams.calling_wire import PbxLocationBody
from teamsvoice.api.connecttoteams.deps import ResellerDep
from teamsvoice.api.connecttoteams.wire import Id, render_pbx_type, tenant_id_text
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.domain.calling import pbx, routing
from teamsvoice.domain.calling import repository as calling_repository
from teamsvoice.domain.calling.common import enterprise_in_scope
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.sbc.service import enterprise_registration_status
from teamsvoice.domain.sbc.workflows import enqueue_sync
from teamsvoice.sbc import sbc_from_settings

router = APIRouter(prefix="/pbx", tags=["ConnecttoTeams: PBX"])


@router.get("/getPBXTypesByResellerId", summary="PBX types available to a reseller",
            description="Spec 000 Part I.2: the PBX types an enterprise of this reseller may use (`pbxId`).",
            responses=docs.ok_list(docs.PbxTypeInfo, "The PBX types", example=[
                {"id": 1234, "pbxName": "Example PBX", "pbxLabel": "Example PBX Label", "isDefault": True,
                 "isDisabled": False, "hostingType": "Cloud"}]))
async def get_pbx_types(resellerId: Id, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    if await repository.get_reseller(uow.session, principal, resellerId) is None:
        raise NotFound(f"Reseller {resellerId} not found")
    return [render_pbx_type(p) for p in await repository.pbx_types_for(uow.session, resellerId)]


@router.post("/getBasicPBXLocationDetailsForEnterprise", summary="The PBX locations of the enterprise linked to a tenant",
             description="Body: the tenantId as bare text (or a JSON string). Answers the spec 003 list "
             "shape.",
             openapi_extra=docs.TENANT_ID_TEXT, responses=docs.ok_list(docs.PbxLocationInfo, "The PBX locations"))
async def get_basic_pbx_location_details(request: Request, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    enterprise = await enterprise_in_scope(uow.session, principal, tenant_id=await tenant_id_text(request))
    return [calling_wire.render_location(loc, await pbx.pbx_type_name(uow.session, loc))
            for loc in await pbx.locations_of(uow.session, enterprise)]


@router.post("/configurePBX", summary="Create or update a PBX location ('Configure PBX'; teamsvoice's design)",
             description="Body: `enterpriseId` (or `tenantId`) plus the fields of "
             "getBasicPBXLocationDetailsForEnterprise (`pbxLocation`, `pbxType` (a PBX type of the enterprise: its "
             "`pbxName`, or its `id` from getPBXTypesByResellerId, as an integer or as text), `canonicalPbxSIPDomain` "
             "required). With `id` it updates that location; without, "
             "it creates one or updates the one with the same `pbxLocation`. A location moved to another "
             "`canonicalPbxSIPDomain` where another user has one of its users' extensions is a 409 (an extension "
             "is one user's at a PBX). Answers the location in the "
             "getBasicPBXLocationDetailsForEnterprise shape.",
             responses=docs.ok(docs.PbxLocationInfo, "The location"),
    openapi_extra=body_example(docs.PBX_LOCATION_EXAMPLE),
)
async def configure_pbx(body: PbxLocationBody, uow: UnitOfWorkDep, container: ContainerDep,
                        principal: ResellerDep) -> dict[str, Any]:
    if body.enterpriseId is None and body.tenantId is None:
        raise ValidationFailed("enterpriseId: enterpriseId or tenantId is required")
    enterprise = await enterprise_in_scope(uow.session, principal, enterprise_id=body.enterpriseId, tenant_id=body.tenantId)
    location = await pbx.save_location(uow.session, enterprise, body.to_draft(), body.id)
    uow.after_commit(lambda: enqueue_sync(container.settings))
    return calling_wire.render_location(location, await pbx.pbx_type_name(uow.session, location))


@router.delete("/deletePBXLocation/{pbxLocationId}", status_code=204,
               summary="Delete a PBX location without users (teamsvoice's design)",
               description="409 while users are configured at the location; 404 when not yours.",
               responses={204: {"description": "Deleted"},
                          409: docs.answer("The location still has users", docs.SpringError)})
async def delete_pbx_location(pbxLocationId: Id, uow: UnitOfWorkDep, container: ContainerDep,
                              principal: ResellerDep) -> Response:
    found = await calling_repository.location_by_id(uow.session, pbxLocationId)
    visible = await _in_scope(uow, principal, found.enterprise_id if found else None)
    location = await pbx.location_in_scope(uow.session, visible, pbxLocationId)
    await pbx.delete_location(uow.session, location)
    uow.after_commit(lambda: enqueue_sync(container.settings))
    return Response(status_code=204)


@router.delete("/deletePBXUser/{userId}", status_code=204,
               summary="Remove a PBX or CallApp user (teamsvoice's design)",
               description="`userId`: the `id` that configureUser / configureValetUser answered. The user's "
               "SBC registration at its PBX is removed (REGISTER with expires 0) within seconds when an SBC "
               "is attached; its number is released in Teams at the next syncTeamsRegistrations. 404 when "
               "not yours.",
               responses={204: {"description": "Deleted"}})
async def delete_pbx_user(userId: Id, uow: UnitOfWorkDep, container: ContainerDep, principal: ResellerDep) -> Response:
    found = await calling_repository.pbx_user_by_id(uow.session, userId)
    visible = await _in_scope(uow, principal, found.enterprise_id if found else None)
    user = await pbx.user_in_scope(uow.session, visible, userId)
    await pbx.delete_user(uow.session, user)
    uow.after_commit(lambda: enqueue_sync(container.settings))
    return Response(status_code=204)


@router.post("/getSBCRegistrationsForEnterprise", summary="Each PBX user's registration as the SBC reports it "
             "(teamsvoice's design)",
             description="Body: the tenantId as bare text (or a JSON string). Answers `{sbcAttached, sbc, "
             "reachable, message, users: [{id, enterpriseId, teamsUserId, pbxUserId, pbxLocation, "
             "registration, proxy, nextRegisterIn, upToDate}], drift: [{teamsUserId, kind, detail}]}`. "
             "`registration`: REGISTERED, REGISTERING, PENDING (not tried yet), FAILED (the PBX refused or "
             "did not answer; retried), DISABLED, NOT_HELD (the SBC has no registration for the user), "
             "UNKNOWN (the SBC did not answer), NO_SBC (no SBC is attached: `sbcAttached` false and "
             "`message` says so).",
             openapi_extra=docs.TENANT_ID_TEXT, responses=docs.ok(docs.SbcRegistrations, "The registrations"))
async def get_sbc_registrations(request: Request, uow: UnitOfWorkDep, container: ContainerDep,
                                principal: ResellerDep) -> dict[str, Any]:
    enterprise = await enterprise_in_scope(uow.session, principal, tenant_id=await tenant_id_text(request))
    sbc = sbc_from_settings(container.settings)
    return calling_wire.render_registrations(
        await enterprise_registration_status(uow.session, container.keyring, sbc, container.settings, enterprise.id))


@router.post("/getDirectRoutesForEnterprise", summary="The enterprise's direct routes (teamsvoice's design)",
             description="Body: the tenantId as bare text. Answers the direct routes with their "
             "`directRouteId`.",
             openapi_extra=docs.TENANT_ID_TEXT, responses=docs.ok_list(docs.DirectRouteInfo, "The direct routes"))
async def get_direct_routes(request: Request, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    enterprise = await enterprise_in_scope(uow.session, principal, tenant_id=await tenant_id_text(request))
    rendered = []
    for route in await routing.routes_of(uow.session, enterprise):
        gateway = await repository.sbc_gateway(uow.session, route.sbc_gateway_id)
        rendered.append(calling_wire.render_route(route, gateway.region if gateway else None))
    return rendered


async def _in_scope(uow: UnitOfWorkDep, principal: ResellerDep, enterprise_id: int | None) -> set[int]:
    """The enterprise of a row a request names (None: no such row), when the caller may see it: one scoped read,
    whatever the number of resellers in its scope (reading each reseller's enterprises cost a statement per
    reseller). Empty otherwise, so that `pbx.*_in_scope` answers the row's 404."""
    if enterprise_id is None or await repository.get_enterprise(uow.session, principal, enterprise_id) is None:
        return set()
    return {enterprise_id}
