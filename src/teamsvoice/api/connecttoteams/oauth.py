"""POST /oauth/token: password and refresh_token grants, client credentials by HTTP Basic (or form)."""

import base64
import binascii
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import JSONResponse

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api import throttling
from teamsvoice.api.connecttoteams import docs
from teamsvoice.api.connecttoteams.errors import oauth_error
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.core.limits import shown
from teamsvoice.domain.orgs import auth
from teamsvoice.domain.security.throttle import login_attempt

router = APIRouter(tags=["ConnecttoTeams: authentication"])
# What a token may do, as the answer names it: every token has both. A request may name either or both (or none);
# a scope outside these is `invalid_scope` (RFC 6749 5.2), not granted in silence.
SCOPES = ("read", "write")


def _client_credentials(request: Request, form_id: str | None, form_secret: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, sep, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, ValueError):  # (not base64, not ASCII, not UTF-8: UnicodeDecodeError is a ValueError)
            return None
        return (client_id, secret) if sep else None
    if form_id and form_secret:
        return form_id, form_secret
    return None


@router.post("/oauth/token", summary="Obtain a bearer token (password or refresh_token grant)",
             description="Spec 001: the API client's id and secret in HTTP Basic (`Authorization: Basic "
             "base64(<client-id>:<client-secret>)`, or `client_id`/`client_secret` form fields) and, with "
             "`grant_type=password`, the API admin's `username` and `password`; with "
             "`grant_type=refresh_token`, the `refresh_token` of an earlier answer. Form-encoded "
             "(application/x-www-form-urlencoded). `scope` is optional: `read`, `write` or both (every token has "
             "both); any other is 400 `invalid_scope`. A client not authenticated is 401 with a Basic challenge.",
             responses=docs.ok(docs.TokenResponse, "The bearer token", example={
                 "access_token": "eyJraWQiOiJlYj...", "token_type": "bearer",
                 "refresh_token": "eyJraWQiOiJlYk...",
                 "expires_in": 3599, "scope": "read write"}),
    openapi_extra=body_example(
        {"grant_type": "password", "username": "myadmin", "password": "<password>"},
        media="application/x-www-form-urlencoded"
    ),
)
async def issue_token(
    request: Request,
    uow: UnitOfWorkDep,
    container: ContainerDep,
    grant_type: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form()] = None,
) -> JSONResponse:
    credentials = _client_credentials(request, client_id, client_secret)
    if credentials is None:
        return oauth_error(401, "unauthorized", "Full authentication is required to access this resource",
                           scheme="Basic")
    unknown = [s for s in (scope or "").split() if s not in SCOPES]
    if unknown:
        return oauth_error(400, "invalid_scope", f"Unknown scope: {shown(' '.join(unknown), 60)}; the scopes are "
                           f"{' and '.join(SCOPES)} (every token has both; leave scope out)")
    settings = container.settings
    ttl = {"access_ttl": settings.access_token_ttl_seconds, "refresh_ttl": settings.refresh_token_ttl_seconds}
    if grant_type == "password":
        if not username or not password:
            return oauth_error(400, "invalid_request", "username and password are required for the password grant")
        async with login_attempt(container.sessions, uow.session, throttling.policy(settings), family="connecttoteams",
                                 account=username, address=throttling.client_address(request)):
            tokens = await auth.password_grant(uow.session, client_id=credentials[0], client_secret=credentials[1],
                                               username=username, password=password, **ttl)
    elif grant_type == "refresh_token":
        if not refresh_token:
            return oauth_error(400, "invalid_request", "refresh_token is required for the refresh_token grant")
        tokens = await auth.refresh_grant(uow.session, client_id=credentials[0], client_secret=credentials[1],
                                          refresh_token=refresh_token, **ttl)
    elif not grant_type:
        return oauth_error(400, "invalid_request", "Missing grant type")
    else:
        return oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    return JSONResponse(
        {"access_token": tokens.access_token, "token_type": "bearer", "refresh_token": tokens.refresh_token,
         "expires_in": tokens.expires_in, "scope": " ".join(SCOPES)},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
