"""MS Teams resource accounts (spec 004). Create, modify and delete answer at once with the intermediate
state; a durable job does Microsoft's asynchronous work, and the list shows the final state."""

from typing import Annotated, Any

from fastapi import Body, Depends
from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion import users_wire
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.query_filters import filter_conditions
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.domain.calling import jobs as calling_jobs, workflows as calling_workflows
from teamsvoice.domain.fusion import numbers
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import repository, resource_accounts, workflows
from teamsvoice.microsoft.ports import TenantConnection

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: MS Teams resource accounts"])
_ROLE = "tenants.instance.subscriptions.instance.msteams.resource_accounts"


def _access(action: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_ROLE}.{action}"))]


# Fusion's names of a resource account's fields (spec 004) onto the domain's; an error names the field as sent.
CREATE_NAMES = {"accountType": "account_type", "userPrincipalName": "user_principal_name", "displayName": "display_name",
                "location": "location", "phoneNumber": "phone_number", "customerLicenses": "customer_licences"}
MODIFY_NAMES = {"accountType": "account_type", "displayName": "display_name", "location": "location",
                "phoneNumber": "phone_number", "vrp": "voice_routing_policy", "customerLicenses": "customer_licences"}
LABELS = {domain: wire for names in (CREATE_NAMES, MODIFY_NAMES) for wire, domain in names.items()}


def parse_body(body: Any, names: dict[str, str]) -> dict[str, Any]:
    """A create's or modify's body as the domain's fields (their values checked by the domain)."""
    if not isinstance(body, dict):
        raise ValidationFailed("body: must be a JSON object")
    unknown = set(body) - set(names)
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    return {names[key]: value for key, value in body.items()}


def parse_filters(raw: str | None) -> resource_accounts.AccountFilters:
    """The list's `filters`: a JSON object (or the spec's array of one-key conditions) with `country` (a code or a
    list of codes), `have_number` (yes/no) and/or `type` (call-queue/auto-attendant)."""
    if raw is None:
        return resource_accounts.AccountFilters()
    data = filter_conditions(raw, '{"type": "call-queue", "have_number": "yes"}')
    if set(data) - {"country", "have_number", "type"}:
        raise ValidationFailed("filters: an object with country, have_number and/or type")
    countries = data.get("country") or []
    if isinstance(countries, str):
        countries = [countries]
    if not isinstance(countries, list):
        raise ValidationFailed("filters.country: must be a list of ISO 3166 alpha-2 codes")
    countries = [numbers.check_iso_code(c, "filters.country") for c in countries]
    have = data.get("have_number")
    if have not in (None, "yes", "no"):
        raise ValidationFailed("filters.have_number: must be yes or no")
    kind = data.get("type")
    if kind not in (None, *resource_accounts.APPLICATION_IDS):
        raise ValidationFailed("filters.type: must be call-queue or auto-attendant")
    return resource_accounts.AccountFilters(frozenset(str(c).upper() for c in countries),
                                            None if have is None else have == "yes", kind)


def _connection(container: ContainerDep, access: SubscriptionAccess) -> TenantConnection | None:
    """The linked tenant's connection, for an account only Microsoft has (`resource_accounts._adopted`); None
    without a linked tenant."""
    return container.connector.connect(access.ms_tenant_id) if access.ms_tenant_id is not None else None


def _enqueue(uow: UnitOfWorkDep, job_key: str, account_id: int, generation: int) -> None:
    uow.after_commit(lambda: workflows.enqueue_resource_account(job_key, account_id, generation), swept=True)


@router.get("/msteams/resource_accounts", summary="Resource accounts, enriched with Fusion data and status",
    description="Spec 004: `refresh` refreshes the accounts' phone numbers from MS Teams in the background (their "
    "numbers and policies as Teams holds them are recorded; nothing is written to Teams); `filters` (JSON).",
    responses=docs.ok(docs.ResourceAccounts, "The resource accounts") | docs.MICROSOFT,
)
async def list_resource_accounts(access: _access("list"), uow: UnitOfWorkDep, container: ContainerDep,
                                 refresh: bool = False, filters: str | None = None) -> dict[str, Any]:
    connection = container.connector.connect(access.require_ms_tenant())
    parsed = parse_filters(filters)
    await uow.end_transaction()
    listed = await resource_accounts.list_accounts(uow.session, access, connection, parsed)
    if refresh:  # the accounts' records refreshed from MS Teams in the background, once the list is answered (a
        await uow.end_transaction()  # refused list starts nothing); recorded in a transaction of its own
        ids = await repository.resource_account_voice_user_ids(uow.session, access.subscription.id)
        job_id = await calling_jobs.add_users_refresh(uow.session, access.enterprise.id, ids)
        uow.after_commit(lambda: calling_workflows.enqueue(job_id), swept=True)
    return {"resourceAccounts": [users_wire.render_resource_account(view) for view in listed]}


@router.post("/msteams/resource_accounts", summary="Create a resource account (asynchronous: status creating)",
    description="Spec 004: accountType (call-queue | auto-attendant), userPrincipalName, displayName and "
    "location required; the userPrincipalName's domain must be a verified domain of the MS Teams tenant (400 "
    "otherwise, as for a user).",
    openapi_extra=request_body(docs.ResourceAccountRequest, example=docs.RESOURCE_ACCOUNT_EXAMPLE),
    responses=docs.ok(docs.IdOnly, "Accepted: the account's id", example={"id": 122}) | docs.MICROSOFT,
)
async def create_resource_account(body: Annotated[Any, Body()], access: _access("create"), uow: UnitOfWorkDep,
                                  container: ContainerDep) -> dict[str, int]:
    connection = container.connector.connect(access.require_ms_tenant())
    fields = parse_body(body, CREATE_NAMES)
    for name in resource_accounts.REQUIRED_FIELDS:
        if name not in fields:
            raise ValidationFailed(f"{LABELS[name]}: is required")
    account = await resource_accounts.create(uow.session, access, connection, fields, LABELS)
    _enqueue(uow, account.job_key, account.id, account.generation)
    return {"id": account.id}


@router.put("/msteams/resource_accounts/{resource_account_id}",
            summary="Modify a resource account (asynchronous: status updating)",
    description="Spec 004: the fields to change.",
    openapi_extra=request_body(docs.ResourceAccountRequest, example={"accountType": "call-queue", "displayName": "A "
    "Modified Call Queue", "location": "NL", "phoneNumber": "+31302004498", "vrp": "World-DRaaS"}),
    responses=docs.ok(docs.IdOnly, "Accepted: the account's id", example={"id": 141}),
)
async def modify_resource_account(resource_account_id: str, body: Annotated[Any, Body()], access: _access("update"),
                                  uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, int]:
    account = await resource_accounts.changeable(uow.session, access, _connection(container, access), resource_account_id)
    account = await resource_accounts.modify(uow.session, access, account, parse_body(body, MODIFY_NAMES), LABELS)
    _enqueue(uow, account.job_key, account.id, account.generation)
    return {"id": account.id}


@router.delete("/msteams/resource_accounts/{resource_account_id}", status_code=204, response_model=None,
               summary="Delete a resource account: its licence, number and customer licences are released",
    description="Spec 004. An account whose creation has not ended yet is refused (400, code 1009, \"being "
    "created\"): send the DELETE again once the list shows it `active` or `error`.", responses=docs.NO_CONTENT,
)
async def delete_resource_account(resource_account_id: str, access: _access("instance.delete"), uow: UnitOfWorkDep,
                                  container: ContainerDep) -> None:
    account = await resource_accounts.delete(uow.session, access, _connection(container, access), resource_account_id)
    if account is not None:
        _enqueue(uow, account.job_key, account.id, account.generation)
