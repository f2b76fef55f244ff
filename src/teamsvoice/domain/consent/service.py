"""The admin-consent workflow: hand out a sign-in URL with a signed single-use state, then turn
Microsoft's answer into a tenant link or a recorded consent, and a webhook owed to the provider."""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import Conflict, DomainError, NotFound, PreconditionFailed, UpstreamError, ValidationFailed
from teamsvoice.core.security import Keyring, new_token
from teamsvoice.domain.consent.actions import ACTION_TYPES, GRAPH_TOKEN_SCOPES, MANAGEMENT_CONSENT, ActionType
from teamsvoice.domain.consent import repository as consents
from teamsvoice.domain.consent.models import ActionRequest
from teamsvoice.domain.consent.redirects import check_redirect_url
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.microsoft.ports import TEAMS_ADMIN_RESOURCE, TRANSIENT_SIGN_IN_ERRORS, Connector, RedeemedCode

STATE_PURPOSE = "consent-state"
WEBHOOK_PURPOSE = "webhook-payload"
# Sent with every POST of a consent webhook: the delivery's key, the same at each try of one delivery and another for
# each delivery, so a receiver can tell a delivery sent again (a try whose outcome was lost: a worker died or the
# database failed after the receiver answered) from a new one. A header: the vendor's body has no field for it.
WEBHOOK_KEY_HEADER = "Idempotency-Key"


class InvalidState(DomainError):
    code = "invalid_state"


# The outcome of a request whose answer met a transient failure: its state is usable again (`complete_action`).
RETRY_OUTCOME = "retry"


# --- an answer at a consent callback, either family's (ConnecttoTeams: `complete_action`; Fusion:
# fusion/onboarding.accept_admin_consent) ----------------------------------------------------------------------


def sign_in_error(error: str | None, error_description: str | None) -> UpstreamError:
    """Microsoft's answer without a code: the sign-in ended with `error` (or with nothing). Not final when Microsoft
    could not complete the sign-in for now (`TRANSIENT_SIGN_IN_ERRORS`); final otherwise (the administrator
    declined, ...)."""
    return UpstreamError(f"Microsoft sign-in ended with {error or 'no code'}: {error_description or ''}".strip(),
                         retryable=error in TRANSIENT_SIGN_IN_ERRORS, upstream_code=error)


def not_answered(exc: DomainError) -> bool:
    """Whether what stopped an answer at a consent callback is Microsoft not answering (unreachable, 429, 5xx, a
    token service that could not answer for now, `sign_in_error` of a transient sign-in: a retryable UpstreamError).
    Such an answer is no answer to the consent: nothing is recorded as refused, nothing is owed to the provider, and
    the page links the consent's sign-in, to be opened again in a moment (a fresh one-time code: Microsoft redeems
    a code once, so a reload of the same answer cannot complete it)."""
    return isinstance(exc, UpstreamError) and exc.retryable


@dataclass(frozen=True)
class ConsentOutcome:
    """What the administrator's answer achieved. `delivery_id`: the webhook owed to the provider, None when the
    answer met a transient failure (Microsoft did not answer): nothing is final then, nothing is owed, and
    `sign_in_again` is the consent's sign-in URL (the same state) for the administrator to open again."""
    action_type: str
    enterprise_name: str
    succeeded: bool
    message: str
    delivery_id: int | None
    sign_in_again: str | None = None


def check_consent_type(action: ActionType, consent_type: str | None) -> None:
    """getActionItemUrl's `consentType` (vendor-notes 1.9: the table's "Consent Type" column) is not what decides the
    consent: the action type does. A value naming the consent of ANOTHER action type (UserSync, Presence, ..., any
    case) contradicts the action and is refused; absent, the action's own, or any other text (the vendor's consent
    types of most rows are undocumented, REGISTRATION's is "-": a script may send what the vendor's table says) is
    accepted as before."""
    if consent_type is None:
        return
    sent = consent_type.strip().lower()
    if action.consent_name is not None and sent == action.consent_name.lower():
        return
    other = next((a for a in ACTION_TYPES.values() if (a.consent_name or "").lower() == sent and sent), None)
    if other is None:
        return
    needs = (f"{action.name} gives the consent '{action.consent_name}' (send that, or leave consentType out)"
             if action.consent_name is not None else f"{action.name} gives no consent (leave consentType out)")
    raise ValidationFailed(f"consentType: '{other.consent_name}' is the consent of {other.name}; {needs}")


async def create_action_url(
    session: AsyncSession, principal: Principal, connector: Connector, keyring: Keyring, *,
    action_type: str, enterprise_name: str, redirect_url: str, callback_url: str, ttl_seconds: int,
    allow_loopback: bool, enterprise_id: int | None = None, consent_type: str | None = None,
) -> str:
    action = ACTION_TYPES.get(action_type)
    if action is None:
        raise ValidationFailed(f"actionType: unknown action type '{action_type}'; allowed: {sorted(ACTION_TYPES)}")
    check_consent_type(action, consent_type)
    enterprise_name = enterprise_name.strip()  # as newEnterprise stores it: the name a script sent there finds it
    named = await repository.enterprises_by_name(session, principal, enterprise_name)
    if enterprise_id is not None:
        named = [e for e in named if e.id == enterprise_id]
    if not named:
        raise NotFound(f"Enterprise '{enterprise_name}' not found" + (f" with id {enterprise_id}" if enterprise_id is not None else ""))
    if len(named) > 1:  # (it took the lowest id: a master reseller could never reach the other)
        raise Conflict(f"{len(named)} enterprises named '{enterprise_name}' are in your scope (ids "
                       f"{', '.join(str(e.id) for e in named)}): give enterpriseId too")
    enterprise = named[0]
    reseller = await repository.reseller_of(session, enterprise)
    redirect_url = check_redirect_url(redirect_url, reseller.registered_redirect_urls, allow_loopback=allow_loopback,
                                      reseller_id=reseller.id)
    if action.name == "REGISTRATION" and enterprise.registered:
        raise Conflict(f"Enterprise '{enterprise_name}' is already registered")
    if action.name != "REGISTRATION" and enterprise.tenant_id is None:
        raise PreconditionFailed(f"Enterprise '{enterprise_name}' is not registered yet: complete REGISTRATION first")
    key, nonce = new_token(16), new_token(16)
    expires = int(time.time()) + ttl_seconds
    state = keyring.sign({"k": key, "exp": expires}, purpose=STATE_PURPOSE)
    url = await _sign_in_url(connector, action, list(action.scopes), callback_url, state, nonce)
    consents.add_action_request(session, ActionRequest(
        enterprise_id=enterprise.id, action_type=action.name, redirect_url=redirect_url, nonce=nonce,
        state_key=key, scopes=list(action.scopes), expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    ))
    return url


async def _sign_in_url(connector: Connector, action: ActionType, scopes: list[str], callback_url: str, state: str,
                       nonce: str) -> str:
    return await connector.identity.authorization_url(
        scopes=scopes, redirect_uri=callback_url, state=state, nonce=nonce,
        prompt=None if action.name == "LOGIN_ENTERPRISE_ADMIN" else "consent",
    )


def _tried(code: str | None) -> str:
    """The outcome of a request whose answer (its one-time `code`) met a transient failure: the code's digest says
    the same answer posted again (a reload of the page) is not redeemed twice (Microsoft refuses a code twice:
    that refusal would be recorded as the consent's final failure)."""
    if not code:
        return RETRY_OUTCOME
    return f"{RETRY_OUTCOME}:{hashlib.sha256(code.encode()).hexdigest()[:32]}"


async def claim_state(session: AsyncSession, keyring: Keyring, state: str | None) -> ActionRequest:
    """Validates the signed state and burns it: a state is good for one answer only (one that met a transient
    failure gives it back: `complete_action`)."""
    payload = keyring.unsign(state or "", purpose=STATE_PURPOSE)
    if payload is None or not isinstance(payload.get("k"), str):
        raise InvalidState("The state parameter is missing or was not issued by this service")
    if int(payload.get("exp", 0)) < time.time():
        raise InvalidState("This sign-in link has expired; request a new one with getActionItemUrl")
    request = await consents.action_request_by_state(session, payload["k"])
    if request is None:
        raise InvalidState("Unknown state")
    if request.used_at is not None or not await consents.burn_state(session, request):
        raise InvalidState("This sign-in answer was already processed (replayed state)")
    return request


def _msal_object(redeemed: RedeemedCode, tenant_id: str, upn: str, authority_host: str) -> dict[str, Any]:
    expires_on_us = int((time.time() + redeemed.expires_in) * 1_000_000)
    return {
        "authenticationResult": {
            "accessToken": redeemed.access_token, "accessTokenType": authority_host, "expiresAfter": None,
            "expiresOn": expires_on_us, "expiresOnDate": None, "idToken": redeemed.id_token,
            "multipleResourceRefreshToken": False, "refreshToken": None,
            "userInfo": {"displayableId": upn, "identityProvider": "user", "tenantId": tenant_id},
        },
        "resellerId": None,
        "tenantId": None,
    }


async def _apply(session: AsyncSession, enterprise: Enterprise, action: ActionType, tenant_id: str, upn: str,
                 domain: str | None, is_admin: bool) -> None:
    if action.name in ("REGISTRATION", "LOGIN_ENTERPRISE_ADMIN") or action.consent_name:
        if not is_admin:
            raise PreconditionFailed(f"{upn} is not a Global Administrator of tenant {tenant_id}")
    if action.name == "REGISTRATION":
        if enterprise.registered and enterprise.tenant_id != tenant_id:  # a link handed out before it registered
            raise Conflict(f"Enterprise '{enterprise.enterprise_name}' is already registered to tenant "
                           f"{enterprise.tenant_id}; a registration consent in tenant {tenant_id} cannot move it")
        if await repository.tenant_registered_elsewhere(session, tenant_id, enterprise.id):
            raise Conflict(f"Tenant {tenant_id} is already registered to another enterprise")
        if enterprise.tenant_id is not None and enterprise.tenant_id != tenant_id:
            await consents.forget_consents_of_other_tenants(session, enterprise.id, tenant_id)
        enterprise.tenant_id, enterprise.tenant_domain = tenant_id, domain
        enterprise.registered_by = enterprise.registered_by or upn
        return
    if enterprise.tenant_id != tenant_id:
        raise PreconditionFailed(f"{upn} signed in to tenant {tenant_id}, not the enterprise's tenant {enterprise.tenant_id}")
    if action.consent_name:
        await consents.record_consent(session, enterprise.id, action.consent_name, tenant_id, upn)


async def complete_action(
    session: AsyncSession, connector: Connector, keyring: Keyring, *, state: str | None,
    code: str | None, error: str | None, error_description: str | None, callback_url: str,
) -> ConsentOutcome:
    """Handles Microsoft's answer. Commits the burnt state before calling out, then records the outcome.

    A transient failure (Microsoft did not answer: an UpstreamError that is `retryable`, or a sign-in that ended
    with `temporarily_unavailable` / `server_error`) is not final: nothing is recorded as failed, no webhook is
    owed, and the state is given back, so the administrator's next sign-in at the same consent URL (a fresh
    one-time code; `sign_in_again`) completes it. The same answer posted again (a reload) is not redeemed a second
    time. A state that succeeded, or failed for good, stays burnt: a replay of it is refused."""
    request = await claim_state(session, keyring, state)
    await end_transaction(session)
    enterprise = await repository.enterprise_by_id(session, request.enterprise_id)
    action = ACTION_TYPES[request.action_type]
    enterprise_name, request_id, tried_before = enterprise.enterprise_name, request.id, request.outcome
    payload: dict[str, Any] = {"actionType": action.name, "enterpriseId": enterprise.id}
    try:
        if error or not code:
            raise sign_in_error(error, error_description)
        if tried_before == _tried(code):
            raise UpstreamError("this answer was already used by the attempt Microsoft did not answer; an answer "
                                "is good for one use", retryable=True)
        redeemed = await connector.identity.redeem_code(
            code=code, scopes=GRAPH_TOKEN_SCOPES, redirect_uri=callback_url, nonce=request.nonce)
        tenant_id, user_id, upn = redeemed.tenant_id, redeemed.user_id, redeemed.user_principal_name
        directory = connector.connect(tenant_id, delegated_graph_token=redeemed.access_token).directory
        organization = await directory.organization()
        is_admin = await directory.is_global_admin(user_id)
        domain = next((d["name"] for d in organization.get("verifiedDomains", []) if d.get("isDefault")), None)
        await _apply(session, enterprise, action, tenant_id, upn, domain, is_admin)
        try:
            await session.flush()
        except IntegrityError:  # another enterprise's registration took the tenant at the same moment
            raise Conflict(f"Tenant {tenant_id} is already registered to another enterprise") from None
        payload |= {
            "msalAuthenticationResult": _msal_object(redeemed, tenant_id, upn, urlparse(connector.settings.microsoft_login_url).hostname or ""),
            "organization": organization.get("displayName"),
            "officeUserType": "GLOBAL_ADMIN" if is_admin else "USER",
            "companyAdmin": is_admin,
            "containsTeamsTenantAdminAPI": any(s.startswith(TEAMS_ADMIN_RESOURCE) for s in action.scopes),
            "consentName": action.consent_name,
        }
        request.outcome, message, succeeded = "succeeded", "done", True
    except DomainError as exc:
        await session.rollback()
        request = await consents.action_request(session, request_id)  # type: ignore[assignment]
        assert request is not None
        if not_answered(exc):
            request.used_at, request.outcome = None, _tried(code)  # usable again; committed with the request
            try:
                again: str | None = await _sign_in_url(connector, action, list(request.scopes), callback_url,
                                                       state or "", request.nonce)
            except UpstreamError:
                again = None
            return ConsentOutcome(action.name, enterprise_name, False, exc.message, None, again)
        payload |= {"error": exc.code if not isinstance(exc, UpstreamError) else (exc.upstream_code or exc.code),
                    "errorDescription": exc.message}
        request.outcome, message, succeeded = "failed", exc.message, False
    delivery = await consents.add_webhook_delivery(session, request.enterprise_id, request.redirect_url,
                                                   keyring.encrypt(json.dumps(payload), purpose=WEBHOOK_PURPOSE))
    return ConsentOutcome(action.name, enterprise_name, succeeded, message, delivery.id)


async def reseller_may_provision(session: AsyncSession, enterprise: Enterprise) -> bool:
    """Spec 001: both the enterprise flag and the EnterpriseManagement consent must hold."""
    if not enterprise.can_reseller_manage_enterprise_provisioning:
        return False
    return any(c.consent_name == MANAGEMENT_CONSENT and c.tenant_id == enterprise.tenant_id
               for c in await consents.consents_of(session, enterprise.id))
