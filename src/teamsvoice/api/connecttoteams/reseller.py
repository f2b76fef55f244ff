"""Reseller-level endpoints (/reseller/*)."""

from typing import Any, TypeVar

from fastapi import Request

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.connecttoteams import calling_wire, docs
from teamsvoice.api.connecttoteams.calling_wire import TeamsAppTemplateBody
from teamsvoice.api.connecttoteams.deps import PrincipalDep, ResellerDep
from teamsvoice.api.connecttoteams.wire import (
    EnterpriseBody,
    Id,
    bare_text,
    render_enterprise,
    render_reseller,
    render_sbc_gateway,
    render_user,
    row_id,
)
from teamsvoice.api.deps import UnitOfWorkDep
from teamsvoice.core.errors import NotFound, ValidationFailed
from teamsvoice.domain.calling import unified_app
from teamsvoice.domain.calling.common import enterprise_in_scope
from teamsvoice.domain.consent.repository import consents_of
from teamsvoice.domain.orgs import repository, service

T = TypeVar("T")

router = APIRouter(prefix="/reseller", tags=["ConnecttoTeams: reseller"])


def _of_reseller(rows: list[T] | None, reseller_id: int) -> list[T]:
    """A reseller's rows, read with the reseller itself in one statement: None when it is not in scope."""
    if rows is None:
        raise NotFound(f"Reseller {reseller_id} not found")
    return rows


@router.put("/getAuthenticatedUser", summary="The API admin the token belongs to",
            description="Spec 001: answers the token's admin, with its `resellerId`. The body may be the "
            "admin's own username as bare text (the vendor's `--data '<myadmin>'`); another username is 404.",
            openapi_extra=docs.USERNAME_TEXT,
            responses=docs.ok(docs.AuthenticatedUser, "The token's admin", example=docs.AUTHENTICATED_USER_EXAMPLE))
async def get_authenticated_user(request: Request, uow: UnitOfWorkDep, principal: PrincipalDep) -> dict[str, Any]:
    raw = (await request.body()).strip()
    if raw:
        username = await bare_text(request, "username")
        if username != principal.username:
            raise NotFound(f"User {username} not found")
    user = await repository.portal_user(uow.session, principal.portal_user_id)
    assert user is not None
    return render_user(user)


@router.get("/getResellers/{masterResellerId}", summary="Resellers under a master reseller",
            description="Spec 001: the resellers directly under `masterResellerId` (which must be yours).",
            responses=docs.ok_list(docs.ResellerInfo, "The resellers", example=[
                {"resellerId": 123, "resellerName": "Reseller One", "type": "RESELLER", "masterResellerId": 12}]))
async def get_resellers(masterResellerId: Id, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    children = _of_reseller(await repository.child_resellers_in_scope(uow.session, principal, masterResellerId), masterResellerId)
    return [render_reseller(r) for r in children]


@router.get("/getEnterprisesForReseller/{resellerId}", summary="Enterprises of a reseller",
            description="Spec 001: the reseller's Enterprise objects, each with its consents.",
            responses=docs.ok_list(docs.EnterpriseInfo, "The enterprises"))
async def get_enterprises(resellerId: Id, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    enterprises = _of_reseller(await repository.enterprises_with_consents(uow.session, principal, resellerId), resellerId)
    return [render_enterprise(enterprise, consents) for enterprise, consents in enterprises]


@router.get("/getAvailableSBCGatewayRegionsByResellerId/{resellerId}", summary="SBC gateway regions of a reseller",
            description="Spec 000 Part I.1: the SBC gateways an enterprise of this reseller may use "
            "(`sbcGateways`).",
            responses=docs.ok_list(docs.SbcGatewayInfo, "The SBC gateways",
                                   example=[{"sbcGatewayId": 5678, "sbcGatewayRegion": "US-East"}]))
async def get_sbc_gateways(resellerId: Id, uow: UnitOfWorkDep, principal: ResellerDep) -> list[dict[str, Any]]:
    gateways = _of_reseller(await repository.sbc_gateways_in_scope(uow.session, principal, resellerId), resellerId)
    return [render_sbc_gateway(g) for g in gateways]


@router.post("/newEnterprise", summary="Create an enterprise; answers its id as a bare Long",
             description="Spec 000 Part I.3. Required: `enterpriseName`, `pbxId`, `sbcGateways`, `services` "
             "(PBX, Trunk, CALLAPP, CallRecording, SMS, CHAT). 409 when the reseller has an enterprise of "
             "that name.",
             openapi_extra=docs.request_body(docs.NewEnterpriseRequest, example=docs.NEW_ENTERPRISE_EXAMPLE),
             responses=docs.ok({"type": "integer", "format": "int64"}, "The new enterprise's id", example=123456789))
async def new_enterprise(body: EnterpriseBody, uow: UnitOfWorkDep, principal: ResellerDep) -> int:
    enterprise = await service.create_enterprise(uow.session, principal, body.to_draft())
    return enterprise.id


@router.post(
    "/editEnterprise",
    summary="Edit an enterprise (teamsvoice's path: the vendor's is undocumented)",
    description="Same body as newEnterprise with `enterpriseId` required; only the fields present change "
    "(`services`, `pbxId` and `sbcGateways` are replaced as whole lists). Answers the enterprise object.",
    openapi_extra=docs.request_body(
        docs.EditEnterpriseRequest, example={"enterpriseId": 719, "userLimit": 50}
    ),
    responses=docs.ok(docs.EnterpriseInfo, "The enterprise"),
)
async def edit_enterprise(body: EnterpriseBody, uow: UnitOfWorkDep, principal: ResellerDep) -> dict[str, Any]:
    if body.enterpriseId is None:
        raise ValidationFailed("enterpriseId: is required")
    enterprise_id = row_id("enterpriseId", body.enterpriseId)
    enterprise = await service.edit_enterprise(uow.session, principal, enterprise_id, body.to_draft())
    return render_enterprise(enterprise, await consents_of(uow.session, enterprise.id))


@router.post(
    "/saveOrUpdateTeamsApplicationTemplate", summary="Save the enterprise's Unified App settings (vendor-notes 1.2)",
    description="Images are base64 PNGs: brandingImageInBytes 192x192, outlineImageInBytes 32x32, each at most 1 MB. "
    "The texts go into the Teams app manifest, within its limits: at most "
    + ", ".join(f"{field} {unified_app.text_limit(field)}" for field in unified_app.TEMPLATE_TEXTS)
    + " characters. Answers the template without images, with `appVersion` (grows when something changed; "
    "response: teamsvoice's design).",
    responses=docs.ok(docs.TeamsAppTemplateInfo, "The saved template"),
)
async def save_teams_application_template(body: TeamsAppTemplateBody, uow: UnitOfWorkDep, principal: ResellerDep) -> dict[str, Any]:
    enterprise = await enterprise_in_scope(uow.session, principal, enterprise_id=body.enterpriseId, tenant_id=body.tenantID)
    if body.resellerId is not None and body.resellerId != enterprise.reseller_id:
        raise ValidationFailed(f"resellerId: enterprise {enterprise.id} belongs to reseller {enterprise.reseller_id}")
    template, changed = await unified_app.save_template(uow.session, enterprise, body.model_dump())
    return calling_wire.render_template(template, enterprise) | {"changed": changed}
