"""/restricted/handleResponse: where Microsoft sends the Global Administrator back after sign-in/consent."""

import html
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.connecttoteams import docs
from teamsvoice.api.connecttoteams.enterprise import callback_url
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.domain.consent import service as consent
from teamsvoice.domain.consent.actions import ACTION_TYPES
from teamsvoice.jobs.webhooks import enqueue_delivery

router = APIRouter(prefix="/restricted", tags=["ConnecttoTeams: consent callback"])


def done_page(action_type: str, enterprise_name: str) -> HTMLResponse:
    """What the administrator's answer achieved, and no more: REGISTRATION ends only when the service provider
    calls /provisioning/completeEnterpriseRegistration (spec 000), so its page does not say it is complete."""
    if action_type == "REGISTRATION":
        return page("Registration consent received",
                    f"Registration consent for {enterprise_name} was received. The registration completes when your "
                    f"service provider calls completeEnterpriseRegistration. You can close this window.")
    if action_type == "LOGIN_ENTERPRISE_ADMIN":
        return page("Signed in", f"The sign-in for {enterprise_name} was received and passed to your service provider. "
                                 f"You can close this window.")
    consent_name = ACTION_TYPES[action_type].consent_name
    return page("Consent received", f"The {consent_name} consent ({action_type}) for {enterprise_name} was granted "
                                    f"and passed to your service provider. You can close this window.")


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
        return done_page(outcome.action_type, outcome.enterprise_name)
    return page("Not completed", f"{outcome.action_type} for {outcome.enterprise_name} failed: {outcome.message}")


@router.post("/handleResponse", response_class=HTMLResponse, summary="Microsoft's form_post answer",
             description="Where Microsoft posts the administrator's sign-in/consent answer (`code`, `state` "
             "or `error`, `error_description`); answers an HTML page saying what it achieved. The outcome "
             "goes to the provider's redirectUrl (a durable webhook).",
             responses=docs.ok(docs.HTML_PAGE, "What the answer achieved (or why it did not complete)",
                               media="text/html"))
async def handle_response_post(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep,
    code: Annotated[str | None, Form()] = None, state: Annotated[str | None, Form()] = None,
    error: Annotated[str | None, Form()] = None, error_description: Annotated[str | None, Form()] = None,
) -> HTMLResponse:
    return await _handle(request, uow, container, {"code": code, "state": state, "error": error,
                                                   "error_description": error_description})


@router.get("/handleResponse", response_class=HTMLResponse, summary="Microsoft's query answer",
            description="As the POST, with the answer in the query.",
            responses=docs.ok(docs.HTML_PAGE, "What the answer achieved (or why it did not complete)",
                              media="text/html"))
async def handle_response_get(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, code: str | None = None, state: str | None = None,
    error: str | None = None, error_description: str | None = None,
) -> HTMLResponse:
    return await _handle(request, uow, container, {"code": code, "state": state, "error": error,
                                                   "error_description": error_description})
