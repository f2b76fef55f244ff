"""/restricted/handleResponse: where Microsoft sends the Global Administrator back after sign-in/consent."""

import html
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from teamsvoice.api.connecttoteams.enterprise import callback_url
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.domain.consent import service as consent
from teamsvoice.jobs.webhooks import enqueue_delivery

router = APIRouter(prefix="/restricted", tags=["ConnecttoTeams: consent callback"])


def page(title: str, message: str, status: int = 200) -> HTMLResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status_code=status)


async def _handle(request: Request, uow: UnitOfWorkDep, container: ContainerDep, fields: dict[str, str | None]) -> HTMLResponse:
    outcome = await consent.complete_action(
        uow.session, container.connector, container.keyring, state=fields.get("state"), code=fields.get("code"),
        error=fields.get("error"), error_description=fields.get("error_description"),
        callback_url=callback_url(container, request),
    )

    async def deliver() -> None:
        await enqueue_delivery(outcome.delivery_id)

    uow.after_commit(deliver)
    if outcome.succeeded:
        return page("Done", f"{outcome.action_type} for {outcome.enterprise_name} is complete. You can close this window.")
    return page("Not completed", f"{outcome.action_type} for {outcome.enterprise_name} failed: {outcome.message}")


@router.post("/handleResponse", response_class=HTMLResponse, summary="Microsoft's form_post answer")
async def handle_response_post(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep,
    code: Annotated[str | None, Form()] = None, state: Annotated[str | None, Form()] = None,
    error: Annotated[str | None, Form()] = None, error_description: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    return await _handle(request, uow, container, {"code": code, "state": state, "error": error,
                                                   "error_description": error_description})


@router.get("/handleResponse", response_class=HTMLResponse, summary="Microsoft's query answer")
async def handle_response_get(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, code: str | None = None, state: str | None = None,
    error: str | None = None, error_description: str | None = None,
) -> HTMLResponse:
    return await _handle(request, uow, container, {"code": code, "state": state, "error": error,
                                                   "error_description": error_description})
