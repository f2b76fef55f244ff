"""APIO core authentication (vendor-notes 2.2): /api/v01/auth/login, /access_token, /logout; /2fa and
/reset-password, which teamsvoice does not implement, answer 501 (code 1501)."""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from teamsvoice.api.routing import APIRouter
from teamsvoice.api.docs import body_example
from teamsvoice.api import throttling
from teamsvoice.api.deps import ContainerDep, UnitOfWorkDep
from teamsvoice.api.fusion import docs
from teamsvoice.api.fusion.deps import bearer_token
from teamsvoice.api.fusion.subscription_extras import not_implemented
from teamsvoice.domain.fusion import auth
from teamsvoice.domain.security.throttle import login_attempt

router = APIRouter(prefix="/api/v01/auth", tags=["Fusion: authentication"])


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    username: StrictStr = Field(min_length=1, max_length=200)
    password: StrictStr = Field(min_length=1, max_length=200)
    proxy: StrictStr | None = Field(default=None, max_length=70)


@router.post("/login", summary="Log in: answers an access token (minutes) and a refresh token (days)",
    description="Vendor-notes 2.2: a Fusion login's username and password; answers an access token (15 "
    "minutes) and a refresh token (days). Repeated failures are throttled (429 with Retry-After).",
    responses=docs.ok(
        docs.Tokens, "The tokens", example={"access_token": "eyJhbGciOi...", "refresh_token": "eyJhbGciOj..."}
    ),
    openapi_extra=body_example({"username": "jane", "password": "A-long-passw0rd"}),
)
async def login(request: Request, body: LoginBody, uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    async with login_attempt(container.sessions, uow.session, throttling.policy(container.settings), family="fusion",
                             account=body.username, address=throttling.client_address(request)):
        tokens = await auth.login(uow.session, container.keyring, body.username, body.password)
    return {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}


@router.get(
    "/access_token", summary="A new access token, with the refresh token as Bearer",
    description="A new refresh token is included only when the one sent is about to expire (less than a day left).",
    responses=docs.ok(docs.AccessToken, "A new access token"),
)
async def access_token(request: Request, uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    tokens = await auth.refresh(uow.session, container.keyring, bearer_token(request))
    body: dict[str, Any] = {"access_token": tokens.access_token}
    if tokens.refresh_token:
        body["refresh_token"] = tokens.refresh_token
    return body


@router.get(
    "/logout", summary="End the session of the Bearer token (access or refresh): both stop working",
    description="Without an Authorization header there is no session to end: 200 `{}` (the portal logs out this "
    "way once its tokens are gone). A token that is sent must be valid (else 401).",
    responses=docs.ok(docs.Empty, "The session ended (or there was none)", example={}),
    openapi_extra=docs.TOKEN_OPTIONAL,
)
async def logout(request: Request, uow: UnitOfWorkDep, container: ContainerDep) -> dict[str, Any]:
    if "authorization" not in request.headers:
        return {}
    await auth.logout(uow.session, container.keyring, bearer_token(request))
    return {}


@router.post("/2fa", summary="Second factor of a login: not implemented (501)", status_code=501,
    responses=docs.NOT_IMPLEMENTED,
    description="Vendor-notes 2.2: `{2fa_payload, code}` after a login that asked for a second factor. teamsvoice's "
    "logins never ask for one (login answers the tokens): always 501 (code 1501).",
)
async def second_factor() -> JSONResponse:
    return not_implemented("Two-factor authentication")


@router.post("/reset-password", summary="Ask for a password reset: not implemented (501)", status_code=501,
    responses=docs.NOT_IMPLEMENTED,
    description="Vendor-notes 2.2. teamsvoice sends no reset mail: an administrator above the login sets a new "
    "password. Always 501 (code 1501).",
)
async def reset_password() -> JSONResponse:
    return not_implemented("Password reset")


@router.put("/reset-password/{token}", summary="Set a password with a reset token: not implemented (501)",
    status_code=501, responses=docs.NOT_IMPLEMENTED,
    description="Vendor-notes 2.2: `{password}`. teamsvoice issues no reset tokens: always 501 (code 1501).",
)
async def reset_password_with_token(token: str) -> JSONResponse:
    return not_implemented("Password reset")
