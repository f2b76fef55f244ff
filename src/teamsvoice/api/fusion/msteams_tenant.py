"""The MS Teams tenant of a subscription (spec 004 and vendor-notes 2.8): status, administrator, onboarding
wizard, unlink, and read-only lists from the tenant (verified domains, licences, VRPs, groups)."""

import html
from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import HTMLResponse, JSONResponse, Response

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.wire import SUB_PATH, AdminBody
from teamsvoice.core.errors import NotFound, UpstreamError, ValidationFailed
from teamsvoice.domain.fusion import onboarding, repository as fusion_repository
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.jobs.fusion_wizard import enqueue_wizard

router = APIRouter(prefix=SUB_PATH + "/msteams", tags=["Fusion: MS Teams tenant"])
consent_router = APIRouter(tags=["Fusion: MS Teams tenant"])
_MST = "tenants.instance.subscriptions.instance.msteams"


def _access(role: str):  # type: ignore[no-untyped-def]
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_MST}.{role}"))]


# --- status ---------------------------------------------------------------------------------------


async def _probe(call) -> bool:  # type: ignore[no-untyped-def]
    try:
        await call
    except (UpstreamError, NotFound):
        return False
    return True


@router.get("/status", summary="MS Teams tenant status: onboarded | not_initiated | already_linked | wizard_<STEP>_<OK|ERROR>",
    description="Spec 004: checks the PowerShell and Graph integrations and the Fusion domain of the linked "
    "tenant.",
    responses=docs.ok(
        docs.TenantStatus, "The MS Teams tenant status", example=docs.STATUS_EXAMPLE
    ) | docs.MICROSOFT,
)
async def status(access: _access("status.read"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    run = await onboarding.latest_run(uow.session, access.subscription.id)
    state = onboarding.status_of(access, run)
    current = onboarding.current_run(access, run)
    tenant_id = access.ms_tenant_id or (current.ms_tenant_id if current else None)
    body: dict[str, Any] = {"msTenantId": tenant_id, "mode": access.subscription.mode, "status": state,
                            "msApplicationId": container.settings.microsoft_client_id,
                            "powershell": {"active": False}, "msGraph": {"active": False}}
    if access.ms_tenant_id is None:
        return body
    await uow.end_transaction()  # no DB transaction held while Microsoft is asked
    connection = container.connector.connect(access.ms_tenant_id)
    body["msGraph"]["active"] = await _probe(connection.directory.organization())
    body["powershell"]["active"] = await _probe(connection.teams_admin.check_powershell())
    if access.enterprise.tenant_domain:
        verified = False
        if body["msGraph"]["active"]:
            wanted = access.enterprise.tenant_domain.lower()
            try:
                verified = any(d.is_verified for d in await connection.directory_admin.domains() if d.name.lower() == wanted)
            except (UpstreamError, NotFound):
                verified = False
        body["domain"] = {"name": access.enterprise.tenant_domain, "verified": verified}
    return body


# --- administrator --------------------------------------------------------------------------------


@router.get("/admins", summary="The subscription's MS Teams administrator (never its password)",
    description="Spec 004. 404 when none is configured.",
    responses=docs.ok(
        docs.MsTeamsAdmin, "The administrator",
        example={"id": 20, "msUsername": "john.doe@netaxis.onmicrosoft.com"}
    ),
)
async def get_admin(access: _access("admins.read"), uow: UnitOfWorkDep) -> dict[str, Any]:
    admin = await onboarding.get_admin(uow.session, access)
    if admin is None:
        raise NotFound("No MS Teams administrator is configured for this subscription")
    return {"id": admin.id, "msUsername": admin.ms_username}


@router.post("/admins", summary="Create or update the MS Teams administrator (the password is stored encrypted)",
    description="Spec 004: `msUsername` (a userPrincipalName) and `msPassword` required; the password is never "
    "returned. 400 (code 2030) while the onboarding wizard runs.",
    responses=docs.ok(docs.IdOnly, "The administrator's id", example={"id": 20}),
    openapi_extra=body_example(
        {"msUsername": "john.doe@netaxis.onmicrosoft.com", "msPassword": "VerySecretPassword"}
    ),
)
async def set_admin(body: AdminBody, access: _access("admins.update"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    admin = await onboarding.set_admin(uow.session, container.keyring, access, body.msUsername, body.msPassword)
    return {"id": admin.id}


@router.delete("/admins", summary="Delete the MS Teams administrator (204 when there was none)", response_model=None,
    description="Spec 004: 200 with the deleted administrator, 204 when there was none; 400 (code 2030) while the "
    "onboarding wizard runs.",
    responses=docs.ok(docs.MsTeamsAdmin, "The deleted administrator",
                      example={"id": 20, "msUsername": "john.doe@netaxis.onmicrosoft.com"})
    | {204: {"description": "There was no administrator; no body"}},
)
async def delete_admin(access: _access("admins.delete"), uow: UnitOfWorkDep) -> Response | dict[str, Any]:
    admin = await onboarding.delete_admin(uow.session, access)
    if admin is None:
        return Response(status_code=204)
    return {"id": admin.id, "msUsername": admin.ms_username}


# --- wizard ---------------------------------------------------------------------------------------


def _wizard_body(run) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    steps = run.steps if run is not None else onboarding.initial_steps()
    body: dict[str, Any] = {
        "running": bool(run and run.running),
        "wizardSteps": [{"step": s["step"], "text": s["text"], "executed": s["executed"], "ok": s.get("ok"),
                         "detail": s.get("detail")} for s in steps],
    }
    if run is not None:
        body |= {"id": run.id, "status": run.status}
        if run.error:
            body["error"] = run.error
        if run.consent_url:
            body["consentUrl"] = run.consent_url
    return body


@router.post("/wizard", summary="Start the onboarding wizard (a durable job); answers its transaction id",
    description="Vendor-notes 2.7: links the subscription to the administrator's tenant; follow it with GET "
    ".../msteams/wizard.", responses=docs.ok(docs.IdOnly, "The wizard run's id"),
)
async def start_wizard(access: _access("wizard.run"), uow: UnitOfWorkDep) -> dict[str, Any]:
    run = await onboarding.start_wizard(uow.session, access)
    run_id = run.id

    async def enqueue() -> None:
        await enqueue_wizard(run_id)

    uow.after_commit(enqueue, swept=True)
    return {"id": run_id}


@router.get("/wizard", summary="Progress of the onboarding wizard: running flag and steps",
    description="Vendor-notes 2.7: 200 while running or done; 400 with the same body when the run stopped on "
    "an error (`error`, and `consentUrl` when the admin must consent).",
    responses=docs.ok(docs.Wizard, "The wizard's progress") | docs.error_or(docs.Wizard, "The run stopped on "
    "an error (the wizard's body), or an invalid request"),
)
async def get_wizard(access: _access("wizard.read"), uow: UnitOfWorkDep) -> JSONResponse:
    run = await onboarding.latest_run(uow.session, access.subscription.id)
    # The portal reads running/wizardSteps from the error answer too (vendor-notes 2.7).
    status_code = 400 if run is not None and not run.running and run.error else 200
    return JSONResponse(_wizard_body(run), status_code=status_code)


@router.post("/unlink", summary="Unlink the MS Teams tenant from the subscription",
    description="Microsoft is not changed: the tenant's users keep their numbers there. teamsvoice forgets its "
    "records of the tenant's users; the numbers they held stay in the subscription's inventory, in quarantine "
    "(`TEAMSVOICE_NUMBER_QUARANTINE_SECONDS`, listed as disconnected numbers): no user of any customer gets them "
    "before it ends. Refused (400, code 2033) while a job of the subscription has not ended.",
    responses=docs.ok(docs.Unlinked, "The unlinked tenant id"),
)
async def unlink(access: _access("unlink"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    return {"msTenantId": await onboarding.unlink(uow.session, access, container.settings.number_quarantine_seconds)}


# --- read-only lists from the tenant --------------------------------------------------------------


async def _connection(access: SubscriptionAccess, uow: UnitOfWorkDep, container: ContainerDep):  # type: ignore[no-untyped-def]
    tenant_id = access.require_ms_tenant()
    await uow.end_transaction()
    return container.connector.connect(tenant_id)


@router.get("/domains", summary="Verified domains of the linked tenant",
    description="Spec 004.", responses=docs.ok(docs.VerifiedDomains, "The verified domains") | docs.MICROSOFT,
)
async def domains(access: _access("domains.list"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    connection = await _connection(access, uow, container)
    return {"verifiedDomains": [d.name for d in await connection.directory_admin.domains() if d.is_verified]}


@router.get("/licenses", summary="Microsoft licences purchased for users (free_only=yes: with at least one free)",
    description="Spec 004: `free_only` yes|no.",
    responses=docs.ok(docs.TenantLicences, "The licences", example=docs.LICENCES_EXAMPLE) | docs.MICROSOFT,
)
async def licenses(access: _access("licenses.list"), uow: UnitOfWorkDep, container: ContainerDep,
                   free_only: str = "no") -> dict[str, Any]:
    if free_only not in ("yes", "no"):
        raise ValidationFailed("free_only: must be yes or no")
    connection = await _connection(access, uow, container)
    result = []
    for sku in await connection.directory_admin.subscribed_skus():
        if sku.applies_to != "User" or sku.capability_status != "Enabled":
            continue
        if free_only == "yes" and sku.available < 1:
            continue
        result.append({"free": sku.available, "skuDescription": sku_description(sku.sku_part_number),
                       "skuId": sku.sku_id, "skuPartNumber": sku.sku_part_number, "total": sku.prepaid})
    return {"licenses": result}


@router.get("/vrps", summary="Voice routing policies of the linked tenant",
    description="Spec 004: `description` is the policy's name, `identity` what a user's `vrp` takes (the same name).",
    responses=docs.ok(docs.Vrps, "The voice routing policies") | docs.MICROSOFT,
)
async def vrps(access: _access("vrps.read"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    connection = await _connection(access, uow, container)
    # Spec 004's `description` is the "Name of the voice routing policy": its identity, never Teams' Description text.
    return {"results": [{"description": policy.identity, "identity": policy.identity}
                        for policy in await connection.direct_routing.routing_policies()]}


@router.get("/groups", summary="Office 365 groups of the linked tenant, with the SRE group filter",
    description="Spec 004: `filter` marks groups of the SRE filter, `orphan` filter entries no longer in "
    "Office 365.", responses=docs.ok(docs.Groups, "The groups") | docs.MICROSOFT,
)
async def groups(access: _access("groups.read"), uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    filtered = await fusion_repository.group_filter(uow.session, access.subscription.id)
    connection = await _connection(access, uow, container)
    result, seen = [], set()
    async for group in connection.directory_admin.groups():
        seen.add(group.id)
        result.append({"description": group.description, "displayName": group.display_name,
                       "filter": group.id in filtered, "id": group.id, "teamsEnabled": group.is_team})
    result += [{"displayName": name, "id": group_id, "orphan": True}
               for group_id, name in filtered.items() if group_id not in seen]
    return {"groups": result}


SKU_DESCRIPTIONS = {
    "ENTERPRISEPACK": "Office 365 E3", "STANDARDPACK": "Office 365 E1", "ENTERPRISEPREMIUM": "Office 365 E5",
    "MCOEV": "Microsoft Teams Phone Standard", "PHONESYSTEM_VIRTUALUSER": "Microsoft Teams Phone Resoure Account",
    "MCOPSTNC": "Communications Credits", "FLOW_FREE": "Microsoft Flow Free", "MCOCAP": "Microsoft Teams Shared Devices",
    "SPE_E3": "Microsoft 365 E3", "SPE_E5": "Microsoft 365 E5",
}


def sku_description(part_number: str) -> str:
    """A static English table, as the vendor's; the part number itself when unknown."""
    return SKU_DESCRIPTIONS.get(part_number, part_number)


# --- where the tenant's admin lands after granting consent ----------------------------------------


def _page(title: str, message: str, status: int = 200, link: tuple[str, str] | None = None) -> HTMLResponse:
    more = f"<p><a href='{html.escape(link[0])}'>{html.escape(link[1])}</a></p>" if link else ""
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{more}</body></html>",
                        status_code=status)


@consent_router.get(onboarding.CONSENT_CALLBACK_PATH, response_class=HTMLResponse,
                    summary="Microsoft's answer to the admin-consent URL the wizard gives",
    description="Where Microsoft sends the tenant's Global Administrator after the admin-consent URL of the wizard. "
    "The authorization code is redeemed: the administrator who signed in must be a Global Administrator of the "
    "URL's tenant; the consent is then recorded for the URL's subscription, whose wizard requires it. An HTML "
    "page says whether consent was granted.",
    responses=docs.ok(docs.HTML_PAGE, "Consent granted", media="text/html") | {400: docs.answer("Consent not "
    "granted or not effective (the page links the consent URL, to sign in again), or the link is not valid (expired, "
    "or its subscription deleted)", docs.HTML_PAGE, media="text/html"), 503: docs.answer(
    "Microsoft did not answer, or the consent has not taken effect in Microsoft yet: nothing is final; the page links "
    "the consent URL, to be opened again in a moment", docs.HTML_PAGE, media="text/html")},
)
async def consent_callback(container: ContainerDep, uow: UnitOfWorkDep, state: str | None = None,
                           code: str | None = None, error: str | None = None,
                           error_description: str | None = None) -> HTMLResponse:
    answer = await onboarding.accept_admin_consent(
        uow.session, container.connector, container.keyring, container.settings.public_url or "", state=state, code=code,
        error=error, error_description=error_description)
    status = 200 if answer.granted else 503 if answer.waiting else 400  # 503: nothing is final
    return _page(answer.title, answer.message, status,
                 (answer.sign_in_again, "Sign in again") if answer.sign_in_again else None)
