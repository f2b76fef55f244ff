"""CallApp endpoints (/valet/*): spec 002 and vendor-notes 1.12. Both need the CALLAPP service and the
CallApp consent (GET_CALL_APP_CONSENT)."""

from typing import Any

from fastapi import Request

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.connecttoteams import calling_wire, docs
from teamsvoice.api.connecttoteams.calling_wire import ConfigureUserBody
from teamsvoice.api.connecttoteams.deps import PrincipalDep
from teamsvoice.api.connecttoteams.wire import json_object
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.domain.calling import callapp
from teamsvoice.domain.calling import service as calling
from teamsvoice.domain.provisioning.service import authorize_provisioning
from teamsvoice.domain.sbc.workflows import enqueue_sync

router = APIRouter(prefix="/valet", tags=["ConnecttoTeams: CallApp"])


@router.post("/configureValetServiceAccount", summary="Create the callappservice@<domain> account in the tenant (idempotent)",
             description="Body: a single-level `{\"authenticationResult\": {accessToken, ...}}` (or the "
             "consented-reseller object). Answers 200 `{userPrincipalName, id, created}` (teamsvoice's "
             "addition); the account's password is kept encrypted and never returned.",
             openapi_extra=docs.MSAL_BODY,
             responses=docs.ok(docs.ValetServiceAccount, "The service account") | docs.MICROSOFT)
async def configure_valet_service_account(request: Request, uow: UnitOfWorkDep, container: ContainerDep,
                                          principal: PrincipalDep) -> dict[str, Any]:
    access = await authorize_provisioning(uow.session, principal, container.connector, await json_object(request))
    outcome = await callapp.configure_service_account(uow.session, container.keyring, access)
    return {"userPrincipalName": outcome.user_principal_name, "id": outcome.microsoft_user_id, "created": outcome.created}


@router.post("/configureValetUser", summary="Configure a CallApp user (spec 002 Part II); directRouteId -1 allowed",
             description="Spec 002's body (the same as enterprise/configureUser). With `directRouteId` -1 "
             "the user gets no Teams Direct Routing number; the PBX side and the Unified App still apply. Its "
             "`pbxUserId` follows configureUser's rule (one user's at a PBX).",
             responses=docs.ok(docs.PbxUserInfo, "The configured user") | docs.MICROSOFT,
    openapi_extra=body_example(docs.CONFIGURE_USER_EXAMPLE | {"directRouteId": -1}),
)
async def configure_valet_user(body: ConfigureUserBody, uow: UnitOfWorkDep, container: ContainerDep,
                               principal: PrincipalDep) -> dict[str, Any]:
    configured, location = await calling.configure_user(
        uow.session, principal, container.connector, container.keyring,
        {"authenticationResult": body.authenticationResult} if body.authenticationResult else {},
        body.to_draft("VALET"), body.tenantID)
    uow.after_commit(lambda: enqueue_sync(container.settings))
    return calling_wire.render_pbx_user(configured, location)
