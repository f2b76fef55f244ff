"""getSBCRegistrationsForEnterprise asks the SBC with the desired state of that enterprise alone (both backends): it
built the whole platform's (every PBX user, location and route read, every SIP password decrypted) to answer
one enterprise, on the event loop. The answer is the one the whole platform's desired state gives."""

from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import event, select

from teamsvoice.core.security import Keyring
from teamsvoice.domain.calling.models import DirectRoute, PbxLocation, PbxUser
from teamsvoice.domain.calling.pbx import SIP_PASSWORD_PURPOSE
from teamsvoice.domain.orgs.models import Enterprise, PbxType, Reseller, SbcGateway
from teamsvoice.domain.sbc import service
from teamsvoice.domain.sbc.ports import DesiredSbc, HeldRegistration, Registration
from teamsvoice.domain.sbc.repository import user_rows
from teamsvoice.settings import Settings
from tests.support.database import rolled_back_session


@dataclass(frozen=True)
class CountingKeyring(Keyring):
    decrypted: list[str] = field(default_factory=list)

    def decrypt(self, token: str, *, purpose: str) -> str:
        self.decrypted.append(token)
        return super().decrypt(token, purpose=purpose)


@dataclass
class RecordingSbc:
    """An SBC holding `holds` (key -> the registration it was given), answering as Kamailio does: every
    registration of ours it holds, `matches` when it is the desired one."""

    holds: dict[str, Registration]
    asked: list[DesiredSbc] = field(default_factory=list)
    name: str = "recording"

    def held(self, desired: DesiredSbc) -> list[HeldRegistration]:
        self.asked.append(desired)
        wanted = {r.key: r for r in desired.registrations}
        return [HeldRegistration(key=key, number=r.number, pbx_user_id=r.pbx_user_id, pbx_domain=r.pbx_domain,
                                 proxy=r.proxy, state="REGISTERED", refresh_in=30,
                                 matches=key in wanted and wanted[key] == r) for key, r in sorted(self.holds.items())]


async def _enterprise(session, keyring: Keyring, reseller: Reseller,  # type: ignore[no-untyped-def]
                      name: str, users: int, first_number: int) -> Enterprise:
    """An enterprise with two locations, a direct route and `users` PBX users (every other one on the route)."""
    enterprise = Enterprise(reseller_id=reseller.id, enterprise_name=name)
    pbx_type = PbxType(reseller_id=reseller.id, pbx_name=f"{name}-pbx", pbx_label=name)
    gateway = SbcGateway(reseller_id=reseller.id, region="EU", fqdn=f"sbc.{name}.example")
    session.add_all([enterprise, pbx_type, gateway])
    await session.flush()
    locations = [PbxLocation(enterprise_id=enterprise.id, pbx_type_id=pbx_type.id, pbx_location=f"{name}-{n}",
                             pbx_label=name, canonical_pbx_sip_domain=f"pbx{n}.{name}.example",
                             proxy_domain_port=5060 * n, reg_expires_value=300 * n) for n in (0, 1)]
    route = DirectRoute(enterprise_id=enterprise.id, sbc_gateway_id=gateway.id, tenant_id="t", sip_port=5061,
                        gateway_fqdn=f"dr.{name}.example", pstn_usage="u", voice_route="r", number_pattern=".*",
                        voice_routing_policy="p")
    session.add_all([*locations, route])
    await session.flush()
    session.add_all(PbxUser(enterprise_id=enterprise.id, kind="PBX", teams_user_id=f"u{n}@{name}.example",
                            microsoft_user_id=f"m{n}", pbx_location_id=locations[n % 2].id,
                            direct_route_id=route.id if n % 2 else None,
                            phone_number=f"+32507980{first_number + n:04d}",
                            pbx_user_id=str(100 + n), pbx_auth_user_id=f"a{100 + n}",
                            sip_password_encrypted=keyring.encrypt(f"Secret-{name}-{n}", purpose=SIP_PASSWORD_PURPOSE))
                    for n in range(users))
    await session.flush()
    return enterprise


async def test_one_enterprises_registrations_are_asked_with_its_desired_state_alone(database_url: str,
                                                                                    tmp_path: Path) -> None:
    keyring = CountingKeyring(b"k" * 32)
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    async with rolled_back_session(database_url) as session:
        reseller = Reseller(name="sbc-per-enterprise", level="RESELLER", registered_redirect_urls=[])
        session.add(reseller)
        await session.flush()
        ours = await _enterprise(session, keyring, reseller, "ours", 3, 0)
        for n in range(2):
            await _enterprise(session, keyring, reseller, f"other{n}", 6, 100 * (n + 1))
        # The whole platform's desired state, as the SBC sync reads it.
        whole = await session.run_sync(lambda s: service.desired_state(
            s, keyring, gateway_fqdn=settings.sbc_gateway_fqdn, default_expires=settings.sbc_registration_expires,
            microsoft_proxies=settings.sbc_microsoft_proxies))
        by_key = {r.key: r for r in whole.registrations}
        mine = await session.run_sync(lambda s: user_rows(s, ours.id))
        keys = [service.registration_key(u.pbx_user) for u in mine]
        # The SBC holds our first user as desired, our second with an older password, not our third; and other
        # enterprises' users and a registration of a user gone.
        stale = replace(by_key[keys[1]], password="older")
        holds = {keys[0]: by_key[keys[0]], keys[1]: stale, "tv-999999": stale}
        holds |= {k: r for k, r in by_key.items() if k not in keys}
        sbc = RecordingSbc(holds)
        expected = service._compose(mine, sbc, sbc.held(whole), None, ours.id)  # as the whole platform's answered

        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        engine = session.bind.sync_engine  # type: ignore[union-attr]
        keyring.decrypted.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = await service.enterprise_registration_status(session, keyring, sbc, settings, ours.id)
        finally:
            event.remove(engine, "before_cursor_execute", count)

        assert found == expected
        assert [(u.user.teams_user_id, u.state, u.held and u.held.matches) for u in found.users] == [
            ("u0@ours.example", "REGISTERED", True), ("u1@ours.example", "REGISTERED", False),
            ("u2@ours.example", "NOT_HELD", None)]
        asked = sbc.asked[-1]
        # Ours alone, as the whole platform's desired state has them.
        assert [r.key for r in asked.registrations] == keys and asked.registrations == [by_key[k] for k in keys]
        assert len(keyring.decrypted) == len(keys)  # only our users' SIP passwords
        our_locations = await session.scalars(select(PbxLocation.id).where(PbxLocation.enterprise_id == ours.id))
        assert {t.set_id for t in asked.targets} == {service.MICROSOFT_SET} | {
            service.location_set(n) for n in our_locations}
        assert len(statements) <= 4, statements  # the users' rows, then their locations, routes and PBX users
        assert len(whole.registrations) >= 15  # (the other enterprises' users were there to be read)
