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


def page(title: str, message: str, status: int = 200, link: tuple[str, str] | None = None) -> HTMLResponse:
    """`link`: (url, text), a link shown after the message."""
    more = f"<p><a href='{html.escape(link[0])}'>{html.escape(link[1])}</a></p>" if link else ""
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>{more}</body></html>")
    return HTMLResponse(body, status_code=status)


def try_again_page(outcome: consent.ConsentOutcome) -> HTMLResponse:
    """Microsoft did not answer: nothing is final and nothing was sent to the provider. Microsoft's answer cannot be
    used twice, so reloading this page does not help: the administrator signs in again at the same consent URL."""
    return page("Microsoft did not answer",
                f"{outcome.action_type} for {outcome.enterprise_name} is not completed yet: Microsoft did not answer "
                f"({outcome.message}). Nothing was recorded as failed and your service provider was not told of a "
                f"failure. In a moment, sign in again with the link below (or the link you were given): reloading "
                f"this page cannot complete it, Microsoft's answer is good for one use.",
                503, (outcome.sign_in_again, "Sign in again") if outcome.sign_in_again else None)


async def _handle(request: Request, uow: UnitOfWorkDep, container: ContainerDep, fields: dict[str, str | None]) -> HTMLResponse:
    outcome = await consent.complete_action(
        uow.session, container.connector, container.keyring, state=fields.get("state"), code=fields.get("code"),
        error=fields.get("error"), error_description=fields.get("error_description"),
        callback_url=callback_url(container, request),
    )

    if outcome.delivery_id is None:
        return try_again_page(outcome)
    delivery_id = outcome.delivery_id

    uow.after_commit(lambda: enqueue_delivery(delivery_id), swept=True)  # (a pending delivery: jobs/webhooks' sweep)
    if outcome.succeeded:
        return done_page(outcome.action_type, outcome.enterprise_name)
    return page("Not completed", f"{outcome.action_type} for {outcome.enterprise_name} failed: {outcome.message}")


RETRY_LATER = {503: docs.answer("Microsoft did not answer: nothing is final and nothing was sent to the provider; "
                                "the page links the same sign-in, to be opened again in a moment", docs.HTML_PAGE,
                                media="text/html")}


@router.post("/handleResponse", response_class=HTMLResponse, summary="Microsoft's form_post answer",
             description="Where Microsoft posts the administrator's sign-in/consent answer (`code`, `state` "
             "or `error`, `error_description`); answers an HTML page saying what it achieved. The outcome "
             "goes to the provider's redirectUrl (a durable webhook).",
             responses=docs.ok(docs.HTML_PAGE, "What the answer achieved (or why it did not complete)",
                               media="text/html") | RETRY_LATER)
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
                              media="text/html") | RETRY_LATER)
async def handle_response_get(
    request: Request, uow: UnitOfWorkDep, container: ContainerDep, code: str | None = None, state: str | None = None,
    error: str | None = None, error_description: str | None = None,
) -> HTMLResponse:
    return await _handle(request, uow, container, {"code": code, "state": state, "error": error,
                                                   "error_description": error_description})
