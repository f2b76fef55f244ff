"""GET /api/teamsvoice/v1/audit: the audit log through teamsvoice's own API. Either family's provider login
(api/teamsvoice/deps.py: a ConnecttoTeams reseller-level token, or a Fusion system/distributor/reseller token
holding the read role) reads the entries of its own customers and of the resellers below it; a customer's
login (enterprise or tenant level) is refused, 403. Thin: parse, call domain/audit/service.py, render."""

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.teamsvoice.deps import READ_ROLE, VoiceCaller, caller_with
from teamsvoice.api.teamsvoice import docs, paging
from teamsvoice.domain.audit import service as audit

PREFIX = "/api/teamsvoice/v1"
router = APIRouter(prefix=PREFIX, tags=["teamsvoice: audit log"])
AuditReaderDep = Annotated[VoiceCaller, Depends(caller_with(READ_ROLE, reseller_level=True))]


@router.get("/audit", summary="Who changed what, when, through which API or console page (newest first)",
            description="Filters: `actor` (part of the login name), `tenant` (part of the customer name or "
            "its Microsoft tenant id), `action` (prefix, e.g. `teams_user` or `number.create`), "
            "`since`/`until` (ISO date or date-time, UTC). `format=csv` answers the matching entries as CSV. "
            "Paged: `limit` entries a page; the next page is the `next` cursor (also the `Link: rel=\"next\"` "
            "header), absent on the last page; each page reads only its own entries. `total` is counted on the "
            "first page (without `cursor`) and carried by the cursor; `offset` is the entries shown before the "
            "page. `offset` as a parameter still pages (counting every page): follow `next` instead.",
    responses=docs.audit_answers(),
)
async def list_audit(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, caller: AuditReaderDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    tenant: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    offset: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE)] = paging.DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=paging.MAX_CURSOR_LENGTH)] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    scope = caller.principal.reseller_scope
    query = audit.make_query(actor=actor, tenant=tenant, action=action, since=since, until=until)
    if format == "csv":
        return Response(await audit.entries_csv(uow.session, scope, query), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
    page = await paging.audit_page(uow.session, container.keyring, scope, query, limit=limit, offset=offset, cursor=cursor)
    return JSONResponse({"total": page.total, "offset": page.shown, "limit": limit, "next": page.next,
                         "entries": [audit.render(r) for r in page.entries]},
                        headers=paging.link_header(request, page.next))
