"""The tenant voice rules (domain/tenant_voice): licences, the SBC domain, and converging Direct Routing objects,
against an in-memory tenant (tests/unit/voice_fakes.py)."""

from teamsvoice.domain.tenant_voice import configuration
from teamsvoice.domain.tenant_voice.rules import gives_voice, resource_account_skus, teams_phone_skus, voice_domain
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from teamsvoice.microsoft.directory import SubscribedSku, TenantDomain
from tests.unit.voice_fakes import FakeTenantVoice

FQDN = "sbc1.contoso.com"
ROUTE = VoiceRoute("teamsvoice", ".*", [FQDN], ["teamsvoice"], 0)
POLICY = VoiceRoutingPolicy("teamsvoice", ["teamsvoice"])
WANTED = RoutingInventory([PstnGateway(FQDN, 5061, True)], ["teamsvoice"], [ROUTE], [POLICY])


class FakeDirectRouting(FakeTenantVoice):
    """The same in-memory tenant behind the DirectRouting port."""

    async def inventory(self) -> RoutingInventory:
        return await self.routing()

    async def policy_names(self) -> list[str]:
        return list(self.policies)

    async def has_policy(self, name: str) -> bool:
        bare = name[4:] if name[:4].lower() == "tag:" else name
        return bare.lower() in {p.lower() for p in self.policies}

    async def routing_policies(self) -> list[VoiceRoutingPolicy]:
        return (await self.routing()).policies


def sku(part: str, plans: tuple[str, ...], prepaid: int = 10, consumed: int = 0, status: str = "Enabled") -> SubscribedSku:
    return SubscribedSku(f"id-{part}", part, prepaid, consumed, status, plans)


# --- licences -------------------------------------------------------------------------------------------


def test_teams_phone_comes_from_the_mcoev_plan_in_any_enabled_sku() -> None:
    skus = [sku("MCOEV", ("MCOEV",)), sku("SPE_E5", ("TEAMS1", "MCOEV")), sku("SPE_E3", ("TEAMS1",)),
            sku("PHONESYSTEM_VIRTUALUSER", ("MCOEV_VIRTUALUSER",)), sku("OLD_E5", ("MCOEV",), status="Suspended"),
            sku("EMPTY", ("MCOEV",), prepaid=0)]
    assert [s.sku_part_number for s in teams_phone_skus(skus)] == ["MCOEV", "SPE_E5", "EMPTY"]
    assert [s.sku_part_number for s in resource_account_skus(skus)] == ["PHONESYSTEM_VIRTUALUSER"]


def test_resource_account_licences_never_make_a_tenant_ready_for_users() -> None:
    assert teams_phone_skus([sku("PHONESYSTEM_VIRTUALUSER", ("MCOEV_VIRTUALUSER",))]) == []


def test_a_user_is_voice_capable_with_teams_phone_or_the_resource_account_plan() -> None:
    assert gives_voice({"SPE_E5", "MCOEV", "TEAMS1"})
    assert gives_voice({"PHONESYSTEM_VIRTUALUSER"})
    assert not gives_voice({"SPE_E3", "TEAMS1"})


# --- the SBC domain -----------------------------------------------------------------------------------


def domain(name: str, verified: bool = True, default: bool = False, initial: bool = False) -> TenantDomain:
    return TenantDomain(name, verified, default, initial)


def test_the_sbc_domain_is_the_default_verified_custom_domain() -> None:
    assert voice_domain([domain("contoso.onmicrosoft.com", initial=True), domain("fabrikam.com"),
                         domain("contoso.com", default=True)]) == "contoso.com"


def test_without_a_custom_default_the_first_verified_custom_domain_is_used() -> None:
    assert voice_domain([domain("contoso.onmicrosoft.com", default=True, initial=True), domain("pending.com", verified=False),
                         domain("fabrikam.com")]) == "fabrikam.com"


def test_a_tenant_with_only_its_initial_domain_has_no_sbc_domain() -> None:
    assert voice_domain([domain("contoso.onmicrosoft.com", default=True, initial=True), domain("x.com", verified=False)]) is None


# --- configuration --------------------------------------------------------------------------------------


async def test_ensure_creates_what_is_missing_in_order_and_is_idempotent() -> None:
    tenant = FakeDirectRouting()
    done = await configuration.ensure(tenant, WANTED)
    assert done == ["PSTN gateway sbc1.contoso.com created", "PSTN usage teamsvoice added",
                    "voice route teamsvoice created", "voice routing policy teamsvoice created"]
    assert tenant.gateways[FQDN] == PstnGateway(FQDN, 5061, True)
    calls = len(tenant.calls)
    assert await configuration.ensure(tenant, WANTED) == []
    assert tenant.calls[calls:] == ["routing"]  # only the read


async def test_ensure_corrects_objects_changed_by_hand_and_leaves_the_rest_alone() -> None:
    tenant = FakeDirectRouting()
    await configuration.ensure(tenant, WANTED)
    other = VoiceRoute("admin-route", "^\\+1", ["other.contoso.com"], ["admin"], 1)
    tenant.routes["admin-route"] = other
    tenant.gateways[FQDN] = PstnGateway(FQDN, 5067, False)  # disabled and moved in the Teams admin center
    tenant.routes["teamsvoice"] = VoiceRoute("teamsvoice", "^\\+44", [FQDN], ["teamsvoice"], 3)
    done = await configuration.ensure(tenant, WANTED)
    assert done == ["PSTN gateway sbc1.contoso.com updated", "voice route teamsvoice updated"]
    assert tenant.gateways[FQDN] == PstnGateway(FQDN, 5061, True)
    assert tenant.routes["teamsvoice"].number_pattern == ".*" and tenant.routes["admin-route"] == other


def test_comparison_ignores_case_and_order_where_teams_does() -> None:
    seen = RoutingInventory([PstnGateway(FQDN.upper(), 5061, True)], ["TeamsVoice"],
                            [VoiceRoute("TEAMSVOICE", ".*", [FQDN.upper()], ["teamsvoice"], 7)],
                            [VoiceRoutingPolicy("TeamsVoice", ["teamsvoice"])])
    assert configuration.changes(WANTED, seen) == []
    two = RoutingInventory(policies=[VoiceRoutingPolicy("p", ["a", "b"])])
    assert configuration.changes(RoutingInventory(policies=[VoiceRoutingPolicy("p", ["b", "a"])]), two) == []
    assert [c.action for c in configuration.changes(RoutingInventory(policies=[VoiceRoutingPolicy("p", ["a"])]), two)] == ["change"]
