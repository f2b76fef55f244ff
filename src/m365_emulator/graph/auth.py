"""Bearer-token checks for Graph: signature, expiry, audience, then permission (scp or roles)."""

from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, Request

from ..catalog import GRAPH_APP_ID, GRAPH_RESOURCE
from ..context import EmulatorDep
from .errors import GraphError


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    app_id: str
    object_id: str
    permissions: frozenset[str]
    app_only: bool


def bearer_claims(request: Request, audiences: list[str], emulator: EmulatorDep) -> dict:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        claims = emulator.keys.verify(header[7:].strip(), audiences)
    except jwt.ExpiredSignatureError as exc:
        raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.") from exc
    except jwt.InvalidAudienceError as exc:
        raise GraphError(401, "InvalidAuthenticationToken", "Invalid audience.") from exc
    except jwt.InvalidTokenError as exc:
        raise GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.") from exc
    if claims["iss"] != emulator.issuer(claims["tid"]):
        raise GraphError(401, "InvalidAuthenticationToken", "Invalid issuer.")
    with emulator.store.transaction() as tx:
        if tx.get("tenant", claims["tid"]) is None:
            raise GraphError(401, "InvalidAuthenticationToken", "The tenant of the token no longer exists.")
    return claims


def caller_from_claims(claims: dict) -> Caller:
    app_only = claims.get("idtyp") == "app" or "scp" not in claims
    permissions = frozenset(claims.get("roles", [])) if app_only else frozenset(claims.get("scp", "").split())
    return Caller(claims["tid"], claims.get("appid", ""), claims.get("oid", ""), permissions, app_only)


# A `$batch`'s requests carry the batch's Authorization header, which the batch's own `graph_caller` checked when the
# batch arrived: each request's `graph_caller` answers that caller instead of checking the same token again.
BATCH_CALLER = "m365_emulator.batch_caller"


async def graph_caller(request: Request, emulator: EmulatorDep) -> Caller:
    """On the event loop, not in the thread pool: the token is mostly remembered (`SigningKey.verify`) and the
    tenant's check one indexed read."""
    checked = request.scope.get(BATCH_CALLER)
    if isinstance(checked, Caller):
        return checked
    return caller_from_claims(bearer_claims(request, [GRAPH_RESOURCE, GRAPH_APP_ID], emulator))


GraphCaller = Annotated[Caller, Depends(graph_caller)]


def require(caller: Caller, *any_of: str) -> None:
    """Graph accepts any one of several permissions per operation; ReadWrite implies Read."""
    accepted = set(any_of) | {name.replace(".Read.", ".ReadWrite.") for name in any_of}
    if not caller.permissions & accepted:
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
