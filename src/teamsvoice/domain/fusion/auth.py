"""APIO-style authentication for the Fusion API: login, access-token refresh, logout.

Tokens are HS256 JWTs signed with a key derived from the master key. Nothing secret is stored: a
session row (named by the tokens' `sid`) holds the SHA-256 of the current refresh token's `jti`, its
expiry and a revoked flag. Every request checks the session, so logout (or disabling the login) stops
access tokens at once, not only when they expire.
"""

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import AuthenticationFailed
from teamsvoice.core.ids import new_uuid
from teamsvoice.core.limits import name_problem
from teamsvoice.core.security import Keyring, token_digest, verify_secret_bounded
from teamsvoice.domain.fusion import repository_accounts as logins
from teamsvoice.domain.fusion.models import FusionSession, FusionTenant, FusionUser
from teamsvoice.domain.fusion.principal import FusionPrincipal

ACCESS_TTL_SECONDS = 15 * 60
REFRESH_TTL_SECONDS = 7 * 24 * 3600
# A new refresh token is issued only once the current one has less than this left (APIO's behaviour).
REFRESH_RENEW_BELOW_SECONDS = 24 * 3600
ISSUER = "teamsvoice-fusion"


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str | None


def _key(keyring: Keyring) -> bytes:
    return hmac.new(keyring.master, b"fusion-jwt-signing", hashlib.sha256).digest()


def _encode(keyring: Keyring, claims: dict) -> str:
    return jwt.encode(claims, _key(keyring), algorithm="HS256")


def _decode(keyring: Keyring, token: str, kind: str) -> dict:
    try:
        claims = jwt.decode(token, _key(keyring), algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "sid", "sub", "typ"]})
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed(f"The {kind} token has expired") from exc
    except jwt.PyJWTError as exc:
        # In the family's words, not the JWT library's ("Not enough segments" tells a Fusion script nothing).
        raise AuthenticationFailed(f"Invalid {kind} token: not a token issued by this API, or altered; log in again "
                                   f"(POST /api/v01/auth/login)") from exc
    if claims.get("typ") != kind:
        raise AuthenticationFailed(f"Invalid {kind} token (a {claims.get('typ')} token was sent)")
    return claims


def _access_token(keyring: Keyring, user: FusionUser, session: FusionSession) -> str:
    now = int(time.time())
    return _encode(keyring, {"iss": ISSUER, "sub": str(user.id), "sid": session.key, "typ": "access",
                             "lvl": user.level, "iat": now, "exp": now + ACCESS_TTL_SECONDS})


def _refresh_token(keyring: Keyring, user: FusionUser, session: FusionSession) -> str:
    now, jti = int(time.time()), uuid.uuid4().hex
    session.refresh_jti_digest = token_digest(jti)
    session.expires_at = utcnow() + timedelta(seconds=REFRESH_TTL_SECONDS)
    return _encode(keyring, {"iss": ISSUER, "sub": str(user.id), "sid": session.key, "typ": "refresh",
                             "jti": jti, "iat": now, "exp": now + REFRESH_TTL_SECONDS})


async def login(session: AsyncSession, keyring: Keyring, username: str, password: str) -> IssuedTokens:
    """A username no login can have (a control character: `accounts.check_username` refuses them) is not looked
    up: it fails as an unknown one does (PostgreSQL refused a NUL in the lookup, a 400 naming nothing)."""
    user = await logins.login_by_username(session, username) if name_problem(username) is None else None
    matched = await verify_secret_bounded(password, user.password_hash if user is not None else None)
    if user is None or not user.active or not matched:
        raise AuthenticationFailed("Invalid username or password")
    row = FusionSession(key=new_uuid(), user_id=user.id, refresh_jti_digest="", expires_at=utcnow())
    session.add(row)
    refresh = _refresh_token(keyring, user, row)
    await session.flush()
    return IssuedTokens(_access_token(keyring, user, row), refresh)


async def _live_session(session: AsyncSession, claims: dict) -> tuple[FusionSession, FusionUser]:
    return _require_live(*await logins.session_and_login(session, claims["sid"]), claims)


def _require_live(row: FusionSession | None, user: FusionUser | None, claims: dict) -> tuple[FusionSession, FusionUser]:
    if row is None or row.revoked or row.expires_at <= utcnow():
        raise AuthenticationFailed("The session has ended; log in again")
    if user is None or not user.active or str(user.id) != claims["sub"]:
        raise AuthenticationFailed("The session has ended; log in again")
    return row, user


async def refresh(session: AsyncSession, keyring: Keyring, refresh_token: str) -> IssuedTokens:
    claims = _decode(keyring, refresh_token, "refresh")
    row, user = await _live_session(session, claims)
    if not hmac.compare_digest(row.refresh_jti_digest, token_digest(str(claims.get("jti", "")))):
        raise AuthenticationFailed("This refresh token was replaced by a newer one; use the latest or log in again")
    renewed = None
    if int(claims["exp"]) - time.time() < REFRESH_RENEW_BELOW_SECONDS:
        renewed = _refresh_token(keyring, user, row)
    return IssuedTokens(_access_token(keyring, user, row), renewed)


async def logout(session: AsyncSession, keyring: Keyring, token: str) -> None:
    """Accepts the access or the refresh token of the session to end."""
    try:
        claims = _decode(keyring, token, "access")
    except AuthenticationFailed:
        claims = _decode(keyring, token, "refresh")
    row, _user = await _live_session(session, claims)
    row.revoked = True


async def principal_for_access_token(session: AsyncSession, keyring: Keyring, token: str) -> FusionPrincipal:
    claims = _decode(keyring, token, "access")
    # One round trip for the session, its user and a reseller-level user's scope: every request passes here.
    row, user, below = await logins.session_login_and_scope(session, claims["sid"])
    live, user = _require_live(row, user, claims)
    scope: frozenset[int] = frozenset()
    tenant_uuid = None
    if user.level == "tenant":
        tenant = await session.get(FusionTenant, user.fusion_tenant_id)
        if tenant is None:
            raise AuthenticationFailed("The login's tenant no longer exists")
        tenant_uuid = tenant.uuid
    elif user.reseller_id is not None:
        scope = below | {user.reseller_id}
    return FusionPrincipal(
        user_id=user.id, username=user.username, level=user.level, permissions=frozenset(user.permissions or []),
        reseller_id=user.reseller_id, fusion_tenant_id=user.fusion_tenant_id, tenant_uuid=tenant_uuid,
        reseller_scope=scope, session_key=claims["sid"],
        expires_at=min(live.expires_at, datetime.fromtimestamp(int(claims["exp"]), UTC).replace(tzinfo=None)),
    )
