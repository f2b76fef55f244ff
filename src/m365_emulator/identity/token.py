"""The token endpoint: authorization_code, refresh_token and client_credentials grants."""

import base64
import hashlib
import hmac
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from .. import clock
from ..context import Emulator, EmulatorDep
from ..directory import verify_secret
from ..store import Document, Transaction
from .errors import OAuthError, app_not_found, oauth_error_response, tenant_not_found
from .grants import expand_default, granted_delegated, is_granted, service_principal
from .requests import MULTI_TENANT_SEGMENTS, form_data, tenant_for_segment
from .scopes import RESOURCES, ScopeError, ScopeRequest, parse_scopes, resource_for
from .tokens import app_token_response, delegated_token_response, token_hash

router = APIRouter()
FormData = Annotated[dict[str, str], Depends(form_data)]


@router.post("/{tenant}/oauth2/v2.0/token")
def token(tenant: str, request: Request, form: FormData, emulator: EmulatorDep) -> Response:
    try:
        with emulator.store.transaction() as tx:
            body = _grant(emulator, tx, tenant, request.headers.get("authorization", ""), form)
    except OAuthError as exc:
        return oauth_error_response(exc)
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _grant(emulator: Emulator, tx: Transaction, tenant: str, authorization: str, form: dict[str, str]) -> dict[str, Any]:
    path_tenant = tenant_for_segment(tx, tenant)
    if path_tenant is None and tenant.lower() not in MULTI_TENANT_SEGMENTS:
        raise tenant_not_found(tenant)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _missing("grant_type")
    app = _authenticate_client(tx, tenant, authorization, form)
    if grant_type == "authorization_code":
        return _authorization_code(emulator, tx, app, path_tenant, form)
    if grant_type == "refresh_token":
        return _refresh_token(emulator, tx, app, path_tenant, form)
    if grant_type == "client_credentials":
        return _client_credentials(emulator, tx, app, tenant, path_tenant, form)
    raise OAuthError("unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.")


def _missing(parameter: str) -> OAuthError:
    return OAuthError(
        "invalid_request", 900144, f"The request body must contain the following parameter: '{parameter}'."
    )


def _authenticate_client(tx: Transaction, tenant: str, authorization: str, form: dict[str, str]) -> Document:
    client_id, secret = form.get("client_id", ""), form.get("client_secret")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except ValueError as exc:
            raise OAuthError("invalid_client", 7000215, "Invalid client secret provided.", 401) from exc
        basic_id, _, basic_secret = decoded.partition(":")
        client_id, secret = unquote(basic_id), unquote(basic_secret)
    if not client_id:
        raise _missing("client_id")
    app = tx.get("app", client_id)
    if app is None:
        raise app_not_found(client_id, tenant)
    if not secret:
        raise OAuthError(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            401,
        )
    if not verify_secret(secret, app["secretHash"]):
        raise OAuthError(
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{client_id}'.",
            401,
        )
    return app


def _single_resource(request: ScopeRequest) -> tuple[str, list[str]] | None:
    if len(request.by_resource) > 1:
        raise OAuthError(
            "invalid_request",
            28000,
            "Provided value for the input parameter scope is not valid because it contains more than one resource. "
            f"Scope {' '.join(f'{RESOURCES[r].audience}/{s}' for r, ss in request.by_resource.items() for s in ss)} "
            "is not valid.",
        )
    return next(iter(request.by_resource.items()), None)


def _parse(raw: str) -> ScopeRequest:
    try:
        return parse_scopes(raw)
    except ScopeError as exc:
        raise OAuthError(
            "invalid_scope", 70011, f"The provided value for the input parameter 'scope' is not valid. The scope "
            f"{exc.scope} is not valid."
        ) from exc


def _check_pkce(code: Document, verifier: str | None) -> None:
    challenge = code["codeChallenge"]
    if not challenge:
        return
    if code["codeChallengeMethod"] == "S256" and verifier:
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    else:
        computed = verifier or ""
    if not verifier or not hmac.compare_digest(computed, challenge):
        raise OAuthError(
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )


def _authorization_code(
    emulator: Emulator, tx: Transaction, app: Document, path_tenant: Document | None, form: dict[str, str]
) -> dict[str, Any]:
    raw_code = form.get("code")
    if not raw_code:
        raise _missing("code")
    key = token_hash(raw_code)
    code = tx.get("auth_code", key)
    if code is None or code["clientId"] != app["appId"]:
        raise OAuthError("invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
    if code["redeemed"]:
        raise OAuthError(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing "
            "refresh token.",
        )
    if code["expiresAt"] < clock.now():
        raise OAuthError(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new "
            "interactive authorization request for this user and resource.",
        )
    if path_tenant is not None and path_tenant["id"] != code["tenantId"]:
        raise OAuthError("invalid_grant", 70000, "The authorization code was issued for a different tenant.")
    if form.get("redirect_uri") != code["redirectUri"]:
        raise OAuthError(
            "invalid_grant",
            70000,
            f"The provided value for the input parameter 'redirect_uri' is not valid. The redirect_uri "
            f"'{form.get('redirect_uri', '')}' does not match the redirect URI used in the authorization request.",
        )
    _check_pkce(code, form.get("code_verifier"))
    # Single use: keep the record (marked) so a replay gets Entra's "already redeemed" answer.
    code["redeemed"] = True
    tx.put("auth_code", key, code, code["tenantId"])
    requested = _parse(form.get("scope") or code["scope"])
    authorized = _parse(code["scope"])
    return _delegated(emulator, tx, app, code["tenantId"], code["userId"], requested, authorized.oidc, code["nonce"], form)


def _delegated(
    emulator: Emulator,
    tx: Transaction,
    app: Document,
    tenant_id: str,
    user_id: str,
    requested: ScopeRequest,
    oidc: set[str],
    nonce: str | None,
    form: dict[str, str],
) -> dict[str, Any]:
    user = tx.get("user", user_id)
    if user is None or not user["accountEnabled"]:
        raise OAuthError("invalid_grant", 50057, "The user account is disabled or has been deleted.")
    wanted = expand_default(app, requested)
    _single_resource(requested)
    resource_id, _ = next(iter(wanted.items()))
    granted = granted_delegated(tx, tenant_id, app["appId"], user_id)
    if not is_granted(granted, {resource_id: wanted[resource_id]}):
        raise OAuthError(
            "invalid_grant",
            65001,
            f"The user or administrator has not consented to use the application with ID '{app['appId']}' named "
            f"'{app['displayName']}'. Send an interactive authorization request for this user and resource.",
        )
    return delegated_token_response(
        emulator,
        tx,
        tenant_id=tenant_id,
        client_id=app["appId"],
        user=user,
        resource=RESOURCES[resource_id],
        scopes=granted[resource_id],
        oidc=oidc | requested.oidc,
        nonce=nonce,
        with_client_info=form.get("client_info") == "1",
    )


def _refresh_token(
    emulator: Emulator, tx: Transaction, app: Document, path_tenant: Document | None, form: dict[str, str]
) -> dict[str, Any]:
    raw = form.get("refresh_token")
    if not raw:
        raise _missing("refresh_token")
    key = token_hash(raw)
    stored = tx.get("refresh_token", key)
    if stored is None or stored["clientId"] != app["appId"]:
        raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
    if stored["expiresAt"] < clock.now():
        raise OAuthError(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new "
            "interactive authorization request for this user and resource.",
        )
    if path_tenant is not None and path_tenant["id"] != stored["tenantId"]:
        raise OAuthError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
    # Rotation: each refresh token works once; the response carries its successor.
    tx.delete("refresh_token", key)
    requested = _parse(form.get("scope", "openid profile offline_access"))
    return _delegated(
        emulator, tx, app, stored["tenantId"], stored["userId"], requested, set(stored["oidc"]), None, form
    )


def _client_credentials(
    emulator: Emulator,
    tx: Transaction,
    app: Document,
    tenant: str,
    path_tenant: Document | None,
    form: dict[str, str],
) -> dict[str, Any]:
    if path_tenant is None:
        raise OAuthError(
            "invalid_request",
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        )
    scopes = form.get("scope", "").split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise OAuthError(
            "invalid_scope",
            1002012,
            f"The provided value for scope {form.get('scope', '')} is not valid. Client credential flows must have "
            "a scope value with /.default suffixed to the resource identifier (application ID URI).",
        )
    resource = resource_for(scopes[0][: -len("/.default")])
    if resource is None:
        raise OAuthError(
            "invalid_resource",
            500011,
            f"The resource principal named {scopes[0][: -len('/.default')]} was not found in the tenant named "
            f"{path_tenant['displayName']}. This can happen if the application has not been installed by the "
            "administrator of the tenant or consented to by any user in the tenant.",
        )
    principal = service_principal(tx, path_tenant["id"], app["appId"])
    if principal is None:
        raise app_not_found(app["appId"], tenant)
    return app_token_response(
        emulator, path_tenant["id"], app["appId"], principal["id"], resource, principal["_appRoles"].get(resource.app_id, [])
    )
