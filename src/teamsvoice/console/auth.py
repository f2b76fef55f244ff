"""Who is using the console: staff sign in with their existing API admin login of either family, and
the session cookie that carries it.

- ConnecttoTeams reseller-level PortalUsers and Fusion distributor/reseller/system logins may sign in;
  enterprise and tenant logins are the customer's, not the provider's staff, and may not.
- Either way the console acts as a `FusionPrincipal` over the caller's node of the shared Reseller tree
  (its level's default permissions for a ConnecttoTeams login, the login's own for a Fusion one), so the
  Fusion domain services scope every query exactly as the Fusion API does; a ConnecttoTeams `Principal`
  of the same node scopes the enterprise (consent) services.
- The cookie is signed (Keyring, purpose-bound), HttpOnly, SameSite=Strict, Secure on https, and ends
  after SESSION_TTL_SECONDS. It names the login, not its rights: each request reloads the login, so a
  disabled login or a password change ends its console sessions at once, and for good: the cookie carries a
  stamp of the password hash and of the login's session epoch (a Fusion login's count of ended sessions), so
  enabling the login again does not bring an old cookie back. Signing out ends the cookie on the server too (a
  copy of it is refused until it would have expired: `console_signouts`).
- Every POST carries the session's CSRF token (form field or X-CSRF-Token header from htmx).
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import AuthenticationFailed
from teamsvoice.core.clock import utcnow
from teamsvoice.core.security import Keyring, token_digest, verify_secret_bounded
from teamsvoice.domain.fusion import repository_accounts as fusion_logins
from teamsvoice.domain.fusion.models import FusionUser
from teamsvoice.domain.fusion.principal import FusionPrincipal
from teamsvoice.domain.fusion.roles import FUSION_LEVEL_OF, default_permissions
from teamsvoice.domain.orgs import repository as orgs
from teamsvoice.domain.orgs.models import PortalUser, Reseller
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.security import repository as security

COOKIE = "tv_console"
LOGIN_CSRF_COOKIE = "tv_console_login"
LOGIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24), as the sign-in form makes it
SESSION_TTL_SECONDS = 8 * 3600
PURPOSE = "console-session"
CTT, FUSION = "connecttoteams", "fusion"


def _stamp(user: PortalUser | FusionUser) -> str:
    """Changes when the password changes or the login's sessions are ended (old sessions end); reveals nothing of
    the hash. (A ConnecttoTeams staff login is never enabled again once disabled: its hash alone is stamped.)"""
    epoch = user.session_epoch if isinstance(user, FusionUser) else 0
    return hashlib.sha256(f"console:{user.password_hash}:{epoch}".encode()).hexdigest()[:16]


class SignInRequired(Exception):
    """No valid console session: the browser is sent to the sign-in page."""


class CsrfRejected(Exception):
    """A POST without this session's CSRF token."""


@dataclass(frozen=True)
class Staff:
    family: str
    login_id: int
    username: str
    reseller_id: int
    reseller_name: str
    csrf: str  # also the session's token: signing out records its digest
    fusion: FusionPrincipal
    ctt: Principal
    expires: int  # when the cookie ends (Unix seconds)


@dataclass(frozen=True)
class Login:
    family: str
    login_id: int
    stamp: str  # changes when the password changes or its sessions end: old cookies stop working
    reseller_id: int | None = None


async def _portal_user(session: AsyncSession, username: str, password: str) -> Login | None:
    user = await orgs.portal_user_by_username(session, username)
    if not await verify_secret_bounded(password, user.password_hash if user is not None else None) or user is None:
        return None
    if not user.active or user.enterprise_id is not None or user.reseller_id is None:
        raise AuthenticationFailed("This login cannot use the console: it is for the provider's staff "
                                   "(reseller-level API admins)")
    return Login(CTT, user.id, _stamp(user), user.reseller_id)


async def _fusion_user(session: AsyncSession, username: str, password: str) -> Login | None:
    user = await fusion_logins.login_by_username(session, username)
    if user is None or not await verify_secret_bounded(password, user.password_hash):
        return None  # (a username unknown here was already checked against the decoy as a portal user)
    if not user.active or user.level == "tenant" or user.reseller_id is None:
        raise AuthenticationFailed("This login cannot use the console: it is for the provider's staff "
                                   "(system, distributor or reseller logins)")
    return Login(FUSION, user.id, _stamp(user), user.reseller_id)


async def sign_in(session: AsyncSession, username: str, password: str) -> Login:
    username = username.strip()
    if not username or not password:
        raise AuthenticationFailed("Enter your username and password")
    login = await _portal_user(session, username, password) or await _fusion_user(session, username, password)
    if login is None:
        raise AuthenticationFailed("Invalid username or password")
    return login


def new_cookie(keyring: Keyring, login: Login) -> str:
    return keyring.sign({"f": login.family, "u": login.login_id, "s": login.stamp, "c": secrets.token_urlsafe(24),
                         "exp": int(time.time()) + SESSION_TTL_SECONDS}, purpose=PURPOSE)


async def staff_for_cookie(session: AsyncSession, keyring: Keyring, cookie: str | None) -> Staff:
    payload = keyring.unsign(cookie, purpose=PURPOSE) if cookie else None
    if payload is None or not isinstance(payload.get("exp"), int) or payload["exp"] <= time.time():
        raise SignInRequired()
    if await security.signed_out(session, token_digest(str(payload.get("c")))):
        raise SignInRequired()
    family, login_id = payload.get("f"), payload.get("u")
    user: PortalUser | FusionUser | None = None
    if family == CTT and isinstance(login_id, int):
        user = await session.get(PortalUser, login_id)
    elif family == FUSION and isinstance(login_id, int):
        user = await session.get(FusionUser, login_id)
    if user is None or not user.active or user.reseller_id is None or _stamp(user) != payload.get("s"):
        raise SignInRequired()
    node = await session.get(Reseller, user.reseller_id)
    if node is None:
        raise SignInRequired()
    scope = await orgs.descendant_reseller_ids(session, node.id)
    if isinstance(user, FusionUser):
        level, permissions = user.level, frozenset(user.permissions or [])
    else:
        level = FUSION_LEVEL_OF.get(node.level, "reseller")
        permissions = frozenset(default_permissions(level))
    fusion = FusionPrincipal(user_id=user.id, username=user.username, level=level, permissions=permissions,
                             reseller_id=node.id, fusion_tenant_id=None, tenant_uuid=None, reseller_scope=scope,
                             session_key=f"console:{family}:{user.id}")
    ctt = Principal(portal_user_id=user.id if isinstance(user, PortalUser) else 0, username=user.username,
                    user_type=node.level, reseller_id=node.id, enterprise_id=None, reseller_scope=scope)
    return Staff(str(family), user.id, user.username, node.id, node.name, str(payload["c"]), fusion, ctt, payload["exp"])


async def sign_out(session: AsyncSession, staff: Staff) -> None:
    """The cookie ends here and now, not only in this browser: a copy of it is refused until it would have expired."""
    expires = datetime.fromtimestamp(staff.expires, UTC).replace(tzinfo=None)
    await security.sign_out(session, token_digest(staff.csrf), expires, utcnow())


def check_csrf(expected: str, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRejected()
