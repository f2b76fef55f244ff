"""Bulk update of MS Teams users, and bulk jobs history and details (spec 004).

`PUT msteams/users/bulk` records the job and its items, starts the durable workflow and, by default,
answers once the job is done: 200 (all updated) / 207 (some) / 400 (none) with per-user details and
errors, streamed from the database. With `Prefer: respond-async` it answers 202 at once with the job's
ids (`Preference-Applied: respond-async`, `Location` of its details). A client that goes away loses
nothing: the job runs on, and its details are readable at any time; a server that stops while the client waits
answers 503 with the job's `Location` (api/job_wait.py).

The spec writes the history/details paths without the `/api/v01/draas` prefix; they are served under the
same prefix as every other subscription route.
"""

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Body, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep, start_swept
from teamsvoice.api.job_wait import until_ended
from teamsvoice.api.docs import request_body
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import subscription_access
from teamsvoice.api.fusion.error_codes import outcome_body
from teamsvoice.api.fusion.wire import SUB_PATH
from teamsvoice.core.errors import ValidationFailed
from teamsvoice.api.fusion.paging import Page, check_page_size, decode_next
from teamsvoice.api.fusion.query_filters import filter_conditions
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.teams_users import bulk, repository, workflows
from teamsvoice.domain.teams_users.models import FusionBulkItem, FusionBulkJob

router = APIRouter(prefix=SUB_PATH, tags=["Fusion: MS Teams users bulk"])
_ROLE = "tenants.instance.subscriptions.instance.msteams.users.bulk"


def _access(role: str) -> Any:
    return Annotated[SubscriptionAccess, Depends(subscription_access(role))]


def render_job(job: FusionBulkJob) -> dict[str, Any]:
    return {"id": job.id, "job_id": job.job_id, "kind": job.kind, "title": job.title,
            "created_on": job.created_on.isoformat(), "updated_on": job.updated_on.isoformat()}


def render_summary(summary: bulk.JobSummary) -> dict[str, Any]:
    return {"id": summary.id, "job_id": summary.job_id, "title": summary.title, "kind": summary.kind,
            "status": summary.status, "total_count": summary.total_count, "success_count": summary.success_count,
            "error_count": summary.error_count, "processed_count": summary.processed_count,
            "cancelled_count": summary.cancelled_count, "created_on": summary.created_on.isoformat(),
            "updated_on": summary.updated_on.isoformat()}


def render_item(item: FusionBulkItem) -> dict[str, Any]:
    """An item of the job's details, its error (and a pending item's last one) in Fusion's `{code, reason}`."""
    body = bulk.item_view(item)
    for key in ("error", "lastError"):
        if key in body:
            body[key] = outcome_body(body[key])
    return body


def outcome_entry(item: FusionBulkItem) -> dict[str, Any]:
    if item.status == "error":
        return {"error": outcome_body(item.error or {}), "upn": item.upn}
    return {"details": item.details or {}, "upn": item.upn}


def http_status(job: FusionBulkJob) -> int:
    return {"success": 200, "partial": 207}.get(bulk.final_status(job), 400)


def message(job: FusionBulkJob) -> str:
    return {"success": "Success", "partial": "Some errors detected"}.get(bulk.final_status(job), "All updates failed")


def parse_job(body: Any) -> tuple[str, Any]:
    """The bulk request's `name` and `data` (its items are checked by `bulk.create_job`)."""
    if not isinstance(body, dict):
        raise ValidationFailed("body: must be a JSON object {name, data}")
    name = body.get("name")
    if not isinstance(name, str):  # (a blank one is refused by bulk.create_job, with the name rule)
        raise ValidationFailed("name: a bulk job descriptive name is required")
    unknown = set(body) - {"name", "data"}
    if unknown:
        raise ValidationFailed(f"{sorted(unknown)[0]}: unknown field")
    return name, body.get("data")


def _wants_async(request: Request) -> bool:
    return any(p.strip().lower() == "respond-async" for p in request.headers.get("prefer", "").split(","))


async def _stream(container: ContainerDep, job_id: int, job: FusionBulkJob) -> AsyncIterator[bytes]:
    yield b'{"details": ['
    first = True
    async for item in bulk.items(container.sessions, job_id):
        yield (b"" if first else b", ") + json.dumps(outcome_entry(item)).encode()
        first = False
    yield b"]"
    if job.error_count:
        yield b', "errors": ['
        first = True
        async for item in bulk.items(container.sessions, job_id, errors_only=True):
            yield (b"" if first else b", ") + json.dumps(outcome_entry(item)).encode()
            first = False
        yield b"]"
    yield b', "message": ' + json.dumps(message(job)).encode() + b"}"


@router.put("/msteams/users/bulk", response_model=None,
            summary="Bulk update MS Teams users (200 all / 207 some / 400 none updated; Prefer: "
            "respond-async -> 202)",
    description="Spec 004: `name` and `data` (MS Teams user objects: `upn` and `displayName`, both required: an "
    "item without one refuses the whole job, 400 naming its index, nothing recorded; and any of number, "
    "country, vrp, groups, licenses, customerLicenses, template). Answers when the job is done: 200 all, 207 "
    "some, 400 none updated, with per-user `details` and `errors`. With `Prefer: respond-async`: 202 at "
    "once, then GET the job.",
    openapi_extra=request_body(docs.BulkRequest, example=docs.BULK_EXAMPLE),
    responses=docs.ok(
        docs.BulkResult, "All users were updated",
        example={
            "details": [{"details": {}, "upn": "test1@netaxisdev.onmicrosoft.com"}], "message": "Success"
        }
    )
    | {207: docs.answer("Some users were updated", docs.BulkResult, example=docs.BULK_PARTIAL_EXAMPLE),
       202: docs.answer("Accepted (Prefer: respond-async)", docs.BulkAccepted,
                        headers={"Location": "The job's details", "Preference-Applied": "respond-async"})}
    | docs.error_or(
        docs.BulkResult, "None of the users were updated (the bulk result), or an invalid request"
    ),
)
async def bulk_update(request: Request, body: Annotated[Any, Body()], access: _access(_ROLE), uow: UnitOfWorkDep,
                      container: ContainerDep) -> Response:
    access.require_ms_tenant()  # a subscription without a Microsoft tenant is said before a bad body (as always)
    name, data = parse_job(body)
    job = await bulk.create_job(uow.session, access, name, data, required=bulk.SPEC_REQUIRED)
    job_id, job_key = job.id, job.job_key
    await uow.end_transaction()
    await start_swept(lambda: workflows.enqueue_bulk(job_key, job_id))  # (recorded: the workers' sweep starts it too)
    location = f"{request.url.path.rstrip('/')}/{job_id}"
    if _wants_async(request):
        return JSONResponse({"id": job_id, "job_id": job.job_id, "status": "queued", "total_count": job.total_count},
                            status_code=202, headers={"Preference-Applied": "respond-async", "Location": location})
    current = await until_ended(lambda: repository.bulk_job_status(container.sessions, job_id),
                                lambda j: j.status in bulk.FINAL, what=f"bulk job {job_id}", location=location)
    return StreamingResponse(_stream(container, job_id, current), status_code=http_status(current),
                             media_type="application/json")


@router.get("/msteams/users/bulk", summary="Bulk jobs history of the subscription",
    description="Spec 004: `page_size`, `next`, `search` (title or kind), `filters` `{\"kind\": [\"ms_users\"]}` "
    "or `[{\"kind\": \"ms_users\"}]` (kinds: ms_users, ms_resource_accounts; another is a 400 naming it). The "
    "filter applies before paging.",
    responses=docs.ok(docs.BulkJobs, "The bulk jobs"),
)
async def list_bulk_jobs(access: _access(f"{_ROLE}.jobs"), uow: UnitOfWorkDep, container: ContainerDep,
                         page_size: int = 10, next: str | None = None, search: str | None = None,
                         filters: str | None = None) -> dict[str, Any]:
    check_page_size(page_size)
    kinds: list[object] | None = None
    if filters:
        parsed = filter_conditions(filters, '{"kind": ["ms_users"]}')
        if set(parsed) != {"kind"}:
            raise ValidationFailed("filters: supported filter is kind")
        kinds = parsed["kind"] if isinstance(parsed["kind"], list) else [parsed["kind"]]
    context = {"page_size": page_size, "search": search, "filters": filters}
    offset = decode_next(container.keyring, next, context)
    rows, total = await bulk.list_jobs(uow.session, access, search, offset, page_size, kinds=kinds)
    return {"bulks": [render_job(r) for r in rows]} | Page(offset, page_size, total).wire(container.keyring, context)


@router.get("/msteams/users/bulk/{bulk_id}", summary="Bulk job details: summary, progress and every item",
    description="Spec 004: the summary and every item (`data`, `status`, `error`).",
    responses=docs.ok(docs.BulkDetails, "The job"),
)
async def get_bulk_job(bulk_id: int, access: _access(f"{_ROLE}.jobs.details"), uow: UnitOfWorkDep,
                       container: ContainerDep) -> Response:
    job = await bulk.job_in_scope(uow.session, access, bulk_id)
    summary = render_summary(bulk.job_summary(job))

    async def stream() -> AsyncIterator[bytes]:
        head = json.dumps(summary)
        yield head[:-1].encode() + b', "job_items": ['
        first = True
        async for item in bulk.items(container.sessions, bulk_id):
            yield (b"" if first else b", ") + json.dumps(render_item(item)).encode()
            first = False
        yield b"]}"

    return StreamingResponse(stream(), media_type="application/json")


@router.post("/msteams/users/bulk/{bulk_id}/cancel",
             summary="Cancel a bulk job (teamsvoice): no item starts after this; finished items stay as they "
             "are",
    description="400 (code 2089) when the job has already ended.",
    responses=docs.ok(docs.BulkSummary, "The job's summary"),
)
async def cancel_bulk_job(bulk_id: int, access: _access(_ROLE), uow: UnitOfWorkDep) -> dict[str, Any]:
    job = await bulk.job_in_scope(uow.session, access, bulk_id)
    await bulk.cancel_job(uow.session, job)
    return render_summary(bulk.job_summary(job))
