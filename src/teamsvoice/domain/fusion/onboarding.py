"""Linking an MS Teams tenant to a subscription: admin credentials, the onboarding wizard, status, unlink.

The wizard (run as a durable job, jobs/fusion_wizard.py) never signs in as the administrator: Microsoft
accepts no password sign-in from a server for MFA-protected admins, and the emulator offers none. It:
 1. resolves the tenant from the administrator's UPN domain (OpenID discovery); requires that a Global
    Administrator of that tenant granted admin consent at THIS subscription's consent URL (recorded by the
    consent callback, `accept_admin_consent`, as the enterprise's EnterpriseManagement consent) and that
    teamsvoice's app-only token is granted there; else it fails with the consent URL, and tells nothing of the
    tenant's directory. Then it checks the administrator account exists, is enabled and is a Global
    Administrator. (The app's consent alone proves nothing about who may link the tenant: one app serves every
    reseller, so a tenant another reseller's customer consented to, or unlinked, is not anyone's to take.)
 2. checks the MS Graph integration and the tenant's verified domain (and that the tenant is not linked
    to another subscription or enterprise: `already_linked`);
 3. checks the tenant has Teams Phone licences;
 4. checks the Teams PowerShell integration (a read cmdlet);
 5. creates the direct routing voice configuration (PSTN gateway, usage, route, policy), idempotently;
 6. links the tenant to the subscription's enterprise.
The stored password is kept (encrypted) for the PowerShell integration of a cloud deployment that runs
pwsh with `Connect-MicrosoftTeams -Credential`; it is never returned.
"""

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import end_transaction
from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, UpstreamError, ValidationFailed
from teamsvoice.core.limits import is_user_principal_name, name_problem, shown
from teamsvoice.core.security import Keyring, new_token
from teamsvoice.domain.consent import repository as consents
from teamsvoice.domain.consent.actions import MANAGEMENT_CONSENT
from teamsvoice.domain.consent.service import not_answered, sign_in_error
from teamsvoice.domain.fusion import repository_onboarding as repository
from teamsvoice.domain.fusion.models import FusionMsTeamsAdmin, FusionSubscription, FusionWizardRun
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.tenant_voice import configuration
from teamsvoice.domain.tenant_voice.rules import teams_phone_skus, voice_domain
from teamsvoice.domain.voice_state import repository as voice_records
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.ports import GRAPH_RESOURCE, Connector

PASSWORD_PURPOSE = "fusion-msteams-admin"
CONSENT_STATE_PURPOSE = "fusion-consent"
CONSENT_CALLBACK_PATH = "/api/v01/msteams/consent"
VOICE_NAME = "teamsvoice"
FUSION_SIP_PORT = 5061
WIZARD_RUNNING = "wizard_running"
NO_ADMIN = "no_ms_teams_admin"
ALREADY_ONBOARDED = "already_onboarded"
JOBS_UNFINISHED = "jobs_unfinished"

WIZARD_STEPS = [
    (1, "Check the MS Teams administrator and teamsvoice's admin consent"),
    (2, "Check the MS Graph integration and the verified domain"),
    (3, "Check the Teams Phone licences"),
    (4, "Check the Teams PowerShell integration"),
    (5, "Create the direct routing voice configuration"),
    (6, "Link the MS Teams tenant to the subscription"),
]


class StepFailed(Exception):
    def __init__(self, message: str, *, status: str | None = None, consent_url: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.consent_url = message, status, consent_url


def initial_steps() -> list[dict[str, Any]]:
    return [{"step": n, "text": text, "executed": False, "ok": None, "detail": None} for n, text in WIZARD_STEPS]


# --- administrator --------------------------------------------------------------------------------


async def get_admin(session: AsyncSession, access: SubscriptionAccess) -> FusionMsTeamsAdmin | None:
    return await repository.ms_teams_admin(session, access.subscription.id)


ADMIN_USERNAME_MAX, ADMIN_PASSWORD_MAX = 255, 256  # the Fusion API's limits (api/fusion/wire.AdminBody)


async def _admin_unused(session: AsyncSession, access: SubscriptionAccess) -> FusionMsTeamsAdmin | None:
    """The administrator, once no wizard run uses it: each step of a run reads it (a run whose administrator was
    deleted meanwhile stopped between two steps and stayed running for ever, and no wizard could start again; one
    changed meanwhile had its later steps check another account than step 1)."""
    run = await latest_run(session, access.subscription.id)
    if run is not None and run.running:
        raise Conflict("The onboarding wizard is running for this subscription: change or delete its MS Teams "
                       "administrator once it has ended (GET msteams/wizard)", code=WIZARD_RUNNING)
    return await get_admin(session, access)


async def set_admin(session: AsyncSession, keyring: Keyring, access: SubscriptionAccess, username: str, password: str) -> FusionMsTeamsAdmin:
    """The subscription's MS Teams administrator, for the API and the console alike (the password stored encrypted).
    Its username is a userPrincipalName (the wizard looks its domain's tenant up, then the user in it)."""
    if len(username) > ADMIN_USERNAME_MAX or not is_user_principal_name(username):
        raise ValidationFailed(f"msUsername: '{shown(username)}' is not a user principal name such as "
                               "admin@contoso.onmicrosoft.com")
    if not 0 < len(password) <= ADMIN_PASSWORD_MAX:
        raise ValidationFailed(f"msPassword: 1 to {ADMIN_PASSWORD_MAX} characters")
    if name_problem(password, ADMIN_PASSWORD_MAX):  # (a reason of our own: nothing of the password is quoted)
        raise ValidationFailed("msPassword: must not contain NUL, line breaks or other control characters")
    admin = await _admin_unused(session, access)
    if admin is None:
        admin = FusionMsTeamsAdmin(subscription_id=access.subscription.id, ms_username="", ms_password_encrypted="")
        session.add(admin)
    admin.ms_username = username.lower()
    admin.ms_password_encrypted = keyring.encrypt(password, purpose=PASSWORD_PURPOSE)
    admin.updated_at = utcnow()
    await session.flush()
    return admin


async def delete_admin(session: AsyncSession, access: SubscriptionAccess) -> FusionMsTeamsAdmin | None:
    """Deletes the subscription's MS Teams administrator and answers it (None: there was none)."""
    await access.lock(session)  # a wizard started at the same moment (`start_wizard`) is seen, or sees it gone
    admin = await _admin_unused(session, access)
    if admin is not None:
        await repository.delete_ms_teams_admin(session, admin)
    return admin


# --- wizard runs ----------------------------------------------------------------------------------


async def latest_run(session: AsyncSession, subscription_id: int) -> FusionWizardRun | None:
    return await repository.latest_wizard_run(session, subscription_id)


async def start_wizard(session: AsyncSession, access: SubscriptionAccess) -> FusionWizardRun:
    await access.lock(session)  # an administrator deleted at the same moment (`delete_admin`): one waits for the other
    if access.ms_tenant_id is not None:
        raise PreconditionFailed("The subscription is already onboarded; unlink it first", code=ALREADY_ONBOARDED)
    if await get_admin(session, access) is None:
        raise PreconditionFailed("Create the MS Teams administrator (POST msteams/admins) before running the wizard",
                                 code=NO_ADMIN)
    current = await latest_run(session, access.subscription.id)
    if current is not None and current.running:
        raise Conflict("The onboarding wizard is already running for this subscription", code=WIZARD_RUNNING)
    run = FusionWizardRun(subscription_id=access.subscription.id, running=True, steps=initial_steps(),
                          status="wizard_0_OK")
    try:
        async with session.begin_nested():  # another start at the same moment found none running either
            session.add(run)
    except IntegrityError:
        raise Conflict("The onboarding wizard is already running for this subscription", code=WIZARD_RUNNING) from None
    return run


def status_of(access: SubscriptionAccess, run: FusionWizardRun | None) -> str:
    if access.ms_tenant_id is not None:
        return "onboarded"
    current = current_run(access, run)
    return "not_initiated" if current is None else current.status


def current_run(access: SubscriptionAccess, run: FusionWizardRun | None) -> FusionWizardRun | None:
    """The latest wizard run while it still describes the subscription: a run that linked the tenant says nothing
    once the subscription is unlinked (not its status, not its tenant)."""
    if run is None or (access.ms_tenant_id is None and run.status == f"wizard_{len(WIZARD_STEPS)}_OK"):
        return None
    return run


async def unlink(session: AsyncSession, access: SubscriptionAccess, quarantine_seconds: float) -> str:
    """Forget the link: the tenant is left as it is in Microsoft; teamsvoice stops managing its users. Refused while
    a job of the subscription has not ended (it went on writing in the tenant and re-created the records of its
    users on the unlinked subscription). The numbers its users held stay assigned in Microsoft: each goes to
    quarantine, as an offboarded user's does (it was free at once, and another customer's user could get it while
    the tenant still had it)."""
    tenant_id = await access.lock_linked(session)
    enterprise = access.enterprise
    busy = await repository.unfinished_jobs(session, access.subscription.id, enterprise.id)
    if busy:
        raise PreconditionFailed(f"The subscription has jobs that have not ended ({', '.join(busy[:10])}): wait for "
                                 "them, or cancel them, before unlinking", code=JOBS_UNFINISHED)
    held = await repository.forget_tenant_records(session, enterprise.id, access.subscription.id)
    if held and quarantine_seconds > 0:
        await voice_records.quarantine(session, enterprise, held, quarantine_seconds)
    enterprise.tenant_id, enterprise.tenant_domain = None, None
    enterprise.registered, enterprise.registered_on = False, None
    return tenant_id


# --- what the wizard's steps do (sync DB side for the job's own engine; async Microsoft side) -----


@dataclass(frozen=True)
class WizardInput:
    run_id: int
    subscription_id: int
    enterprise_id: int
    reseller_id: int
    admin_username: str
    ms_tenant_id: str | None
    run_key: str  # the run's never-reused key: its consent URL names it (a subscription's id may come back)


def load_input(session: Session, run_id: int) -> WizardInput | None:
    run = session.get(FusionWizardRun, run_id)
    if run is None:
        return None
    subscription = session.get(FusionSubscription, run.subscription_id)
    admin = repository.ms_teams_admin_sync(session, run.subscription_id)
    enterprise = session.get(Enterprise, subscription.enterprise_id) if subscription else None
    if subscription is None or admin is None or enterprise is None:
        return None
    return WizardInput(run_id, subscription.id, enterprise.id, enterprise.reseller_id, admin.ms_username, run.ms_tenant_id,
                       run.job_key)


def consent_callback_url(public_url: str) -> str:
    return public_url.rstrip("/") + CONSENT_CALLBACK_PATH


def consent_url(connector: Connector, keyring: Keyring, public_url: str, tenant_id: str, run_key: str) -> str:
    """Where the tenant's Global Administrator grants admin consent to teamsvoice's app for the subscription of the
    wizard run `run_key`. The state names the run by its never-reused key, not the subscription by its id: a
    subscription deleted takes its runs along, and its id may be given to another reseller's next one (SQLite)."""
    nonce = new_token(16)
    state = keyring.sign({"run": run_key, "tid": tenant_id, "nonce": nonce, "exp": int(time.time()) + 7 * 86400},
                         purpose=CONSENT_STATE_PURPOSE)
    return connector.admin_consent_url(tenant_id, consent_callback_url(public_url), state, nonce)


@dataclass(frozen=True)
class ConsentAnswer:
    """What the consent callback shows. `sign_in_again`: the consent URL, on every answer that granted nothing while
    the administrator can still consent there (the link has not expired, its subscription exists): a sign-in there
    is the way forward, since Microsoft's one-time code cannot be redeemed twice (reloading the page cannot do it).
    `waiting`: nothing is final, Microsoft did not answer or has not applied the consent yet (503)."""
    granted: bool
    title: str
    message: str
    sign_in_again: str | None = None
    waiting: bool = False


async def accept_admin_consent(
    session: AsyncSession, connector: Connector, keyring: Keyring, public_url: str, *, state: str | None,
    code: str | None, error: str | None = None, error_description: str | None = None,
) -> ConsentAnswer:
    """Microsoft's answer to a subscription's consent URL. The code is redeemed (a Global Administrator of the
    URL's tenant signed in and consented: the id token's tenant, nonce and the user's role are checked) and
    the consent recorded for the subscription's enterprise, which the wizard's first step requires.

    The transient and the final are told apart as ConnecttoTeams' callback tells them (`consent.service`:
    `sign_in_error`, `not_answered`): Microsoft not answering records nothing and answers 503. Unlike that
    callback's single-use state, this link stays good until it expires, and an answer that granted nothing records
    nothing: every such answer, a reload of one whose code was spent included, links the consent URL again."""
    payload = keyring.unsign(state or "", purpose=CONSENT_STATE_PURPOSE)
    if payload is None or int(payload.get("exp", 0)) < time.time() or "nonce" not in payload or "run" not in payload:
        return ConsentAnswer(False, "Consent link not valid", "This consent answer was not requested by this service or has expired.")
    run_key, tenant_id, nonce = str(payload["run"]), str(payload["tid"]), str(payload["nonce"])
    if await repository.enterprise_of_wizard_run(session, run_key) is None:
        return _link_gone()
    await end_transaction(session)  # no transaction held while Microsoft answers
    again = connector.admin_consent_url(tenant_id, consent_callback_url(public_url), state or "", nonce)

    def refused(title: str, message: str) -> ConsentAnswer:
        return ConsentAnswer(False, title, message, again)

    if error or not code:
        ended = sign_in_error(error, error_description)
        if not_answered(ended):
            return _microsoft_did_not_answer(ended, again)
        return refused("Consent not granted", f"Microsoft answered {error or 'without a code'}: {error_description or ''}")
    try:
        redeemed = await connector.identity.redeem_code(code=code, scopes=[f"{GRAPH_RESOURCE}/.default"],
                                                        redirect_uri=consent_callback_url(public_url), nonce=nonce)
    except UpstreamError as exc:
        if not_answered(exc):
            return _microsoft_did_not_answer(exc, again)
        # (a reload of an answer whose code was spent, by a try Microsoft did not answer for, comes here too)
        return refused("Consent not effective", f"{exc.message.rstrip('.')}. This answer cannot be used again: sign in "
                       "again with the consent link.")
    signed_in, user_id = redeemed.tenant_id, redeemed.user_id
    upn = redeemed.user_principal_name or user_id
    if signed_in != tenant_id:
        return refused("Consent not granted", f"{upn} signed in to tenant {signed_in}, not {tenant_id}")
    try:
        await connector.check_app_access(tenant_id, "graph")  # the consent took effect: the app's token is granted
    except UpstreamError as exc:
        if not_answered(exc):
            return _microsoft_did_not_answer(exc, again)
        # Consent takes a while to reach Microsoft's token service: refused right after it, the app's token is not
        # a final answer. Signed in again a little later (the consent stands: no new consent to give), it is.
        return ConsentAnswer(False, "Consent not effective yet",
                             f"Microsoft does not grant teamsvoice's app access to tenant {tenant_id} yet ({exc.message}). "
                             "A consent can take a few minutes to take effect: sign in again with the consent link in "
                             "a few minutes.", again, waiting=True)
    try:
        is_admin = await connector.connect(tenant_id).directory.is_global_admin(user_id)
    except UpstreamError as exc:
        if not_answered(exc):
            return _microsoft_did_not_answer(exc, again)
        return refused("Consent not effective", exc.message)
    if not is_admin:
        return refused("Consent not granted", f"{upn} is not a Global Administrator of tenant {tenant_id}")
    enterprise_id = await repository.enterprise_of_wizard_run(session, run_key)
    if enterprise_id is None:  # its subscription deleted while Microsoft answered
        return _link_gone()
    await consents.record_consent(session, enterprise_id, MANAGEMENT_CONSENT, tenant_id, upn)
    return ConsentAnswer(True, "Consent granted", "teamsvoice may now manage this tenant. Run the onboarding wizard again.")


def _link_gone() -> ConsentAnswer:
    return ConsentAnswer(False, "Consent link not valid", "The subscription of this consent link no longer exists.")


def _microsoft_did_not_answer(exc: UpstreamError, again: str) -> ConsentAnswer:
    """A transient failure is no answer to the consent (`consent.service.not_answered`): nothing is recorded, and the
    administrator signs in again at the same consent URL in a moment."""
    return ConsentAnswer(False, "Microsoft did not answer",
                         f"Microsoft did not answer ({exc.message}); nothing was recorded as refused. In a moment, "
                         "sign in again with the consent link.", again, waiting=True)


async def discover_tenant(connector: Connector, domain: str) -> str:
    tenant_id = await connector.tenant_of_domain(domain)
    if tenant_id is None:
        raise StepFailed(f"No Microsoft 365 tenant uses the domain '{domain}' of the administrator's username")
    return tenant_id


async def check_admin(connector: Connector, keyring: Keyring, public_url: str, data: WizardInput,
                      consented_tenant: str | None) -> str:
    """Step 1. `consented_tenant`: the tenant whose Global Administrator granted consent at this subscription's
    consent URL (the enterprise's EnterpriseManagement consent), if any. Without it, or without the app's token
    in the tenant, the step fails with the consent URL alone: nothing of the tenant's directory is read."""
    tenant_id = data.ms_tenant_id or await discover_tenant(connector, data.admin_username.partition("@")[2])
    def needed() -> StepFailed:  # (a consent URL is signed only when the step fails for want of consent)
        return StepFailed(
            f"teamsvoice has no admin consent for this subscription in tenant {tenant_id}: a Global Administrator of "
            "the tenant must grant it at the consent URL, then run the wizard again",
            consent_url=consent_url(connector, keyring, public_url, tenant_id, data.run_key))

    if consented_tenant != tenant_id:
        raise needed()
    try:
        await connector.check_app_access(tenant_id, "graph")
    except UpstreamError as exc:
        if exc.retryable:
            raise
        raise needed() from exc
    connection = connector.connect(tenant_id)
    try:
        user = await connection.directory.user(data.admin_username)
    except NotFound as exc:
        raise StepFailed(f"{data.admin_username} is not a user of tenant {tenant_id}") from exc
    if user.get("accountEnabled") is False:
        raise StepFailed(f"{data.admin_username} is disabled in tenant {tenant_id}")
    if not await connection.directory.is_global_admin(user["id"]):
        raise StepFailed(f"{data.admin_username} is not a Global Administrator of tenant {tenant_id}")
    return tenant_id


async def verified_domain(connector: Connector, tenant_id: str) -> str:
    admin = connector.connect(tenant_id).directory_admin
    await admin.organization()
    chosen = voice_domain(await admin.domains())
    if chosen is None:
        raise StepFailed("The tenant has no verified custom domain to host the direct routing SBC name")
    return chosen


async def check_licences(connector: Connector, tenant_id: str) -> str:
    skus = teams_phone_skus(await connector.connect(tenant_id).directory_admin.subscribed_skus())
    phone = [s for s in skus if s.prepaid > 0]
    if not phone:
        raise StepFailed("The tenant has no Teams Phone (MCOEV) licences")
    return ", ".join(f"{s.sku_part_number} x{s.prepaid}" for s in phone)


async def check_powershell(connector: Connector, tenant_id: str, admin_username: str) -> None:
    await connector.connect(tenant_id).teams_admin.check_powershell(as_user=admin_username)


def sbc_fqdn_in(domain: str, provider_sbc_fqdn: str | None) -> str:
    """The carrier-hosted SBC name in the customer's domain: `<provider SBC host label>.<verified domain>`
    (`sbc` when the provider has no SBC gateway recorded)."""
    label = provider_sbc_fqdn.split(".")[0] if provider_sbc_fqdn is not None else "sbc"
    return f"{label}.{domain}".lower()


def sbc_fqdn(session: Session, reseller_id: int, domain: str) -> str:
    """`sbc_fqdn_in` the domain for the reseller's first SBC gateway."""
    gateway = repository.first_sbc_gateway(session, reseller_id)
    return sbc_fqdn_in(domain, gateway.fqdn if gateway is not None else None)


def voice_configuration(fqdn: str) -> RoutingInventory:
    """What a Fusion subscription's tenant needs: one gateway, and a usage, route and policy named `teamsvoice`
    that send every number to it."""
    return RoutingInventory([PstnGateway(fqdn, FUSION_SIP_PORT, True)], [VOICE_NAME],
                            [VoiceRoute(VOICE_NAME, ".*", [fqdn], [VOICE_NAME], 0)],
                            [VoiceRoutingPolicy(VOICE_NAME, [VOICE_NAME])])


async def create_voice_configuration(connector: Connector, tenant_id: str, fqdn: str) -> str:
    """Idempotent: each object is created or corrected only when it differs (domain/tenant_voice)."""
    await configuration.ensure(connector.connect(tenant_id).direct_routing, voice_configuration(fqdn))
    return f"gateway {fqdn}, usage/route/policy '{VOICE_NAME}'"


def tenant_linked_elsewhere(session: Session, enterprise_id: int, tenant_id: str) -> bool:
    return repository.tenant_linked_elsewhere(session, enterprise_id, tenant_id)


def linked_elsewhere_refusal(tenant_id: str) -> StepFailed:
    """How a step refuses a tenant another subscription or enterprise holds (checked before every step that acts on
    the tenant, and by `link`)."""
    return StepFailed(f"Tenant {tenant_id} is already linked to another subscription or enterprise", status="already_linked")


def tenant_busy_refusal(tenant_id: str) -> StepFailed:
    """How a run is refused the tenant while another subscription's run is onboarding it (a tenant has one running
    run once its step 1 named it: both would pass "linked elsewhere" before either linked, and both would write)."""
    return StepFailed(f"Another subscription's onboarding wizard is running against tenant {tenant_id}: "
                      "run this one again once that one has ended")


def consented_tenant(session: Session, enterprise_id: int) -> str | None:
    """The tenant whose Global Administrator consented at the subscription's consent URL (`accept_admin_consent`:
    the enterprise's EnterpriseManagement consent, which also lets ConnecttoTeams reseller tokens provision it)."""
    consent = repository.consent_of(session, enterprise_id, MANAGEMENT_CONSENT)
    return consent.tenant_id if consent is not None else None


def link(session: Session, data: WizardInput, tenant_id: str, domain: str | None) -> None:
    """Idempotent. Only to the tenant of the subscription's consent, and to no tenant linked elsewhere."""
    if tenant_linked_elsewhere(session, data.enterprise_id, tenant_id):
        raise linked_elsewhere_refusal(tenant_id)
    if consented_tenant(session, data.enterprise_id) != tenant_id:  # the consent went meanwhile (an unlink)
        raise StepFailed(f"teamsvoice has no admin consent for this subscription in tenant {tenant_id}: run the wizard again")
    enterprise = session.get(Enterprise, data.enterprise_id)
    assert enterprise is not None
    enterprise.tenant_id, enterprise.tenant_domain = tenant_id, domain
    enterprise.registered, enterprise.registered_on = True, enterprise.registered_on or utcnow()
    enterprise.registered_by = enterprise.registered_by or data.admin_username
    enterprise.can_reseller_manage_enterprise_provisioning = True
