"""Provisioning of Teams users' calling: who may do it (spec 001's two ways), and bringing Microsoft's
state in line with what teamsvoice holds for each user."""

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.db import end_transaction
from teamsvoice.core.phone import parse_e164
from teamsvoice.core.errors import AuthenticationFailed, DomainError, NotFound, PermissionDenied, UpstreamError, ValidationFailed
from teamsvoice.core.limits import name_problem
from teamsvoice.domain.calling import repository as calling_repository
from teamsvoice.domain.calling.models import PbxUser
from teamsvoice.domain.consent.service import reseller_may_provision
from teamsvoice.domain.fusion import licences
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.orgs import repository
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.orgs.principal import Principal
from teamsvoice.domain.orgs.service import tenant_id_of
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.tenant_voice import rules
from teamsvoice.domain.voice_state import repository as voice_records
from teamsvoice.microsoft.ports import Connector, TenantConnection, VoiceState


@dataclass(frozen=True)
class ProvisioningAccess:
    enterprise: Enterprise
    connection: TenantConnection


@dataclass
class Reconciled:
    """What reconciling one user did: status UPDATED, UNCHANGED, FAILED (then `error` says why) or USER_DELETED
    (`free_gone_user`)."""

    user_principal_name: str
    status: str
    changes: list[str]
    error: str | None = None


logger = logging.getLogger(__name__)


def find_msal_result(body: Any) -> dict[str, Any] | None:
    """The innermost object carrying `accessToken`, whichever wrapper the caller used."""
    node = body
    for _ in range(4):
        if not isinstance(node, dict):
            return None
        if "accessToken" in node:
            return node
        node = node.get("authenticationResult") or node.get("msalAuthenticationResult")
    return None


def find_reseller_consent_object(body: Any) -> dict[str, Any] | None:
    for node in (body, body.get("authenticationResult") if isinstance(body, dict) else None):
        if isinstance(node, dict) and "tenantId" in node and "resellerId" in node and find_msal_result(node) is None:
            return node
    return None


async def _verify_msal_token(connector: Connector, enterprise: Enterprise, msal_result: dict[str, Any]) -> str:
    token = msal_result.get("accessToken")
    if not isinstance(token, str) or not token:
        raise ValidationFailed("authenticationResult.accessToken: is required")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("authenticationResult.accessToken: not a Microsoft token (a JWT access token); pass "
                                   "the msalAuthenticationResult of LOGIN_ENTERPRISE_ADMIN") from exc
    if claims.get("tid") != enterprise.tenant_id:
        raise PermissionDenied("The MSAL token does not belong to this enterprise's Microsoft tenant")
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        raise AuthenticationFailed("authenticationResult.accessToken: its exp claim is not a time (seconds since 1970); "
                                   "pass the msalAuthenticationResult of LOGIN_ENTERPRISE_ADMIN")
    if expires < time.time():
        raise AuthenticationFailed("The MSAL token has expired; get a new one with LOGIN_ENTERPRISE_ADMIN")
    # The signature of a Graph token is Microsoft's to check: Graph accepting it proves it genuine.
    try:
        await connector.connect(enterprise.tenant_id, delegated_graph_token=token).directory.organization()
    except UpstreamError as exc:
        if exc.status in (401, 403):
            raise AuthenticationFailed("Microsoft rejected the MSAL token") from exc
        raise
    return token


async def authorize_provisioning(
    session: AsyncSession, principal: Principal, connector: Connector, body: Any
) -> ProvisioningAccess:
    """Enterprise token + MSAL object, or reseller token + {tenantId, resellerId} with both consent conditions."""
    if principal.is_enterprise_level:
        msal_result = find_msal_result(body)
        if msal_result is None:
            raise ValidationFailed("authenticationResult: an MSAL authentication object is required with an enterprise token")
        enterprise = await repository.get_enterprise(session, principal, principal.enterprise_id or 0)
        if enterprise is None or enterprise.tenant_id is None:
            raise NotFound("Enterprise not found or not registered")
        await end_transaction(session)  # no pooled connection is held while Microsoft checks the token
        token = await _verify_msal_token(connector, enterprise, msal_result)
        return ProvisioningAccess(enterprise, connector.connect(enterprise.tenant_id, delegated_graph_token=token))
    consent_object = find_reseller_consent_object(body)
    if consent_object is None:
        raise ValidationFailed(
            'A reseller token needs the object {"tenantId": "<tenant id>", "resellerId": <reseller id>} in place of the MSAL object'
        )
    tenant_id, reseller_id = consent_object.get("tenantId"), consent_object.get("resellerId")
    if not isinstance(tenant_id, str) or not tenant_id:
        raise ValidationFailed("tenantId: must be a non-empty string")
    if not isinstance(reseller_id, int) or isinstance(reseller_id, bool):
        raise ValidationFailed("resellerId: must be an integer")
    tenant_id = tenant_id_of("tenantId", tenant_id)
    enterprise = await repository.get_enterprise_by_tenant(session, principal, tenant_id)
    if enterprise is None or enterprise.reseller_id != reseller_id:
        raise NotFound(f"No enterprise of reseller {reseller_id} is linked to tenant {tenant_id}")
    if not await reseller_may_provision(session, enterprise):
        raise PermissionDenied(
            "The enterprise has not allowed management by the service provider "
            "(canResellerManageEnterpriseProvisioning and the EnterpriseManagement consent are both required)"
        )
    await end_transaction(session)  # the caller asks Microsoft next: no pooled connection held meanwhile
    return ProvisioningAccess(enterprise, connector.connect(tenant_id))


def per_user_policy(name: str | None, field: str = "voice routing policy") -> str | None:
    """The voice routing policy to grant a user. The tenant's global policy ("Global", as Teams and the policy
    lists name it, or "Tag:Global") is what a user without a per-user grant gets: choosing it removes the grant
    (Teams' `$null`), as Teams refuses to grant "Global" by name ("not a user policy"). A name that cannot be
    stored, or granted (tenant_voice/rules.check_policy_name), is a 400 naming `field`."""
    if name is None:
        return None
    text = name.strip()
    problem = name_problem(text)
    if problem is not None:
        raise ValidationFailed(f"{field}: {problem}")
    rules.check_policy_name(field, text)
    bare = text[4:] if text[:4].lower() == "tag:" else text
    if not bare or bare.lower() == "global":
        return None
    return text


async def unknown_policy(connection: TenantConnection, policy: str) -> list[str] | None:
    """None when `policy` (a per-user policy name, `per_user_policy`'s) exists in the tenant (the port's
    `has_policy`: any case, read once a while); else the tenant's per-user policies, to name them (Teams grants only
    existing ones)."""
    if await connection.direct_routing.has_policy(policy):
        return None
    return [k for k in await connection.direct_routing.policy_names() if k != "Global"]


def normalise_phone_number(raw: str) -> str:
    try:
        return parse_e164(raw).e164
    except ValidationFailed as exc:
        raise ValidationFailed(f"phoneNumber: {exc.message}") from exc


async def _ensure_voice_user(session: AsyncSession, access: ProvisioningAccess, upn: str) -> TeamsVoiceUser:
    record = await voice_users.find(session, access.enterprise.id, upn)
    if record is None or record.microsoft_user_id is None:
        # Microsoft is asked for the user's id only when teamsvoice knows none: no record, or the record of a user
        # deleted at offboarding (made again since, perhaps; else NotFound, a 404 naming it).
        await end_transaction(session)  # (what was read so far only; no pooled connection held while it answers)
        microsoft_user = await access.connection.directory.user(upn)
        record = await voice_users.find_or_add(session, access.enterprise.id, upn, microsoft_user["id"])
    return record


class MicrosoftUserGone(NotFound):
    """The record's user no longer exists in Microsoft 365 (deleted there, outside teamsvoice): its Teams voice
    configuration is not found, and neither is the user in the directory."""


@contextmanager
def voice_state_reading(connection: TenantConnection, microsoft_user_id: str) -> "Iterator[asyncio.Future[VoiceState]]":
    """The user's voice state, read from here on as a task of its own (`reconcile(..., reading=)` awaits it). Leaving
    the block cancels a read still under way (the change was refused before it needed it) and takes the failure of
    one that nobody awaited."""
    reading = asyncio.ensure_future(connection.voice.voice_state(microsoft_user_id))
    try:
        yield reading
    finally:
        if not reading.done():
            reading.cancel()
        elif not reading.cancelled():
            reading.exception()  # retrieved: its failure was the caller's to raise, or not needed


async def reconcile(connection: TenantConnection, record: TeamsVoiceUser, *,
                    reading: "asyncio.Future[VoiceState] | None" = None) -> Reconciled:
    """Make Microsoft match the record; touch nothing that already matches. Returns what was done. A record whose
    user was deleted at offboarding (no Microsoft user id) is NotFound: a sync reports that user FAILED and goes on.
    A user deleted in Microsoft since is `MicrosoftUserGone` (a sync frees its record, `calling/workflows.py`).
    `reading`: the read of the user's voice state, started by the caller while it recorded the wish (a read changes
    nothing, so it need not wait for that commit); else it is read here.

    A change that fails half-way is undone in Teams (best effort: a failure of the undoing is logged, and the
    change's own failure is what the caller gets): the numbers removed before the new one (or the disabling) failed
    are given back (`_put_back_numbers`), or a user who had none loses the new one (`_take_back_number`), a policy
    granted meanwhile is taken back (`_restore_policy`). Teams is
    then as before the change, as the record is again (`undone_on_failure`; a sync's record keeps its wish, FAILED:
    not applied). Before, a refused number (held by another user: routine) left the user with no number in Teams,
    its own free there for anyone, while the record said it held it.
    A transient failure (429, 5xx, an operation still running at the polling deadline or lost: `_finish` in
    microsoft/teams_voice.py) is undone too, though the new number may have been assigned after all, or be about to
    be: the old number given back as the user's primary replaces it (a user has one; the later operation wins), so
    Teams ends as before either way, as the restored record says. Not undone, Teams would keep the new number, or
    none, against the record until a later sync. The new number is not tried again here: the caller is told to send
    the change again (a job waits and does it), and assigning a number its user holds changes nothing."""
    if record.microsoft_user_id is None:
        raise NotFound(f"{record.user_principal_name}: its Microsoft user was deleted (offboarding); nothing to sync")
    try:
        state: VoiceState = await (reading if reading is not None else connection.voice.voice_state(record.microsoft_user_id))
    except NotFound:
        try:
            await connection.directory.user(record.microsoft_user_id)
        except NotFound:
            raise MicrosoftUserGone(f"{record.user_principal_name}: the user no longer exists in Microsoft 365") from None
        raise
    upn, changes = record.user_principal_name, []
    removed: list[str] = []  # the user's numbers once removed in Teams
    granted = sent = False  # (sent: a new number asked for)
    try:
        if not record.calling_enabled:
            if state.phone_numbers:
                await connection.voice.remove_numbers(upn)
                removed = state.phone_numbers
                changes.append("numbers removed")
                # Teams turns Enterprise Voice off with the last number; read back rather than assume.
                state = await connection.voice.voice_state(record.microsoft_user_id)
            if state.enterprise_voice:
                await connection.voice.set_enterprise_voice(upn, False)
                changes.append("enterprise voice disabled")
        else:
            policy = per_user_policy(record.voice_routing_policy)

            async def grant_policy() -> None:
                nonlocal granted
                if not rules.same_policy_name(policy, state.voice_routing_policy):
                    await connection.voice.grant_voice_routing_policy(upn, policy)
                    granted = True

            wanted = [record.phone_number] if record.phone_number else []
            if state.phone_numbers != wanted:
                if state.phone_numbers:
                    await connection.voice.remove_numbers(upn)
                    removed = state.phone_numbers
                if record.phone_number:
                    sent = True
                    # The policy is granted while Teams completes the number (its operation takes seconds): one
                    # request at a time per user still, as the tenant's concurrency limit counts a job's items
                    # (TEAMSVOICE_MICROSOFT_TENANT_CONCURRENCY is the job engine's partition concurrency, across
                    # workers): an item that sent two at once would let Microsoft see twice the limit.
                    await connection.voice.assign_number(upn, record.phone_number, meanwhile=grant_policy)
                changes.append(f"number set to {record.phone_number}" if record.phone_number else "number removed")
            if not state.enterprise_voice and not record.phone_number:
                await connection.voice.set_enterprise_voice(upn, True)
                changes.append("enterprise voice enabled")
            if not granted:
                await grant_policy()
            if granted:
                changes.append(f"voice routing policy set to {policy or 'Global'}")
    except DomainError:
        if removed:
            await _put_back_numbers(connection, upn, removed)
        elif sent:  # the user had none: the new one goes, should it have landed
            await _take_back_number(connection, upn, state.enterprise_voice)
        if granted:  # the user keeps the policy it had, as before the change
            await _restore_policy(connection, upn, state.voice_routing_policy)
        raise
    record.last_sync_status = "UPDATED" if changes else "UNCHANGED"
    record.last_sync_detail = {"changes": changes}
    record.last_synced_at = utcnow()
    record.settle()  # Teams holds what the record wants: a change left pending (`record_wish`) has its outcome
    return Reconciled(upn, record.last_sync_status, changes)


async def _put_back_numbers(connection: TenantConnection, upn: str, numbers: list[str]) -> None:
    """Gives the user back the numbers `reconcile` removed before its change failed (see there). Best effort, as
    `_restore_policy`. Teams assigns the first as the user's primary number (turning Enterprise Voice on again, as
    it was with it), replacing one the failed change may have given after all; should the user have held more (not
    teamsvoice's doing: it gives one), the others are named in the log, their categories unknown here."""
    number, *others = numbers
    try:
        await connection.voice.assign_number(upn, number)
    except DomainError as exc:
        logger.warning("could not give %s back its number %s after its change failed: %s", upn, number, exc.message)
    if others:
        logger.warning("%s's other numbers %s were not given back after its change failed", upn, others)


async def _take_back_number(connection: TenantConnection, upn: str, enterprise_voice: bool) -> None:
    """Takes away the number `reconcile` gave a user who had none, its change having failed after (its policy
    refused while Teams completed the number): else Teams kept a number the record does not hold, free in the
    inventory for another user. Enterprise Voice, turned off with the number, is turned on again if it was on.
    Best effort, as `_restore_policy`."""
    try:
        await connection.voice.remove_numbers(upn)
        if enterprise_voice:
            await connection.voice.set_enterprise_voice(upn, True)
    except DomainError as exc:
        logger.warning("could not take %s's new number back after its change failed: %s", upn, exc.message)


async def _restore_policy(connection: TenantConnection, upn: str, policy: str | None) -> None:
    """Best effort: a failure here is logged, and the change's own failure is what the caller is told."""
    try:
        await connection.voice.grant_voice_routing_policy(upn, policy)
    except DomainError as exc:
        logger.warning("could not restore %s's voice routing policy after its change failed: %s", upn, exc.message)


VoiceSettings = tuple[str | None, str | None, bool]
"""A record's (phone_number, voice_routing_policy, calling_enabled)."""
_VOICE_SETTINGS = ("phone_number", "voice_routing_policy", "calling_enabled")  # a VoiceSettings' attributes


NO_VOICE: VoiceSettings = (None, None, False)  # a user without a record


def voice_settings(record: TeamsVoiceUser) -> VoiceSettings:
    return record.phone_number, record.voice_routing_policy, record.calling_enabled


def pending_change(before: VoiceSettings, wish: VoiceSettings) -> dict[str, list[Any]] | None:
    """A record's `pending_change` for a change from `before` to `wish` (None: a change of nothing, nothing to undo)."""
    return None if before == wish else {"before": list(before), "wish": list(wish)}


def _settings_before(read: VoiceSettings, pending: Any) -> VoiceSettings:
    """The settings before a change that read `read`: each setting the record still holds as the wish of an attempt
    left pending (`pending`: its process died after recording it) goes back to what it was before that attempt; one
    changed since by another request stays as read."""
    if not (isinstance(pending, dict) and all(isinstance(pending.get(k), list) and len(pending[k]) == len(read)
                                              for k in ("before", "wish"))):
        return read
    number, policy, calling = (was if now == wished else now
                               for now, was, wished in zip(read, pending["before"], pending["wish"]))
    return number, policy, bool(calling)


def record_wish(record: TeamsVoiceUser, wish: VoiceSettings) -> VoiceSettings:
    """Writes a one-user change's wish on the record, with the change as pending (`pending_change`), in the transaction
    that records it (every path: ConnecttoTeams' updateUserDetails and calling switches, Fusion's user writes, bulk
    items, templates, the console); its outcome clears it (`undone_on_failure`, `put_back`). Answers the settings a
    failure puts back: the record as read, but where the record still holds the wish of an attempt that never ended
    (its process died once the wish was committed: the client sends the change again, recovery runs a bulk item
    again), what it held before that attempt (`_settings_before`). Taking that wish for "before", Teams then refusing
    the number (another user's), the refused number stayed on the record, the user's own was listed free and syncs
    pushed the refused one."""
    before = _settings_before(voice_settings(record), record.pending_change)
    record.phone_number, record.voice_routing_policy, record.calling_enabled = wish
    change = pending_change(before, wish)
    if record.pending_change != change:
        record.pending_change = change
    return before


def put_back(record: TeamsVoiceUser, before: VoiceSettings, wrote: VoiceSettings) -> None:
    """The voice settings a change wrote (`wrote`) go back to `before` (`record_wish`'s answer): only those it changed,
    so another request's change of another setting, committed meanwhile, stays. The change is no longer pending."""
    for setting, was, written in zip(_VOICE_SETTINGS, before, wrote):
        if written != was:
            setattr(record, setting, was)
    record.settle()


@asynccontextmanager
async def undone_on_failure(session: AsyncSession, record: TeamsVoiceUser, before: VoiceSettings, *,
                            pbx_before: tuple[PbxUser, str] | None = None) -> AsyncIterator[None]:
    """Around pushing a change already recorded (and committed: `end_transaction`) to Microsoft. Should the push
    raise a domain error (Microsoft refused the change, or failed), the caller is told the change failed, so nothing
    of it stays: the record's voice settings go back to `before` (and the PBX user of `pbx_before` to its number),
    its last sync is FAILED with the error, that is committed, and the error raised again. Else a refused number
    stayed the user's: shown as its own, taken from everyone else, and pushed again by every sync. (Teams is put
    back as it was by `reconcile`.)
    Only the settings this change wrote (the record's on entry, compared with `before`) go back: another request's
    change of another setting, committed meanwhile, stays. (The ORM leaves a column set back to its committed value
    out of its UPDATE, so that held already while the record's copy was the one this change wrote; now it holds
    should the record be read again meanwhile.)
    Either way the change is no longer pending (`record_wish`): cleared here, committed with its outcome."""
    wrote = voice_settings(record)
    try:
        yield
        record.settle()
    except DomainError as exc:
        put_back(record, before, wrote)
        if pbx_before is not None:
            pbx_user, pbx_number = pbx_before
            pbx_user.phone_number = pbx_number
        record.last_sync_status, record.last_sync_detail = "FAILED", {"error": exc.message}
        await end_transaction(session)
        raise


async def set_calling(session: AsyncSession, access: ProvisioningAccess, upn: str, enabled: bool) -> Reconciled:
    record = await _ensure_voice_user(session, access, upn)
    before = record_wish(record, (record.phone_number, record.voice_routing_policy, enabled))
    await end_transaction(session)  # the wish is recorded before Microsoft is called, outside the write transaction
    async with undone_on_failure(session, record, before):
        return await reconcile(access.connection, record)


async def update_user_details(
    session: AsyncSession, access: ProvisioningAccess, upn: str, *, phone_number: str | None | type[...] = ...,
    voice_routing_policy: str | None | type[...] = ...,
) -> Reconciled:
    """Fields left as `...` are unchanged; None clears (no number; the tenant's global policy). Empty text is
    neither: refused, naming the field and what null does."""
    for field, value, null_means in (("phoneNumber", phone_number, "remove the user's number"),
                                     ("voiceRoutingPolicy", voice_routing_policy, "give the tenant's global policy")):
        if isinstance(value, str) and not value.strip():
            raise ValidationFailed(f"{field}: must not be empty; send null to {null_means}, or leave the field out "
                                   "to keep it")
    if voice_routing_policy is not ... and voice_routing_policy is not None:
        voice_routing_policy = per_user_policy(str(voice_routing_policy), "voiceRoutingPolicy")
    if voice_routing_policy not in (..., None):
        # Teams grants only existing per-user policies: say so as the caller's error, before recording anything.
        known = await unknown_policy(access.connection, str(voice_routing_policy))
        if known is not None:
            raise ValidationFailed(
                f"voiceRoutingPolicy: '{voice_routing_policy}' is not a voice routing policy of the tenant "
                f"(known: {known}); create it with /provisioning/provisionDirectRouting")
    number = normalise_phone_number(phone_number) if phone_number not in (..., None) else None  # type: ignore[arg-type]
    if number:
        await _require_teams_phone(access.connection, upn)
        await ownership.require_assignable(session, access.enterprise.id, number)
    record = await _ensure_voice_user(session, access, upn)
    read = voice_settings(record)
    pbx_user: PbxUser | None = None
    if phone_number is not ...:
        pbx_user = await calling_repository.pbx_user_of_voice_user(session, record.id)
        if number:
            await ownership.require_free(session, access.enterprise.id, number, voice_user_id=record.id,
                                         pbx_user_id=pbx_user.id if pbx_user else None)
    policy = read[1] if voice_routing_policy is ... else voice_routing_policy
    before = record_wish(record, (read[0] if phone_number is ... else number, policy, True))  # type: ignore[arg-type]
    pbx_before: tuple[PbxUser, str] | None = None  # the PBX user and its number, when it changes with the Teams one
    if number and pbx_user is not None:
        # Its number before the change: the record's (`record_wish`'s) where it held the record's, as it does after
        # an attempt that died once its wish was committed.
        was = before[0] if pbx_user.phone_number == read[0] and before[0] else pbx_user.phone_number
        pbx_before = pbx_user, was
        pbx_user.phone_number = number  # the PBX user's number is the Teams number
    if number and not read[0]:  # a newly voice-enabled user of a Fusion subscription takes a licence
        await session.flush()
        await licences.check_user_quota(session, access.enterprise.id)
    await end_transaction(session)
    async with undone_on_failure(session, record, before, pbx_before=pbx_before):
        return await reconcile(access.connection, record)


async def _require_teams_phone(connection: TenantConnection, upn: str) -> None:
    """The user must hold Teams Phone before it is given a number (`rules.require_teams_phone`)."""
    admin = connection.directory_admin
    user = await admin.user(upn)
    skus = {s.sku_id.lower(): s for s in await admin.subscribed_skus(refresh=False)}
    rules.require_teams_phone(f"phoneNumber: the user {upn}", rules.licence_plans(user.assigned_sku_ids, skus),
                              hint="assign it in Microsoft 365 first")


async def free_gone_user(session: AsyncSession, enterprise: Enterprise, upn: str, quarantine_seconds: float) -> Reconciled:
    """A sync found the user deleted in Microsoft 365 (`MicrosoftUserGone`): its record loses number and calling, and
    the number goes to quarantine, as when voice state adopts a deletion. (It held its number for ever before.)"""
    number = await voice_records.free_deleted_user(session, enterprise, upn, quarantine_seconds)
    return Reconciled(upn, "USER_DELETED", [f"{number} freed (quarantine)"] if number else [])
