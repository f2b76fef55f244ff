"""The authorize endpoint and its interactive steps: sign-in, consent, code delivery."""

import secrets
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import clock
from ..context import Emulator, EmulatorDep
from ..directory import is_global_admin, user_by_upn, verify_secret
from ..store import Document, Transaction
from . import pages
from .grants import expand_default, granted_delegated, is_granted, record_consent, registered_permissions
from .requests import MULTI_TENANT_SEGMENTS, form_data, tenant_for_segment
from .scopes import RESOURCES, ScopeError, needs_admin_consent, parse_scopes
from .tokens import id_token, token_hash

router = APIRouter()

_SUPPORTED_RESPONSE_TYPES = ({"code"}, {"code", "id_token"})
_SIGN_IN_LIFETIME = 3600
_OIDC_DESCRIPTIONS = {
    "openid": "openid (Sign you in)",
    "profile": "profile (View your basic profile)",
    "email": "email (View your email address)",
    "offline_access": "offline_access (Maintain access to data you have given it access to)",
}
FormData = Annotated[dict[str, str], Depends(form_data)]


def _html(content: str) -> HTMLResponse:
    return HTMLResponse(content, headers={"Cache-Control": "no-store"})


def _error_page(code: int, message: str, status_code: int = 400) -> HTMLResponse:
    return HTMLResponse(
        pages.error_page("Sorry, but we're having trouble signing you in.", f"AADSTS{code}: {message}"),
        status_code=status_code,
    )


def _redirect_with(session: Document, params: dict[str, str]) -> Response:
    """Deliver a result (code or error) to the client's redirect URI per the response mode."""
    if session.get("state") is not None:
        params = {**params, "state": session["state"]}
    redirect_uri = session["redirectUri"]
    mode = session["responseMode"]
    if mode == "form_post":
        return _html(pages.form_post_page(redirect_uri, params))
    if mode == "fragment":
        return RedirectResponse(f"{redirect_uri}#{urlencode(params)}", status_code=302)
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


def _redirect_error(session: Document, error: str, code: int, message: str, **extra: str) -> Response:
    return _redirect_with(session, {"error": error, "error_description": f"AADSTS{code}: {message}", **extra})


@router.get("/{tenant}/oauth2/v2.0/authorize")
def authorize(tenant: str, request: Request, emulator: EmulatorDep) -> Response:
    query = request.query_params
    client_id = query.get("client_id", "")
    with emulator.store.transaction() as tx:
        resolved = tenant_for_segment(tx, tenant)
        if resolved is None and tenant.lower() not in MULTI_TENANT_SEGMENTS:
            return _error_page(
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud.",
            )
        if not client_id:
            return _error_page(900144, "The request body must contain the following parameter: 'client_id'.")
        app = tx.get("app", client_id)
        if app is None:
            return _error_page(
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{resolved['displayName'] if resolved else tenant}'. This can happen if the application has "
                "not been installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You may have sent your authentication request to the wrong tenant.",
            )
        redirect_uri = query.get("redirect_uri") or (app["redirectUris"][0] if app["redirectUris"] else "")
        if redirect_uri not in app["redirectUris"]:
            return _error_page(
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client_id}'. Make sure the redirect URI sent in the request "
                "matches one added to your application in the Azure portal. Navigate to "
                "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
            )
        response_types = set(query.get("response_type", "").split())
        session: Document = {
            "id": secrets.token_urlsafe(24),
            "tenantSegment": tenant,
            "clientId": client_id,
            "redirectUri": redirect_uri,
            "responseTypes": sorted(response_types),
            "responseMode": query.get("response_mode") or ("fragment" if "id_token" in response_types else "query"),
            "scope": query.get("scope", ""),
            "state": query.get("state"),
            "nonce": query.get("nonce"),
            "prompt": query.get("prompt"),
            "codeChallenge": query.get("code_challenge"),
            "codeChallengeMethod": query.get("code_challenge_method") or "plain",
            "loginHint": query.get("login_hint", ""),
            "sessionState": str(uuid.uuid4()),
            "userId": None,
            "expiresAt": clock.now() + _SIGN_IN_LIFETIME,
        }
        if session["responseMode"] not in ("query", "fragment", "form_post"):
            session["responseMode"] = "query"
            return _redirect_error(
                session, "invalid_request", 900144, "The response_mode parameter must be query, fragment or form_post."
            )
        if response_types not in _SUPPORTED_RESPONSE_TYPES:
            return _redirect_error(
                session,
                "unsupported_response_type",
                70005,
                f"response_type '{query.get('response_type', '')}' is not supported for this endpoint.",
            )
        if "id_token" in response_types and session["responseMode"] == "query":
            return _redirect_error(
                session,
                "invalid_request",
                700055,
                "The response_mode 'query' is not allowed when response_type contains id_token. Use "
                "form_post or fragment.",
            )
        try:
            scope_request = parse_scopes(session["scope"])
        except ScopeError as exc:
            return _redirect_error(
                session,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The provided value for the input "
                f"parameter 'scope' is not valid. The scope {exc.scope} is not valid.",
            )
        if not session["scope"].strip():
            return _redirect_error(
                session, "invalid_request", 900144, "The request body must contain the following parameter: 'scope'."
            )
        if "openid" not in scope_request.oidc and "id_token" in response_types:
            return _redirect_error(
                session, "invalid_request", 90014, "The 'openid' scope is required when requesting an id_token."
            )
        if session["codeChallenge"] and session["codeChallengeMethod"] not in ("S256", "plain"):
            return _redirect_error(
                session, "invalid_request", 501491, "Invalid code_challenge_method. Supported values: S256, plain."
            )
        if session["prompt"] == "none":
            # The emulator keeps no browser session, so silent sign-in always needs interaction.
            return _redirect_error(
                session,
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            )
        tx.put("auth_session", session["id"], session)
        return _html(
            pages.sign_in_page(_action(emulator, tenant, "login"), session["id"], session["loginHint"], None, app["displayName"])
        )


def _action(emulator: Emulator, tenant: str, step: str) -> str:
    return f"{emulator.settings.base_url}/{tenant}/oauth2/v2.0/authorize/{step}"


def _load_session(tx: Transaction, session_id: str) -> Document | None:
    session = tx.get("auth_session", session_id) if session_id else None
    if session is None or session["expiresAt"] < clock.now():
        return None
    return session


_SESSION_GONE = (
    90014,
    "The sign-in request is no longer valid (it expired or was already completed). Start the sign-in again.",
)


@router.post("/{tenant}/oauth2/v2.0/authorize/login")
def sign_in(tenant: str, form: FormData, emulator: EmulatorDep) -> Response:
    with emulator.store.transaction() as tx:
        session = _load_session(tx, form.get("tx", ""))
        if session is None:
            return _error_page(*_SESSION_GONE)
        app = tx.get("app", session["clientId"])
        if app is None:
            return _error_page(*_SESSION_GONE)
        username = form.get("username", "").strip()
        user = user_by_upn(tx, username) if username else None
        password_hash = user.get("_passwordHash") if user else None
        if user is None or not password_hash or not verify_secret(form.get("password", ""), password_hash):
            return _html(
                pages.sign_in_page(
                    _action(emulator, tenant, "login"),
                    session["id"],
                    username,
                    "AADSTS50126: Error validating credentials due to invalid username or password.",
                    app["displayName"],
                )
            )
        if not user["accountEnabled"]:
            return _error_page(50057, "The user account is disabled.", status_code=200)
        path_tenant = tenant_for_segment(tx, session["tenantSegment"])
        if path_tenant is not None and path_tenant["id"] != user["_tenantId"]:
            return _error_page(
                50020,
                f"User account '{user['userPrincipalName']}' from identity provider "
                f"'{emulator.issuer(user['_tenantId'])}' does not exist in tenant '{path_tenant['displayName']}' "
                f"and cannot access the application '{app['appId']}'({app['displayName']}) in that tenant. The "
                "account needs to be added as an external user in the tenant first. Sign out and sign in again "
                "with a different Microsoft Entra user account.",
                status_code=200,
            )
        session["userId"] = user["id"]
        tx.put("auth_session", session["id"], session)
        wanted = expand_default(app, parse_scopes(session["scope"]))
        granted = granted_delegated(tx, user["_tenantId"], app["appId"], user["id"])
        if session["prompt"] != "consent" and is_granted(granted, wanted):
            return _complete(emulator, tx, session, user)
        needs_admin = any(
            needs_admin_consent(resource_id, scope) for resource_id, scopes in wanted.items() for scope in scopes
        )
        admin = is_global_admin(tx, user)
        if needs_admin and not admin:
            return _html(
                pages.error_page(
                    "Need admin approval",
                    f"AADSTS90094: {app['displayName']} needs permission to access resources in your "
                    "organization that only an admin can grant. Please ask an admin to grant permission to this "
                    "app before you can use it.",
                )
            )
        oidc = parse_scopes(session["scope"]).oidc
        application_permissions = (
            _permission_names(registered_permissions(app["applicationPermissions"]).by_resource) if admin else []
        )
        return _html(
            pages.consent_page(
                _action(emulator, tenant, "consent"),
                session["id"],
                app["displayName"],
                user["userPrincipalName"],
                [_OIDC_DESCRIPTIONS[name] for name in sorted(oidc)] + _permission_names(wanted),
                application_permissions,
                for_organization=admin,
            )
        )


def _permission_names(by_resource: dict[str, list[str]]) -> list[str]:
    return [
        f"{scope} ({RESOURCES[resource_id].display_name})"
        for resource_id, scopes in by_resource.items()
        for scope in scopes
    ]


@router.post("/{tenant}/oauth2/v2.0/authorize/consent")
def consent(tenant: str, form: FormData, emulator: EmulatorDep) -> Response:
    with emulator.store.transaction() as tx:
        session = _load_session(tx, form.get("tx", ""))
        if session is None or session["userId"] is None:
            return _error_page(*_SESSION_GONE)
        app = tx.get("app", session["clientId"])
        user = tx.get("user", session["userId"])
        if app is None or user is None:
            return _error_page(*_SESSION_GONE)
        if form.get("consent") != "accept":
            tx.delete("auth_session", session["id"])
            return _redirect_error(
                session, "access_denied", 65004, "User declined to consent to access the app.", error_subcode="cancel"
            )
        wanted = expand_default(app, parse_scopes(session["scope"]))
        admin = is_global_admin(tx, user)
        if not admin and any(needs_admin_consent(r, s) for r, scopes in wanted.items() for s in scopes):
            return _error_page(90094, "Admin consent is required for the permissions requested by this app.", 200)
        record_consent(tx, user["_tenantId"], app, user["id"], wanted, admin=admin)
        return _complete(emulator, tx, session, user)


def _complete(emulator: Emulator, tx: Transaction, session: Document, user: Document) -> Response:
    """Issue the single-use authorization code and hand it to the client."""
    code = secrets.token_urlsafe(48)
    tenant_id = user["_tenantId"]
    tx.put(
        "auth_code",
        token_hash(code),
        {
            "clientId": session["clientId"],
            "redirectUri": session["redirectUri"],
            "scope": session["scope"],
            "nonce": session["nonce"],
            "codeChallenge": session["codeChallenge"],
            "codeChallengeMethod": session["codeChallengeMethod"],
            "userId": user["id"],
            "tenantId": tenant_id,
            "expiresAt": clock.now() + emulator.settings.auth_code_lifetime_seconds,
            "redeemed": False,
        },
        tenant_id,
    )
    tx.delete("auth_session", session["id"])
    params: dict[str, Any] = {"code": code}
    if "id_token" in session["responseTypes"]:
        params["id_token"] = id_token(emulator, tenant_id, session["clientId"], user, session["nonce"])
    params["session_state"] = session["sessionState"]
    return _redirect_with(session, params)
