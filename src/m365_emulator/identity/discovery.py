"""OIDC discovery document and JWKS, per tenant path segment."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..context import EmulatorDep
from .errors import oauth_error_response, tenant_not_found
from .requests import MULTI_TENANT_SEGMENTS, tenant_for_segment

router = APIRouter()


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
def openid_configuration(tenant: str, emulator: EmulatorDep) -> JSONResponse:
    with emulator.store.transaction() as tx:
        resolved = tenant_for_segment(tx, tenant)
    if resolved is None and tenant.lower() not in MULTI_TENANT_SEGMENTS:
        return oauth_error_response(tenant_not_found(tenant))
    base = emulator.settings.base_url
    # Like Entra: a specific tenant's endpoints use its GUID; common/organizations keep the literal
    # segment and advertise the "{tenantid}" issuer template.
    segment = resolved["id"] if resolved else tenant.lower()
    issuer = emulator.issuer(resolved["id"]) if resolved else f"{base}/{{tenantid}}/v2.0"
    return JSONResponse(
        {
            "token_endpoint": f"{base}/{segment}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "jwks_uri": f"{base}/{segment}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/authorize",
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "preferred_username", "name", "oid", "tid", "ver",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }
    )


@router.get("/{tenant}/discovery/v2.0/keys")
def keys(tenant: str, emulator: EmulatorDep) -> JSONResponse:
    with emulator.store.transaction() as tx:
        known = tenant.lower() in MULTI_TENANT_SEGMENTS or tenant_for_segment(tx, tenant) is not None
    if not known:
        return oauth_error_response(tenant_not_found(tenant))
    return JSONResponse(emulator.keys.jwks())
