"""PBX locations ("Configure PBX") and PBX/CallApp users ("configureUser", "configureValetUser").

A user configured here is written to teamsvoice only; /provisioning/syncTeamsRegistrations pushes it to
Teams. A user with a direct route gets a TeamsVoiceUser (number as Direct Routing, Enterprise Voice, the
direct route's voice routing policy); a CallApp user without one (directRouteId -1) keeps Teams voice alone.
"""

import re
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from teamsvoice.core.limits import check_name, is_user_principal_name, shown
from teamsvoice.core.security import Keyring
from teamsvoice.domain.calling import repository
from teamsvoice.domain.calling.models import DirectRoute, PbxLocation, PbxUser
from teamsvoice.domain.fusion import licences
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.orgs.models import Enterprise, PbxType
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import normalise_phone_number

SIP_PASSWORD_PURPOSE = "pbx-sip-password"
PORTAL_PASSWORD_PURPOSE = "pbx-portal-password"
PRESENCE_PACKAGE_TYPES = ("call-info", "dialog", "presence")
LOCATION_FLAGS = (
    "apiAccessEnabled", "apiIntegrationEnabled", "topologyHiding", "oldStyleHold", "metaSwitchSubscriptionCompatibility",
    "sipWaitForAlegAck", "enforceCodecsOnInbound", "rejectCalling", "acceptsEncodedFeatureCode",
    "convertHistoryInfoToDiversion", "escapeRequestUri", "enableMWIEvents",
)
CALL_POLICY_FIELDS = ("callPolicyName", "callPolicyCNAM", "forwardedCallsCallerId")
USER_OPTIONS = ("useTeamsVoicemail", "useEnterpriseDialPlan", "sipAutoProvisioningEnabled", "useAudioConferenceVRP")
# `\Z`, not `$`: `$` also matches before a final newline, and "pbx.example.com\n" reached the SBC's tables.
_HOSTNAME = re.compile(r"^(?=.{1,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
# What the SBC holds (sbc/kamailio.py: uacreg's columns are 64 characters; its expiry a 32-bit integer). A value
# longer, or with a control character (CR/LF would inject SIP headers into the REGISTERs), is refused here.
SIP_FIELD_MAX = 64
REG_EXPIRES_MAX = 2**31 - 1
# A registration refreshed more often than every minute is load the PBX did not ask for (registrars answer "423
# Interval Too Brief" below their minimum, usually 60 s); 0 keeps the SBC's default.
REG_EXPIRES_MIN = 60
# What a SIP URI's user part (and a digest username) may hold unescaped, less ";", "?", "/" and ":", which the SBC
# would read as URI parameters, headers or a password: pbxUserId "105>;lr;x=<sip:attacker.example>" was written
# into the REGISTERs' To header as it came, and pbxAuthUserId '105", realm="evil' into their Authorization.
_SIP_USER = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,%]+\Z")


def _check_call_policy(call_policy: dict[str, str] | None) -> None:
    for field, value in (call_policy or {}).items():
        if isinstance(value, str):
            check_name(f"callPolicy.{field}", value)


# --- PBX locations ---------------------------------------------------------------------------------


@dataclass
class LocationDraft:
    pbx_location: str
    pbx_type: str
    canonical_pbx_sip_domain: str
    pbx_label: str | None = None
    proxy_domain_port: int = 0
    presence_package_type: str = "call-info"
    reg_expires_value: int = 0
    call_policy: dict[str, str] | None = None
    flags: dict[str, bool] | None = None


async def _pbx_type(session: AsyncSession, enterprise: Enterprise, name_or_id: str) -> PbxType:
    types = await repository.pbx_types_by_ids(session, enterprise.pbx_ids or [])
    found = next((t for t in types if t.pbx_name.lower() == name_or_id.lower() or str(t.id) == name_or_id), None)
    if found is None:
        raise ValidationFailed(
            f"pbxType: '{shown(name_or_id)}' is not a PBX type of the enterprise; allowed: {[t.pbx_name for t in types]}")
    return found


async def save_location(session: AsyncSession, enterprise: Enterprise, draft: LocationDraft,
                        location_id: int | None) -> PbxLocation:
    if "PBX" not in enterprise.services:
        raise PreconditionFailed(f"Enterprise {enterprise.id} does not have the PBX service; add it with /reseller/editEnterprise")
    name = draft.pbx_location.strip()
    if not name:
        raise ValidationFailed("pbxLocation: must not be empty")
    if not _HOSTNAME.match(draft.canonical_pbx_sip_domain):
        raise ValidationFailed(f"canonicalPbxSIPDomain: {draft.canonical_pbx_sip_domain[:100]!r} is not a host name")
    if len(draft.canonical_pbx_sip_domain) > SIP_FIELD_MAX:
        raise ValidationFailed(f"canonicalPbxSIPDomain: at most {SIP_FIELD_MAX} characters (what the SBC holds)")
    if not 0 <= draft.proxy_domain_port <= 65535:
        raise ValidationFailed("proxyDomainPort: must be between 0 and 65535")
    if draft.reg_expires_value != 0 and not REG_EXPIRES_MIN <= draft.reg_expires_value <= REG_EXPIRES_MAX:
        raise ValidationFailed(f"regExpiresValue: must be 0 (the SBC's default) or between {REG_EXPIRES_MIN} and "
                               f"{REG_EXPIRES_MAX} seconds")
    _check_call_policy(draft.call_policy)
    if draft.presence_package_type not in PRESENCE_PACKAGE_TYPES:
        raise ValidationFailed(f"presencePackageType: must be one of {list(PRESENCE_PACKAGE_TYPES)}")
    pbx_type = await _pbx_type(session, enterprise, draft.pbx_type)
    domain = draft.canonical_pbx_sip_domain.lower()
    if location_id is None:
        location = await repository.location_named(session, enterprise.id, name)
        if location is None:
            await _own_pbx(session, enterprise, domain, None)
            location = PbxLocation(enterprise_id=enterprise.id, pbx_location=name)
            session.add(location)
        else:
            location = await _moved_with_its_extensions(session, enterprise, location, domain)
    else:
        location = await session.get(PbxLocation, location_id)
        if location is None or location.enterprise_id != enterprise.id:
            raise NotFound(f"PBX location {location_id} not found")
        if await repository.location_name_taken(session, enterprise.id, name, other_than=location.id):
            raise Conflict(f"pbxLocation: another PBX location is named '{name}'")
        location = await _moved_with_its_extensions(session, enterprise, location, domain)
        location.pbx_location = name
    location.pbx_type_id = pbx_type.id
    location.pbx_label = draft.pbx_label or pbx_type.pbx_label
    location.canonical_pbx_sip_domain = domain
    location.proxy_domain_port = draft.proxy_domain_port
    location.presence_package_type = draft.presence_package_type
    location.reg_expires_value = draft.reg_expires_value
    location.call_policy = {k: (draft.call_policy or {}).get(k) for k in CALL_POLICY_FIELDS}
    location.flags = {k: bool((draft.flags or {}).get(k, False)) for k in LOCATION_FLAGS}
    await session.flush()
    return location


async def _moved_with_its_extensions(session: AsyncSession, enterprise: Enterprise, location: PbxLocation,
                                     domain: str) -> PbxLocation:
    """The location read afresh with the PBX at `domain` locked (`repository.lock_pbx`); 409 when it moves there
    (from another canonicalPbxSIPDomain) and that PBX is another enterprise's (`_own_pbx`), or with a user whose
    extension another user of that PBX has."""
    await repository.lock_pbx(session, domain, location.id)
    location = await repository.location_read_afresh(session, location.id)
    if location is None:  # deleted meanwhile
        raise NotFound("PBX location not found (deleted meanwhile)")
    if location.canonical_pbx_sip_domain != domain:
        await _own_pbx(session, enterprise, domain, location.id)
        clash = await repository.extension_clash(session, location.id, domain)
        if clash is not None:
            mine, holder, holder_location = clash
            raise _extension_taken(enterprise, "canonicalPbxSIPDomain", mine.pbx_user_id, domain, holder, holder_location,
                                   moving=f"{mine.teams_user_id} of this location")
    return location


async def _own_pbx(session: AsyncSession, enterprise: Enterprise, domain: str, location_id: int | None) -> None:
    """Locks the PBX at `domain` (`repository.lock_pbx`) and refuses it (409) when it is another reseller's: a PBX
    (its canonicalPbxSIPDomain) is one reseller's, whose enterprises may share it (a provider's hosted PBX, one
    extension per user across them). The SBC registers each user as extension@domain: another reseller's enterprise
    giving a location that domain registered its users at that PBX, and its configureUser answers told which of the
    first reseller's extensions exist (and took the free ones from it). The answer names only the domain, as sent."""
    await repository.lock_pbx(session, domain, location_id)
    if await repository.domain_of_another_reseller(session, domain, enterprise.reseller_id):
        raise Conflict(f"canonicalPbxSIPDomain: {domain} is another reseller's PBX; a PBX (its SIP domain) is one "
                       "reseller's")


def _extension_taken(enterprise: Enterprise, field: str, extension: str, domain: str, holder: PbxUser,
                     holder_location: PbxLocation, *, moving: str | None = None) -> Conflict:
    """An extension is one user's at a PBX (its canonicalPbxSIPDomain, whichever locations and enterprises have it):
    the SBC registers each user as extension@domain, and two registrations of one extension made the PBX ring both
    Teams users. The holder is named to its own enterprise only."""
    if holder.enterprise_id != enterprise.id:
        whose = "another enterprise's user's PBX extension"
    else:
        whose = (f"{holder.teams_user_id}'s PBX extension (at PBX location '{holder_location.pbx_location}', "
                 f"id {holder_location.id})")
    wanted = f", and {moving} has it" if moving else ""
    return Conflict(f"{field}: extension {extension} is already {whose}{wanted}; the locations at {domain} are one PBX, "
                    "where an extension is one user's")


async def locations_of(session: AsyncSession, enterprise: Enterprise) -> list[PbxLocation]:
    return await repository.locations_of(session, enterprise.id)


async def location_in_scope(session: AsyncSession, enterprise_ids: set[int], location_id: int) -> PbxLocation:
    location = await session.get(PbxLocation, location_id)
    if location is None or location.enterprise_id not in enterprise_ids:
        raise NotFound(f"PBX location {location_id} not found")
    return location


async def delete_location(session: AsyncSession, location: PbxLocation) -> None:
    users = await repository.users_at_location(session, location.id)
    if users:
        raise Conflict(f"PBX location {location.id} still has {users} user(s); move or remove them first")
    await session.delete(location)
    await session.flush()


async def pbx_type_name(session: AsyncSession, location: PbxLocation) -> str | None:
    """The name of the location's PBX type (None if the type was removed)."""
    pbx_type = await session.get(PbxType, location.pbx_type_id)
    return pbx_type.pbx_name if pbx_type else None


# --- PBX and CallApp users -------------------------------------------------------------------------


@dataclass
class UserDraft:
    kind: str  # PBX or VALET
    teams_user_id: str
    direct_route_id: int
    password: str
    re_password: str | None
    pbx_auth_user_id: str
    pbx_user_id: str
    pbx_location: str
    phone_number: str
    portal_login_name: str | None = None
    portal_password: str | None = None
    user_type: str | None = None
    user_tag: str | None = None
    login_id: str | None = None
    call_policy: dict[str, str] | None = None
    options: dict[str, bool] | None = None


async def _location_for(session: AsyncSession, enterprise: Enterprise, reference: str) -> PbxLocation:
    location = await repository.location_by_reference(session, enterprise.id, reference)
    if location is None:
        raise NotFound(f"pbxLocation: no PBX location '{reference}' in enterprise {enterprise.id}")
    return location


async def _pbx_locked(session: AsyncSession, location: PbxLocation) -> PbxLocation:
    """The location read afresh with its PBX locked until commit (`repository.lock_pbx`), so that two requests giving
    one extension at once see each other's user: read again, had another request moved it to another PBX meanwhile."""
    domain = location.canonical_pbx_sip_domain
    while True:
        await repository.lock_pbx(session, domain, location.id)
        fresh = await repository.location_read_afresh(session, location.id)
        if fresh is None:
            raise NotFound(f"pbxLocation: PBX location {location.id} was deleted meanwhile")
        if fresh.canonical_pbx_sip_domain == domain:
            return fresh
        domain = fresh.canonical_pbx_sip_domain  # (its row is locked now: it moves no more)


def check_user_draft(draft: UserDraft) -> str:
    """Input rules that need no database; returns the E.164 number."""
    if not is_user_principal_name(draft.teams_user_id.strip()):  # (Microsoft's form: it is looked up there)
        raise ValidationFailed(f"teamsUserId: '{shown(draft.teams_user_id)}' is not a valid user principal name "
                               "(name@domain; before the @ letters, digits and ' . _ ! # ^ ~ + & $ = - only)")
    if not draft.password:
        raise ValidationFailed("password: must not be empty")
    if draft.re_password is not None and draft.re_password != draft.password:
        raise ValidationFailed("rePassword: does not match password")
    for wire, value in (("pbxAuthUserId", draft.pbx_auth_user_id), ("pbxUserId", draft.pbx_user_id),
                        ("pbxLocation", draft.pbx_location)):
        if not value.strip():
            raise ValidationFailed(f"{wire}: must not be empty")
    for wire, value in (("pbxAuthUserId", draft.pbx_auth_user_id), ("pbxUserId", draft.pbx_user_id),
                        ("password", draft.password)):  # what the SBC registers with (uacreg)
        check_name(wire, value, SIP_FIELD_MAX)
    for wire, value in (("pbxAuthUserId", draft.pbx_auth_user_id), ("pbxUserId", draft.pbx_user_id)):
        if not _SIP_USER.match(value.strip()):
            raise ValidationFailed(f"{wire}: {value[:40]!r} is not a SIP user name: letters, digits and - _ . ! ~ * ' ( ) "
                                   "& = + $ , % only (escape others, e.g. # as %23)")
    for wire, optional, longest in (("userTag", draft.user_tag, 200), ("loginID", draft.login_id, 200),
                                    ("portalLoginName", draft.portal_login_name, 200), ("userType", draft.user_type, 40)):
        if optional is not None:
            check_name(wire, optional, longest)  # (the columns' lengths: userType's is 40)
    _check_call_policy(draft.call_policy)
    if draft.kind == "PBX" and draft.direct_route_id < 0:
        raise ValidationFailed("directRouteId: a PBX user needs a direct route (see /provisioning/provisionDirectRouting)")
    if draft.kind == "VALET" and draft.direct_route_id < -1:
        raise ValidationFailed("directRouteId: must be a direct route id, or -1 for none")
    return normalise_phone_number(draft.phone_number)


async def _check_number_free(session: AsyncSession, enterprise: Enterprise, number: str, user: PbxUser | None,
                             voice: TeamsVoiceUser | None) -> None:
    await ownership.require_free(session, enterprise.id, number, voice_user_id=voice.id if voice else None,
                                 pbx_user_id=user.id if user else None)


class ConfiguredUser(NamedTuple):
    user: PbxUser
    changed: bool  # anything of the user changed
    sync_required: bool  # a Sync Teams Users would change the user in Teams (see `_configure_user`)


async def configure_user(session: AsyncSession, keyring: Keyring, enterprise: Enterprise, draft: UserDraft,
                         number: str, microsoft_user_id: str) -> ConfiguredUser:
    """Create or update (by teamsUserId) the user. Returns it, whether anything changed and whether a sync is needed."""
    try:
        return await _configure_user(session, keyring, enterprise, draft, number, microsoft_user_id)
    except IntegrityError as exc:  # a concurrent request took the number or the user first
        raise Conflict(f"teamsUserId/phoneNumber: changed by a concurrent request ({draft.teams_user_id}, {number}); "
                       "try again") from exc


async def _configure_user(session: AsyncSession, keyring: Keyring, enterprise: Enterprise, draft: UserDraft,
                          number: str, microsoft_user_id: str) -> ConfiguredUser:
    upn = draft.teams_user_id.strip().lower()
    location = await _pbx_locked(session, await _location_for(session, enterprise, draft.pbx_location))
    route: DirectRoute | None = None
    if draft.direct_route_id >= 0:
        route = await session.get(DirectRoute, draft.direct_route_id)
        if route is None or route.enterprise_id != enterprise.id:
            raise NotFound(f"directRouteId: direct route {draft.direct_route_id} not found in enterprise {enterprise.id}")
    user = await repository.pbx_user_by_upn(session, enterprise.id, upn)
    voice = await voice_users.find(session, enterprise.id, upn)
    await _check_number_free(session, enterprise, number, user, voice)
    extension, domain = draft.pbx_user_id.strip(), location.canonical_pbx_sip_domain
    held = await repository.extension_holder(session, domain, extension, other_than_user=user.id if user else None)
    if held is not None:
        raise _extension_taken(enterprise, "pbxUserId", extension, domain, *held)
    if user is None:
        if enterprise.user_limit:
            if await repository.pbx_user_count(session, enterprise.id) >= enterprise.user_limit:
                raise PreconditionFailed(f"The enterprise's user limit ({enterprise.user_limit}) is reached")
        user = PbxUser(enterprise_id=enterprise.id, teams_user_id=upn, kind=draft.kind, sip_password_encrypted="")
        session.add(user)
    elif user.kind != draft.kind and draft.kind == "PBX":
        user.kind = "PBX"  # a CallApp user configured as a PBX user becomes one; the reverse keeps PBX
    before, teams_before = _fingerprint(keyring, user, voice), _teams_wish(voice)
    user.microsoft_user_id = microsoft_user_id
    user.pbx_location_id, user.direct_route_id = location.id, route.id if route else None
    user.phone_number, user.pbx_user_id, user.pbx_auth_user_id = number, draft.pbx_user_id.strip(), draft.pbx_auth_user_id.strip()
    if not user.sip_password_encrypted or keyring.decrypt(user.sip_password_encrypted, purpose=SIP_PASSWORD_PURPOSE) != draft.password:
        user.sip_password_encrypted = keyring.encrypt(draft.password, purpose=SIP_PASSWORD_PURPOSE)
    user.portal_login_name = draft.portal_login_name or None
    if draft.portal_password:
        user.portal_password_encrypted = keyring.encrypt(draft.portal_password, purpose=PORTAL_PASSWORD_PURPOSE)
    user.user_type, user.user_tag, user.login_id = draft.user_type, draft.user_tag or None, draft.login_id
    user.call_policy = {k: (draft.call_policy or {}).get(k) for k in CALL_POLICY_FIELDS}
    user.options = {k: bool((draft.options or {}).get(k, False)) for k in USER_OPTIONS}
    if route is not None:
        voice = await voice_users.find_or_add(session, enterprise.id, upn, microsoft_user_id)
        gains_number = not voice.phone_number
        voice.phone_number, voice.voice_routing_policy, voice.calling_enabled = number, route.voice_routing_policy, True
        await session.flush()
        if gains_number:  # a newly voice-enabled user of a Fusion subscription takes a licence (400 naming it)
            await licences.check_user_quota(session, enterprise.id)
        user.voice_user_id = voice.id
    elif voice is not None and user.voice_user_id == voice.id:
        # No direct route any more: teamsvoice stops managing the user's Teams voice; the number is released.
        voice.phone_number, voice.calling_enabled = None, False
    await session.flush()
    # A sync pushes the user's voice record to Teams: needed while a direct route manages it, and when this call
    # changed the record (the route taken away: the next sync removes the user's Teams number).
    sync_required = user.direct_route_id is not None or _teams_wish(voice) != teams_before
    return ConfiguredUser(user, _fingerprint(keyring, user, voice) != before, sync_required)


def _teams_wish(voice: TeamsVoiceUser | None) -> tuple:
    """What a sync makes of the user in Teams."""
    return (voice.phone_number, voice.voice_routing_policy, voice.calling_enabled) if voice else (None, None, None)


def _fingerprint(keyring: Keyring, user: PbxUser, voice: TeamsVoiceUser | None) -> tuple:
    return (user.pbx_location_id, user.direct_route_id, user.phone_number, user.pbx_user_id, user.pbx_auth_user_id,
            user.sip_password_encrypted, user.portal_login_name, user.user_type, user.user_tag, user.login_id,
            repr(user.call_policy), repr(user.options), user.kind, *_teams_wish(voice))


async def user_in_scope(session: AsyncSession, enterprise_ids: set[int], user_id: int) -> PbxUser:
    user = await session.get(PbxUser, user_id)
    if user is None or user.enterprise_id not in enterprise_ids:
        raise NotFound(f"PBX user {user_id} not found")
    return user


async def delete_user(session: AsyncSession, user: PbxUser) -> None:
    """The user stops being a PBX user: its SBC registration is removed (expires 0) by the SBC sync, and
    teamsvoice stops managing its Teams voice (the number is released; syncTeamsRegistrations pushes it)."""
    if user.voice_user_id is not None:
        voice = await session.get(TeamsVoiceUser, user.voice_user_id)
        if voice is not None:
            voice.phone_number, voice.calling_enabled = None, False
    await session.delete(user)
    await session.flush()


async def users_of(session: AsyncSession, enterprise_id: int) -> list[PbxUser]:
    return await repository.pbx_users_of(session, enterprise_id)
