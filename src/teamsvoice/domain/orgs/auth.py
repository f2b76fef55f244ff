"""OAuth password and refresh grants for the ConnecttoTeams API, and bearer-token resolution.

Tokens are opaque random strings; only their SHA-256 digests are stored, so a database leak yields no
usable token. Revoking a client or disabling a user stops its tokens at once.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import AuthenticationFailed
from teamsvoice.core.security import new_token, token_digest, verify_secret_bounded
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.models import ApiClient, OAuthToken, PortalUser
from teamsvoice.domain.orgs.principal import Principal


class InvalidClient(AuthenticationFailed):
    code = "invalid_client"
    about_the_account = False  # anyone could name an account with a made-up client and lock its owner out


class InvalidGrant(AuthenticationFailed):
    code = "invalid_grant"


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


async def _authenticate_client(session: AsyncSession, client_id: str, client_secret: str) -> ApiClient:
    client = await repository.api_client_by_client_id(session, client_id)
    matched = await verify_secret_bounded(client_secret, client.secret_hash if client is not None else None)
    if client is None or not client.active or not matched:
        raise InvalidClient("Bad client credentials")
    return client


def _user_belongs_to_client(user: PortalUser, client: ApiClient) -> bool:
    if client.enterprise_id is not None:
        return user.enterprise_id == client.enterprise_id
    return user.enterprise_id is None and user.reseller_id == client.reseller_id


async def _issue(session: AsyncSession, user: PortalUser, client: ApiClient, access_ttl: int, refresh_ttl: int) -> IssuedTokens:
    now = utcnow()
    access, refresh = new_token(), new_token()
    session.add_all(
        [
            OAuthToken(token_digest=token_digest(access), kind="access", portal_user_id=user.id,
                       api_client_id=client.id, expires_at=now + timedelta(seconds=access_ttl)),
            OAuthToken(token_digest=token_digest(refresh), kind="refresh", portal_user_id=user.id,
                       api_client_id=client.id, expires_at=now + timedelta(seconds=refresh_ttl)),
        ]
    )
    await session.flush()
    return IssuedTokens(access, refresh, access_ttl)


async def password_grant(
    session: AsyncSession, *, client_id: str, client_secret: str, username: str, password: str,
    access_ttl: int, refresh_ttl: int,
) -> IssuedTokens:
    client = await _authenticate_client(session, client_id, client_secret)
    user = await repository.portal_user_by_username(session, username)
    matched = await verify_secret_bounded(password, user.password_hash if user is not None else None)
    if user is None or not user.active or not matched:
        raise InvalidGrant("Bad credentials")
    if not _user_belongs_to_client(user, client):
        raise InvalidGrant("Bad credentials")
    return await _issue(session, user, client, access_ttl, refresh_ttl)


async def refresh_grant(
    session: AsyncSession, *, client_id: str, client_secret: str, refresh_token: str, access_ttl: int, refresh_ttl: int,
) -> IssuedTokens:
    client = await _authenticate_client(session, client_id, client_secret)
    row = await repository.oauth_token_by_digest(session, token_digest(refresh_token))
    if row is None or row.kind != "refresh" or row.revoked or row.api_client_id != client.id:
        raise InvalidGrant(f"Invalid refresh token: {refresh_token[:8]}...")
    if row.expires_at <= utcnow():
        raise InvalidGrant("Invalid refresh token (expired)")
    user = await session.get(PortalUser, row.portal_user_id)
    if user is None or not user.active:
        raise InvalidGrant("User is disabled")
    row.revoked = True  # refresh tokens rotate: each one works once
    return await _issue(session, user, client, access_ttl, refresh_ttl)


async def principal_for_token(session: AsyncSession, token: str) -> Principal:
    # One round trip for the token, its user, its client and a reseller-level user's scope (the user's
    # reseller and those below it, one row each): every request of the family passes here.
    found = await repository.token_with_owner_and_scope(session, token_digest(token))
    row, user, client = found[0][:3] if found else (None, None, None)
    if row is None or row.kind != "access" or row.revoked:
        raise AuthenticationFailed("Invalid access token", code="invalid_token")
    if row.expires_at <= utcnow():
        raise AuthenticationFailed("Access token expired", code="invalid_token")
    if user is None or client is None or not user.active or not client.active:
        raise AuthenticationFailed("Invalid access token", code="invalid_token")
    scope: frozenset[int] = frozenset()
    if user.reseller_id is not None and user.enterprise_id is None:
        scope = frozenset(r[3] for r in found if r[3] is not None) | {user.reseller_id}
    return Principal(
        portal_user_id=user.id, username=user.username, user_type=user.user_type,
        reseller_id=user.reseller_id, enterprise_id=user.enterprise_id, reseller_scope=scope, expires_at=row.expires_at,
    )


async def revoke_credentials_of_enterprise(session: AsyncSession, enterprise_id: int) -> None:
    """Old enterprise credentials stop working at once: clients, users and their live tokens."""
    users, clients = await repository.enterprise_credentials(session, enterprise_id)
    for user in users:
        user.active = False
    for client in clients:
        client.active = False
    if clients:
        await repository.revoke_tokens_of_clients(session, [c.id for c in clients])
