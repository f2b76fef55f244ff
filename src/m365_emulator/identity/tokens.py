"""Token minting: id tokens, access tokens (delegated and app-only), rotating refresh tokens."""

import base64
import hashlib
import json
import random
import secrets
import uuid
from typing import Any

from .. import clock
from ..context import Emulator
from ..store import Document, Transaction
from .scopes import Resource

REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600


def token_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def client_info(user_id: str, tenant_id: str) -> str:
    """MSAL keys its account cache on this: base64url JSON of the user's oid and tenant id."""
    raw = json.dumps({"uid": user_id, "utid": tenant_id}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _lifetime() -> int:
    # Entra gives access tokens a randomised lifetime; clients must not hard-code 3600.
    return random.randint(3599, 4499)


def _time_claims(lifetime: int) -> dict[str, int]:
    now = int(clock.now())
    return {"iat": now, "nbf": now, "exp": now + lifetime}


def pairwise_subject(user_id: str, client_id: str) -> str:
    digest = hashlib.sha256(f"{user_id}|{client_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def id_token(emulator: Emulator, tenant_id: str, client_id: str, user: Document, nonce: str | None) -> str:
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": emulator.issuer(tenant_id),
        **_time_claims(3600),
        "name": user["displayName"],
        "oid": user["id"],
        "preferred_username": user["userPrincipalName"],
        "sub": pairwise_subject(user["id"], client_id),
        "tid": tenant_id,
        "uti": secrets.token_urlsafe(16),
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return emulator.keys.sign(claims)


def delegated_token_response(
    emulator: Emulator,
    tx: Transaction,
    *,
    tenant_id: str,
    client_id: str,
    user: Document,
    resource: Resource,
    scopes: list[str],
    oidc: set[str],
    nonce: str | None,
    with_client_info: bool,
) -> dict[str, Any]:
    lifetime = _lifetime()
    access = emulator.keys.sign(
        {
            "aud": resource.audience,
            "iss": emulator.issuer(tenant_id),
            **_time_claims(lifetime),
            "appid": client_id,
            "azp": client_id,
            "appidacr": "1",
            "idtyp": "user",
            "name": user["displayName"],
            "oid": user["id"],
            "preferred_username": user["userPrincipalName"],
            "scp": " ".join(scopes),
            "sub": pairwise_subject(user["id"], resource.app_id),
            "tid": tenant_id,
            "upn": user["userPrincipalName"],
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
    )
    response: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join([resource.qualify(scope) for scope in scopes] + sorted(oidc - {"offline_access"})),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access,
    }
    if "offline_access" in oidc:
        response["refresh_token"] = issue_refresh_token(tx, tenant_id, client_id, user["id"], oidc)
    if "openid" in oidc:
        response["id_token"] = id_token(emulator, tenant_id, client_id, user, nonce)
    if with_client_info:
        response["client_info"] = client_info(user["id"], tenant_id)
    return response


def app_token_response(
    emulator: Emulator, tenant_id: str, client_id: str, principal_id: str, resource: Resource, roles: list[str]
) -> dict[str, Any]:
    lifetime = _lifetime()
    claims: dict[str, Any] = {
        "aud": resource.audience,
        "iss": emulator.issuer(tenant_id),
        **_time_claims(lifetime),
        "appid": client_id,
        "azp": client_id,
        "appidacr": "1",
        "idtyp": "app",
        "oid": principal_id,
        "sub": principal_id,
        "tid": tenant_id,
        "uti": secrets.token_urlsafe(16),
        "ver": "2.0",
    }
    if roles:
        claims["roles"] = roles
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": emulator.keys.sign(claims),
    }


def issue_refresh_token(tx: Transaction, tenant_id: str, client_id: str, user_id: str, oidc: set[str]) -> str:
    token = f"1.{uuid.uuid4().hex}.{secrets.token_urlsafe(48)}"
    tx.put(
        "refresh_token",
        token_hash(token),
        {
            "clientId": client_id,
            "tenantId": tenant_id,
            "userId": user_id,
            "oidc": sorted(oidc),
            "expiresAt": clock.now() + REFRESH_TOKEN_LIFETIME,
        },
        tenant_id,
    )
    return token
