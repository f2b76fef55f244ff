"""MS Teams resource accounts (spec 004). Create, modify and delete answer at once with the intermediate
state; a durable job does Microsoft's asynchronous work, and the list shows the final state."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion import users_wire
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.domain.calling import jobs as calling_jobs, workflows as calling_workflows
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import repository, resource_accounts, workflows

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: MS Teams resource accounts"])
_ROLE = "tenants.instance.subscriptions.instance.msteams.resource_accounts"


def _access(action: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(f"{_ROLE}.{action}"))]


def _enqueue(uow: UnitOfWorkDep, job_key: str, account_id: int, generation: int) -> None:
    uow.after_commit(lambda: workflows.enqueue_resource_account(job_key, account_id, generation))


@router.get("/msteams/resource_accounts", summary="Resource accounts, enriched with Fusion data and status",
    description="Spec 004: `refresh` re-synchronises numbers in the background; `filters` (JSON).",
    responses=docs.ok(docs.ResourceAccounts, "The resource accounts") | docs.MICROSOFT,
)
async def list_resource_accounts(access: _access("list"), uow: UnitOfWorkDep, container: ContainerDep,
                                 refresh: bool = False, filters: str | None = None) -> dict[str, Any]:
    connection = container.connector.connect(access.require_ms_tenant())
    if refresh:  # re-synchronise the accounts' phone numbers with MS Teams in the background
        ids = await repository.resource_account_voice_user_ids(uow.session, access.subscription.id)
        job_id = await calling_jobs.add_users_sync(uow.session, access.enterprise.id, ids)
        uow.after_commit(lambda: calling_workflows.enqueue(job_id))
    await uow.end_transaction()
    listed = await resource_accounts.list_accounts(uow.session, access, connection, filters)
    return {"resourceAccounts": [users_wire.render_resource_account(view) for view in listed]}


@router.post("/msteams/resource_accounts", summary="Create a resource account (asynchronous: status creating)",
    description="Spec 004: accountType (call-queue | auto-attendant), userPrincipalName, displayName and "
    "location required.",
    openapi_extra=request_body(docs.ResourceAccountRequest, example=docs.RESOURCE_ACCOUNT_EXAMPLE),
    responses=docs.ok(docs.IdOnly, "Accepted: the account's id", example={"id": 122}),
)
async def create_resource_account(body: Annotated[Any, Body()], access: _access("create"), uow: UnitOfWorkDep) -> dict[str, int]:
    account = await resource_accounts.create(uow.session, access, body)
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
                                  uow: UnitOfWorkDep) -> dict[str, int]:
    account = await resource_accounts.modify(uow.session, access, resource_account_id, body)
    _enqueue(uow, account.job_key, account.id, account.generation)
    return {"id": account.id}


@router.delete("/msteams/resource_accounts/{resource_account_id}", status_code=204, response_model=None,
               summary="Delete a resource account: its licence, number and customer licences are released",
    description="Spec 004.", responses=docs.NO_CONTENT,
)
async def delete_resource_account(resource_account_id: str, access: _access("instance.delete"), uow: UnitOfWorkDep) -> None:
    account = await resource_accounts.delete(uow.session, access, resource_account_id)
    if account is not None:
        _enqueue(uow, account.job_key, account.id, account.generation)
