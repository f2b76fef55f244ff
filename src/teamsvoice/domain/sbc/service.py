"""What the SBC must hold, read from teamsvoice's records, and the registration report (with drift).

Desired state: one registration per PBX user (PBX and CallApp users alike: both reach the PBX through the
SBC), registered to its PBX location's SIP domain and proxy port with pbxUserId / pbxAuthUserId and the
SIP password; routing targets: Microsoft's Direct Routing proxies (set 1) and every PBX location
(set 1000 + location id). Functions take a synchronous Session (job steps); the API calls them through
`AsyncSession.run_sync`.
"""

from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from teamsvoice.core.security import Keyring
from teamsvoice.domain.calling import repository as calling_repository
from teamsvoice.domain.calling.models import PbxLocation
from teamsvoice.domain.calling.pbx import SIP_PASSWORD_PURPOSE
from teamsvoice.domain.sbc.repository import UserRow, all_locations, all_pbx_users, all_routes, user_rows
from teamsvoice.domain.sbc.ports import DesiredSbc, HeldRegistration, Registration, RouteTarget, Sbc, SbcUnavailable
from teamsvoice.settings import Settings

MICROSOFT_SET = 1
LOCATION_SET_BASE = 1000
KEY_PREFIX = "tv-"


def registration_key(pbx_user_id: int) -> str:
    return f"{KEY_PREFIX}{pbx_user_id}"


def location_set(location_id: int) -> int:
    return LOCATION_SET_BASE + location_id


def _proxy(location: PbxLocation) -> str:
    port = f":{location.proxy_domain_port}" if location.proxy_domain_port else ""
    return f"sip:{location.canonical_pbx_sip_domain}{port}"


def desired_state(session: Session, keyring: Keyring, *, gateway_fqdn: str, default_expires: int,
                  microsoft_proxies: list[str], enterprise_id: int | None = None) -> DesiredSbc:
    """What the SBC must hold for the whole platform, or (`enterprise_id`) for that enterprise alone: its users, its
    locations and its routes (a user's location and route are its enterprise's), as the whole platform's has them."""
    if enterprise_id is None:
        locations = {loc.id: loc for loc in all_locations(session)}
        routes = {r.id: r for r in all_routes(session)}
        users = all_pbx_users(session)
    else:
        locations = {loc.id: loc for loc in calling_repository.locations_in_step(session, enterprise_id)}
        routes = {r.id: r for r in calling_repository.routes_in_step(session, enterprise_id)}
        users = calling_repository.pbx_users_in_step(session, enterprise_id)
    registrations = []
    for user in users:
        location = locations[user.pbx_location_id]
        route = routes.get(user.direct_route_id) if user.direct_route_id is not None else None
        registrations.append(Registration(
            key=registration_key(user.id), number=user.phone_number,
            gateway_fqdn=route.gateway_fqdn if route else gateway_fqdn,
            pbx_user_id=user.pbx_user_id, pbx_auth_user_id=user.pbx_auth_user_id,
            password=keyring.decrypt(user.sip_password_encrypted, purpose=SIP_PASSWORD_PURPOSE),
            pbx_domain=location.canonical_pbx_sip_domain, proxy=_proxy(location),
            expires=location.reg_expires_value or default_expires))
    targets = [RouteTarget(MICROSOFT_SET, uri, "Microsoft Direct Routing proxy") for uri in microsoft_proxies]
    targets += [RouteTarget(location_set(loc.id), _proxy(loc), f"PBX location {loc.id}") for loc in locations.values()]
    return DesiredSbc(registrations, targets)


NO_SBC = ("No SBC is attached: PBX users are stored but nothing registers them. Set TEAMSVOICE_SBC_KAMAILIO_DB_URL "
          "and TEAMSVOICE_SBC_KAMAILIO_RPC_URL to attach the Kamailio SBC (deploy/kamailio/README.md).")


@dataclass(frozen=True)
class UserRegistration:
    """A PBX user's registration as the SBC reports it: REGISTERED, REGISTERING, PENDING, FAILED, DISABLED (from
    the SBC), NOT_HELD (the SBC holds none), UNKNOWN (the SBC did not answer) or NO_SBC."""
    user: UserRow
    state: str
    held: HeldRegistration | None


@dataclass(frozen=True)
class RegistrationDrift:
    """A difference between teamsvoice and the SBC: NOT_HELD, OUTDATED or REGISTRATION_FAILED of one of
    teamsvoice's users (`teams_user_id`), or ORPHANED, a registration the SBC holds (`registration`, its key, and
    `number`) for a user teamsvoice no longer has."""
    kind: str
    detail: str
    teams_user_id: str | None = None
    registration: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class RegistrationReport:
    sbc_attached: bool
    sbc: str | None
    reachable: bool
    message: str | None
    users: list[UserRegistration]
    drift: list[RegistrationDrift]


def report(users: list[UserRow], held: list[HeldRegistration] | None, *, sbc: str | None, error: str | None,
           all_keys: set[str] | None = None) -> RegistrationReport:
    """Each PBX user's registration as the SBC reports it. `held` is None when there is no SBC or it did not
    answer. Drift: a user the SBC does not hold, or holds differently (a change not yet applied), a failed
    registration, and (when `all_keys` names every user teamsvoice has) a registration held for a user
    teamsvoice no longer has."""
    if sbc is None:
        return RegistrationReport(False, None, False, NO_SBC, [UserRegistration(u, "NO_SBC", None) for u in users], [])
    if held is None:
        return RegistrationReport(True, sbc, False,
                                  f"The SBC did not answer: {error}. Changes wait and are applied when it is back.",
                                  [UserRegistration(u, "UNKNOWN", None) for u in users], [])
    by_key = {h.key: h for h in held}
    rows, drift = [], []
    for user in users:
        seen = by_key.get(registration_key(user.pbx_user))
        if seen is None:
            rows.append(UserRegistration(user, "NOT_HELD", None))
            drift.append(RegistrationDrift("NOT_HELD", "teamsvoice has this PBX user; the SBC holds no registration "
                                           "for it", teams_user_id=user.teams_user_id))
            continue
        rows.append(UserRegistration(user, seen.state, seen))
        if not seen.matches:
            drift.append(RegistrationDrift("OUTDATED", "the SBC holds an older configuration of this user (a change "
                                           "is being applied)", teams_user_id=user.teams_user_id))
        elif seen.state == "FAILED":
            drift.append(RegistrationDrift("REGISTRATION_FAILED", f"the PBX refused or did not answer the "
                                           f"registration to {seen.proxy}", teams_user_id=user.teams_user_id))
    if all_keys is not None:
        for h in held:
            if h.key not in all_keys:
                drift.append(RegistrationDrift("ORPHANED", f"the SBC registers {h.pbx_user_id}@{h.pbx_domain} for a "
                                               "user teamsvoice no longer has", registration=h.key, number=h.number))
    return RegistrationReport(True, sbc, True, None, rows, drift)


def _desired(session: Session, keyring: Keyring, settings: Settings, enterprise_id: int | None = None) -> DesiredSbc:
    return desired_state(session, keyring, gateway_fqdn=settings.sbc_gateway_fqdn,
                         default_expires=settings.sbc_registration_expires,
                         microsoft_proxies=settings.sbc_microsoft_proxies, enterprise_id=enterprise_id)


def _held(sbc: Sbc, desired: DesiredSbc) -> tuple[list[HeldRegistration] | None, str | None]:
    try:
        return sbc.held(desired), None
    except SbcUnavailable as exc:
        return None, exc.message


def _compose(users: list[UserRow], sbc: Sbc, held: list[HeldRegistration] | None, error: str | None,
             enterprise_id: int | None) -> RegistrationReport:
    keys = {registration_key(u.pbx_user) for u in users}
    if held is None:
        return report(users, None, sbc=sbc.name, error=error)
    if enterprise_id is not None:
        return report(users, [h for h in held if h.key in keys], sbc=sbc.name, error=None)
    return report(users, held, sbc=sbc.name, error=None, all_keys=keys)


def registration_status(session: Session, keyring: Keyring, sbc: Sbc | None, settings: Settings,
                        enterprise_id: int | None = None) -> RegistrationReport:
    """The report for one enterprise (registrations held for other users are not shown), or for the whole
    platform with `enterprise_id` None (then registrations held for users teamsvoice no longer has are drift)."""
    users = user_rows(session, enterprise_id)
    if sbc is None:
        return report(users, None, sbc=None, error=None)
    held, error = _held(sbc, _desired(session, keyring, settings, enterprise_id))
    return _compose(users, sbc, held, error, enterprise_id)


async def enterprise_registration_status(session: AsyncSession, keyring: Keyring, sbc: Sbc | None, settings: Settings,
                                         enterprise_id: int) -> RegistrationReport:
    """The same for the API: the SBC is asked from a worker thread, never on the event loop."""
    users = await session.run_sync(lambda s: user_rows(s, enterprise_id))
    if sbc is None:
        return report(users, None, sbc=None, error=None)
    # (that enterprise's desired state alone: `_compose` reports none of the others' registrations, and the SBC
    # compares each registration it holds with the desired one of its key)
    desired = await session.run_sync(lambda s: _desired(s, keyring, settings, enterprise_id))
    held, error = await anyio.to_thread.run_sync(_held, sbc, desired)
    return _compose(users, sbc, held, error, enterprise_id)
