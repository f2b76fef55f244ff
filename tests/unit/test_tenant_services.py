"""The domain's Microsoft rules, against in-memory tenants behind the ports (tests/unit/tenant_fakes.py): Teams
users' directory updates, resource accounts, emergency locations, the onboarding wizard's checks and Microsoft's
errors as domain errors. No database and no HTTP: each test takes milliseconds."""

from types import SimpleNamespace

import pytest

from teamsvoice.api.fusion.locations import parse_address, parse_address_change
from teamsvoice.core.errors import Conflict, NotFound, UpstreamError, ValidationFailed
from teamsvoice.core.security import Keyring
from teamsvoice.domain.fusion import locations, onboarding
from teamsvoice.domain.fusion.models import FusionLocation
from teamsvoice.domain.teams_users import resource_accounts, service
from teamsvoice.domain.tenant_voice.readiness import check_tenant_readiness
from teamsvoice.microsoft.calling_ports import VoiceRoutingPolicy
from teamsvoice.microsoft.directory_ports import RESOURCE_ACCOUNT_DEPARTMENT, SubscribedSku, TenantDomain
from tests.unit.tenant_fakes import (
    FakeConnector, FakeDirectory, FakeEmergencyLocations, FakeResourceAccounts, FakeTeamsAdmin, connection,
)
from tests.unit.test_tenant_voice import FakeDirectRouting

PHONE = SubscribedSku("sku-mcoev", "MCOEV", 5, 0, "Enabled", ("MCOEV",))
E3 = SubscribedSku("sku-e3", "SPE_E3", 5, 0, "Enabled", ("TEAMS1",))
VIRTUAL = SubscribedSku("sku-virtual", "PHONESYSTEM_VIRTUALUSER", 2, 0, "Enabled", ("MCOEV_VIRTUALUSER",))
CALL_QUEUE = resource_accounts.APPLICATION_IDS["call-queue"]
AUTO_ATTENDANT = resource_accounts.APPLICATION_IDS["auto-attendant"]


def tenant() -> FakeDirectory:
    return FakeDirectory(skus=[PHONE, E3, VIRTUAL], tenant_domains=[
        TenantDomain("contoso.onmicrosoft.com", True, is_initial=True), TenantDomain("contoso.com", True, is_default=True),
        TenantDomain("unverified.example", False)])


# --- Teams users: reads --------------------------------------------------------------------------------


async def test_a_missing_user_is_a_not_found_with_the_users_code() -> None:
    with pytest.raises(NotFound) as caught:
        await service.directory_user(tenant(), "id-nobody@contoso.com")
    assert caught.value.code == service.USER_NOT_FOUND and "id-nobody@contoso.com" in caught.value.message


async def test_a_resource_account_is_no_teams_user() -> None:
    directory = tenant()
    account = directory.add_user("queue@contoso.com", department=RESOURCE_ACCOUNT_DEPARTMENT)
    with pytest.raises(NotFound, match="resource account"):
        await service.directory_user(directory, account.id)


async def test_voice_capability_comes_from_the_users_plans() -> None:
    directory = tenant()
    phone, teams, none = (directory.add_user("a@contoso.com", skus=["sku-mcoev"]),
                          directory.add_user("b@contoso.com", skus=["sku-e3"]), directory.add_user("c@contoso.com"))
    skus = await service.sku_map(directory)
    assert [service.voice_enabled(u, skus) for u in (phone, teams, none)] == ["yes", "maybe", "no"]
    assert await service.check_voice(connection(directory), phone.id) is True
    assert await service.check_voice(connection(directory), teams.id) is False


async def test_the_sip_address_is_teams_own_and_a_user_without_one_is_not_found() -> None:
    directory = tenant()
    ada, bob = directory.add_user("ada@contoso.com"), directory.add_user("bob@contoso.com")
    teams = FakeTeamsAdmin(sip={ada.id: "sip:ada@contoso.com"})
    assert await service.sip_address(connection(directory, teams_admin=teams), ada.id) == "sip:ada@contoso.com"
    with pytest.raises(NotFound, match="no sip address") as caught:
        await service.sip_address(connection(directory, teams_admin=teams), bob.id)
    assert caught.value.code == service.USER_NOT_FOUND


# --- Teams users: the list, across Microsoft's pages --------------------------------------------------


class NoRecords:
    """A database session of a subscription without SRE group filter and without voice records."""

    async def scalars(self, query: object) -> list[object]:
        return []


ACCESS = SimpleNamespace(subscription=SimpleNamespace(id=1), enterprise=SimpleNamespace(id=1))


async def listed(directory: FakeDirectory, page_size: int, start: service.UsersPosition | None = None, *,
                 search: str | None = None, group: str | None = None,
                 filters: service.UserFilters = service.UserFilters()) -> service.UsersPage:
    return await service.list_users(NoRecords(), ACCESS, connection(directory), page_size=page_size,  # type: ignore[arg-type]
                                    start=start, search=search, group=group, filters=filters)


async def test_the_list_follows_microsofts_pages_and_continues_where_it_stopped() -> None:
    directory = tenant()
    for n in range(7):
        directory.add_user(f"user{n}@contoso.com", display_name=f"User {n}", enabled=n != 2)
    directory.add_user("queue@contoso.com", display_name="User queue", department=RESOURCE_ACCOUNT_DEPARTMENT)
    seen: list[str] = []
    page = await listed(directory, 2)
    while True:
        seen += [u.user.user_principal_name for u in page.users]
        assert len(page.users) <= 2
        if page.following is None:
            break
        page = await listed(directory, 2, page.following)
    assert seen == [f"user{n}@contoso.com" for n in (0, 1, 3, 4, 5, 6)]  # no disabled user, no resource account


async def test_a_page_that_fills_mid_way_continues_in_the_same_microsoft_page() -> None:
    directory = tenant()
    directory.served_page = 5
    for n in range(6):
        directory.add_user(f"user{n}@contoso.com", display_name=f"User {n}", location="NL" if n % 2 else "BE")
    nl = service.UserFilters(countries=frozenset({"NL"}))
    page = await listed(directory, 1, filters=nl)
    assert [u.user.user_principal_name for u in page.users] == ["user1@contoso.com"]
    assert page.following == service.UsersPosition("page:0:5", 2)  # Microsoft's first page, after user1
    page = await listed(directory, 1, page.following, filters=nl)
    assert [u.user.user_principal_name for u in page.users] == ["user3@contoso.com"]
    page = await listed(directory, 1, page.following, filters=nl)
    assert [u.user.user_principal_name for u in page.users] == ["user5@contoso.com"] and page.following is None


async def test_a_group_lists_its_members_filtered_by_name_and_an_unknown_group_is_not_found() -> None:
    directory = tenant()
    ada, bob = directory.add_user("ada@contoso.com", display_name="Ada"), directory.add_user("bob@contoso.com", display_name="Bob")
    directory.add_user("carl@contoso.com", display_name="Carl")
    sales = directory.add_group("Sales", ada, bob)
    page = await listed(directory, 10, group=sales.id, search="b")
    assert [u.user.id for u in page.users] == [bob.id]
    with pytest.raises(NotFound, match="Group 00000000-0000-0000-0000-000000000099 not found"):
        await listed(directory, 10, group="00000000-0000-0000-0000-000000000099")


async def test_a_lists_pages_share_the_role_holders_and_read_the_skus_only_for_a_licence_they_lack(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each page of the list read the tenant's SKUs and its role holders again. The pages of a tenant now share
    the role holders (`service._ROLE_HOLDERS`, for LIST_MEMO_SECONDS) and name the users' licences from the SKUs as
    last read (`sku_map(refresh=False)`); those are read again, once a list, when a user holds a licence they lack
    (a SKU subscribed since)."""
    from teamsvoice.core.remembered import Remembered
    from tests.unit.tenant_fakes import GLOBAL_ADMIN

    monkeypatch.setattr(service, "_ROLE_HOLDERS", Remembered(service.LIST_MEMO_SECONDS))  # this test's own memo
    directory = tenant()
    boss = directory.add_user("admin@contoso.com", display_name="Admin")
    directory.global_admins.add(boss.id)
    for n in range(3):
        directory.add_user(f"user{n}@contoso.com", display_name=f"User {n}", skus=["sku-mcoev"])
    reads: list[object] = []
    last_read, skus_of, holders_of = list(directory.skus), directory.subscribed_skus, directory.role_holders

    async def subscribed_skus(*, refresh: bool = True) -> list[SubscribedSku]:
        reads.append(("skus", refresh))
        return await skus_of() if refresh else last_read  # remembered: as last read

    async def role_holders() -> dict:
        reads.append("roles")
        return await holders_of()

    monkeypatch.setattr(directory, "subscribed_skus", subscribed_skus)
    monkeypatch.setattr(directory, "role_holders", role_holders)
    first = await listed(directory, 2)
    second = await listed(directory, 2, first.following)
    assert reads == [("skus", False), "roles", ("skus", False)]
    assert [u.roles for u in first.users + second.users if u.user.id == boss.id] == [
        (service.Membership(GLOBAL_ADMIN, "Global Administrator"),)]

    directory.skus.append(SubscribedSku("sku-new", "MCOEV_NEW", 5, 0, "Enabled", ("MCOEV",)))
    new = directory.add_user("new@contoso.com", display_name="User new", skus=["sku-new"])
    reads.clear()
    page = await listed(directory, 10)
    assert reads == [("skus", False), ("skus", True)]  # once for the list, not once a Microsoft page
    found = next(u for u in page.users if u.user.id == new.id)
    assert ([licence.sku_part_number for licence in found.licences], found.voice_enabled) == (["MCOEV_NEW"], "yes")

    memo = service._Dropped(0.0)  # what a list remembers is dropped once forgotten (a filter's members: thousands)
    memo.put("tenant-a", 1)
    memo.put("tenant-b", 2)
    assert list(memo._values) == ["tenant-b"]


# --- Teams users: the update rules (directory part) ----------------------------------------------------


async def test_only_properties_that_differ_are_written() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com", location="BE", display_name="Ada")
    update = service.UserUpdate(display_name="Ada", location="NL")
    await service._apply_directory(directory, user, update, {})
    assert directory.writes == ["update_user ada@contoso.com [('usage_location', 'NL')]"]
    assert update.changes == ["properties"]
    again = service.UserUpdate(display_name="Ada", location="NL")
    await service._apply_directory(directory, directory.people[user.id], again, {})
    assert len(directory.writes) == 1 and again.changes == []


async def test_licences_sent_to_an_update_are_added_and_the_others_kept() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com", skus=["sku-e3"])
    update = service.UserUpdate(licenses=["MCOEV"])
    await service._apply_directory(directory, user, update, {})
    assert set(directory.people[user.id].assigned_sku_ids) == {"sku-e3", "sku-mcoev"} and update.changes == ["licenses"]


async def test_licences_of_a_replacing_update_are_the_whole_set() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com", skus=["sku-e3", "sku-mcoev"])
    await service._apply_directory(directory, user, service.UserUpdate(licenses=["sku-mcoev"], replace_licenses=True), {})
    assert directory.people[user.id].assigned_sku_ids == ("sku-mcoev",)


async def test_licences_already_held_are_not_assigned_again() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com", skus=["sku-mcoev"])
    update = service.UserUpdate(licenses=["MCOEV"])
    await service._apply_directory(directory, user, update, {})
    assert directory.writes == [] and update.changes == []


async def test_an_unknown_licence_is_named_with_its_code() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com")
    with pytest.raises(NotFound, match="NOPE") as caught:
        await service._apply_directory(directory, user, service.UserUpdate(licenses=["NOPE"]), {})
    assert caught.value.code == service.LICENCE_NOT_FOUND and directory.writes == []


async def test_a_licence_without_a_usage_location_is_refused_by_microsoft_as_a_validation_error() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com", location=None)
    with pytest.raises(ValidationFailed, match="usage location"):
        await service._apply_directory(directory, user, service.UserUpdate(licenses=["MCOEV"]), {})


async def test_the_location_is_set_before_the_licence_that_needs_it() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com", location=None)
    await service._apply_directory(directory, user, service.UserUpdate(location="BE", licenses=["MCOEV"]), {})
    assert [w.split()[0] for w in directory.writes] == ["update_user", "assign_licences"]


async def test_groups_are_resolved_by_id_or_name_and_only_missing_memberships_added() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com")
    sales, support = directory.add_group("Sales", user), directory.add_group("Support")
    cache: dict[str, str] = {}
    update = service.UserUpdate(groups=["Sales", support.id])
    await service._apply_directory(directory, user, update, cache)
    assert directory.writes == [f"add_group_member Support {user.id}"] and update.changes == ["groups"]
    assert cache == {"Sales": sales.id, support.id: support.id}


async def test_replacing_groups_removes_the_others_and_an_update_keeps_them() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com")
    directory.add_group("Sales", user)
    support = directory.add_group("Support")
    await service._apply_directory(directory, user, service.UserUpdate(groups=["Support"]), {})
    assert {g.display_name for g in await directory.member_of(user.id)} == {"Sales", "Support"}
    await service._apply_directory(directory, user, service.UserUpdate(groups=[support.id], replace_groups=True), {})
    assert [g.display_name for g in await directory.member_of(user.id)] == ["Support"]


async def test_an_unknown_group_is_named_with_its_code() -> None:
    directory = tenant()
    user = directory.add_user("ada@contoso.com")
    with pytest.raises(NotFound, match="Marketing") as caught:
        await service._apply_directory(directory, user, service.UserUpdate(groups=["Marketing"]), {})
    assert caught.value.code == service.GROUP_NOT_FOUND


async def test_a_policy_the_tenant_lacks_is_refused_as_teams_refuses_its_grant() -> None:
    """An update that changes the directory asks first whether its policy exists (`_require_policy`, through the
    port's `has_policy`: tests/unit/test_cmdlet_adapters.py): one the tenant lacks is refused as Teams refuses its
    grant, with "Tag:" or not."""
    routing = FakeDirectRouting()
    routing.policies = {"teamsvoice": VoiceRoutingPolicy("teamsvoice", [])}
    link = connection(tenant(), direct_routing=routing)
    for policy in ("teamsvoice", "Tag:TeamsVoice"):
        await service._require_policy(link, policy)
    for policy in ("Nope", "Tag:Nope"):
        with pytest.raises(ValidationFailed, match='Policy "Nope" is not a user policy') as caught:
            await service._require_policy(link, policy)
        assert caught.value.code == service.VRP_REFUSED


async def _recorded(*args) -> None:  # type: ignore[no-untyped-def]
    """`create_user`'s record step (the database's; tests/api/fusion/test_users.py), left out here."""


async def test_a_user_is_created_only_in_a_verified_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "_record_new_user", _recorded)
    directory = tenant()
    new = service.NewUser("Ada", "unverified.example", "ada", "BE", [])
    with pytest.raises(ValidationFailed, match="not a verified domain"):
        await service.create_user(None, None, connection(directory), new, "S3cret!pass", 0)  # type: ignore[arg-type]
    created = await service.create_user(None, None, connection(directory),  # type: ignore[arg-type]
                                        service.NewUser("Ada", "contoso.com", "ada", "BE", []), "S3cret!pass", 0)
    assert directory.people[created].user_principal_name == "ada@contoso.com"
    assert directory.people[created].usage_location == "BE"


async def test_a_taken_user_principal_name_is_a_conflict(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user of the name other than the one asked for (another display name or location, a licence, disabled, a
    resource account) is a conflict; one like it in every respect was made by an earlier try of the create, whose
    answer never came (`_made_before`), and so is a user Microsoft may have made when the create failed unanswered."""
    monkeypatch.setattr(service, "_record_new_user", _recorded)
    directory = tenant()
    ada = service.NewUser("Ada", "contoso.com", "ada", "BE", [])

    async def create(new: service.NewUser) -> str:
        return await service.create_user(None, None, connection(directory),  # type: ignore[arg-type]
                                         new, "S3cret!pass", 0)

    for other in ({"display_name": "Ada Lovelace"}, {"location": "NL"}, {"skus": ["sku-e3"]}, {"enabled": False},
                  {"department": RESOURCE_ACCOUNT_DEPARTMENT}):
        taken = directory.add_user("ada@contoso.com", **{"display_name": "Ada", **other})  # type: ignore[arg-type]
        with pytest.raises(Conflict):
            await create(ada)
        del directory.people[taken.id]
    made = directory.add_user("ada@contoso.com", display_name="Ada")
    assert await create(ada) == made.id

    async def unanswered(**kwargs) -> None:  # type: ignore[no-untyped-def]
        raise UpstreamError("Microsoft Graph unreachable", retryable=True)

    directory.create_user = unanswered  # type: ignore[method-assign]
    assert await create(ada) == made.id
    with pytest.raises(UpstreamError):  # not made: the failure is the answer
        await create(service.NewUser("Bo", "contoso.com", "bo", "BE", []))


# --- resource accounts -----------------------------------------------------------------------------------


def accounts() -> tuple[FakeDirectory, FakeResourceAccounts]:
    directory = tenant()
    return directory, FakeResourceAccounts(directory)


async def test_a_resource_account_is_created_licensed_and_located() -> None:
    directory, teams = accounts()
    link = connection(directory, resource_accounts=teams)
    ms_id = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    await resource_accounts.converge_in_teams(link, ms_id, CALL_QUEUE, "Queue", "BE")
    user = directory.people[ms_id]
    assert user.usage_location == "BE" and user.assigned_sku_ids == ("sku-virtual",)
    assert teams.instances[ms_id].application_id == CALL_QUEUE and teams.writes == ["create queue@contoso.com"]


async def test_a_run_after_a_crash_adopts_the_account_it_created() -> None:
    directory, teams = accounts()
    link = connection(directory, resource_accounts=teams)
    first = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    again = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    assert again == first and teams.writes == ["create queue@contoso.com"]


async def test_converging_a_converged_account_writes_nothing() -> None:
    directory, teams = accounts()
    link = connection(directory, resource_accounts=teams)
    ms_id = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    await resource_accounts.converge_in_teams(link, ms_id, CALL_QUEUE, "Queue", "BE")
    writes = (list(directory.writes), list(teams.writes))
    await resource_accounts.converge_in_teams(link, ms_id, CALL_QUEUE, "Queue", "BE")
    assert (directory.writes, teams.writes) == writes


async def test_only_the_changed_name_or_kind_is_sent_to_teams() -> None:
    directory, teams = accounts()
    link = connection(directory, resource_accounts=teams)
    ms_id = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    await resource_accounts.converge_in_teams(link, ms_id, CALL_QUEUE, "Sales queue", "BE")
    await resource_accounts.converge_in_teams(link, ms_id, AUTO_ATTENDANT, "Sales queue", "BE")
    assert teams.writes[1:] == ["update queue@contoso.com [('display_name', 'Sales queue')]",
                                f"update queue@contoso.com [('application_id', '{AUTO_ATTENDANT}')]"]


async def test_a_tenant_without_resource_account_licences_fails_naming_the_licence() -> None:
    directory, teams = accounts()
    directory.skus = [PHONE]
    link = connection(directory, resource_accounts=teams)
    ms_id = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    with pytest.raises(NotFound, match="PHONESYSTEM_VIRTUALUSER"):
        await resource_accounts.converge_in_teams(link, ms_id, CALL_QUEUE, "Queue", "BE")


async def test_no_free_resource_account_seat_is_a_conflict() -> None:
    directory, teams = accounts()
    directory.add_user("q1@contoso.com", skus=["sku-virtual"])
    directory.add_user("q2@contoso.com", skus=["sku-virtual"])
    link = connection(directory, resource_accounts=teams)
    ms_id = await resource_accounts.find_or_create_in_teams(link, "queue@contoso.com", CALL_QUEUE, "Queue")
    with pytest.raises(Conflict, match="PHONESYSTEM_VIRTUALUSER"):
        await resource_accounts.converge_in_teams(link, ms_id, CALL_QUEUE, "Queue", "BE")


async def test_an_account_made_in_teams_is_read_by_its_id_to_be_adopted() -> None:
    """A modify or delete of an object id teamsvoice has no row of adopts the account Teams holds under it
    (`_adopted`), read by that id (Get-CsOnlineApplicationInstance -Identity), not by listing every application
    instance of the tenant: an id Teams has none of, or one of another application, adopts nothing without a
    listing. A refusal worded otherwise than "not found" is decided by the tenant's list, as before; a transient
    failure is no answer: raised."""
    import uuid

    from teamsvoice.microsoft.ports import ApplicationInstance

    directory, teams = accounts()
    listings: list[str] = []
    every = teams.all

    async def listed() -> list[ApplicationInstance]:
        listings.append("all")
        return await every()

    teams.all = listed  # type: ignore[method-assign]
    bot = str(uuid.uuid4())
    teams.instances[bot] = ApplicationInstance(bot, "bot@contoso.com", "Bot", "an application of another kind")
    link, session = connection(directory, resource_accounts=teams), Session()
    for ms_id in (str(uuid.uuid4()), bot.upper()):
        assert await resource_accounts._adopted(session, None, link, ms_id) is None  # type: ignore[arg-type]
    assert listings == []
    found = teams.get
    for failure, listing in ((NotFound("Teams has no resource account"), []),
                             (UpstreamError("Get-CsOnlineApplicationInstance failed: Bad request", retryable=False,
                                            status=400, upstream_code="BadRequest"), ["all"])):
        async def refused(object_id: str, failure: UpstreamError = failure) -> ApplicationInstance:
            raise failure

        teams.get = refused  # type: ignore[method-assign]
        assert await resource_accounts._adopted(session, None, link, bot) is None  # type: ignore[arg-type]
        assert listings == listing
        listings.clear()

    async def unanswered(object_id: str) -> ApplicationInstance:
        raise UpstreamError("Teams PowerShell endpoint unreachable", retryable=True)

    teams.get = unanswered  # type: ignore[method-assign]
    with pytest.raises(UpstreamError, match="unreachable"):
        await resource_accounts._adopted(session, None, link, bot)  # type: ignore[arg-type]
    teams.get = found  # type: ignore[method-assign]


# --- emergency locations ---------------------------------------------------------------------------------


class Session:
    """What the location rules need of a database session: they record the civic address once Teams made it, and
    take a new location back when Teams did not make it."""

    def __init__(self) -> None:
        self.commits, self.rows = 0, []  # type: ignore[var-annotated]

    def add(self, row: object) -> None:
        self.rows.append(row)

    async def delete(self, row: object) -> None:
        self.rows.remove(row)

    async def flush(self) -> None:
        pass

    async def execute(self, statement: object) -> None:  # forgetting the numbers placed there (none)
        pass

    async def commit(self) -> None:
        self.commits += 1


def location(**overrides: object) -> FusionLocation:
    values = {"street": "Rue Haute", "house_number": "12", "postbox": None, "postal_code": "1000", "city": "Brussels",
              "state": None, "country": "BE", "company_name": "Contoso", "description": None}
    return FusionLocation(subscription_id=1, **{**values, **overrides})


def test_a_location_needs_each_required_field_and_a_real_country() -> None:
    body = {"street": "Rue Haute", "number": "12", "postalCode": "1000", "city": "Brussels", "country": "be"}
    assert parse_address(body) == locations.Address("Rue Haute", "12", "1000", "Brussels", "BE")
    with pytest.raises(ValidationFailed, match="city: is required"):
        parse_address({k: v for k, v in body.items() if k != "city"})
    with pytest.raises(ValidationFailed, match="ISO 3166"):
        parse_address({**body, "country": "XX"})
    with pytest.raises(ValidationFailed, match="unknown field"):
        parse_address({**body, "floor": "3"})
    assert parse_address_change({"postbox": " ", "city": " Gent "}).values == {"postbox": None, "city": "Gent"}
    with pytest.raises(ValidationFailed, match="city: must not be empty"):
        parse_address_change({"city": None})


def test_a_po_box_goes_with_the_street_in_teams() -> None:
    address = locations.civic_address(location(postbox="42", description="HQ"))
    assert address.street_name == "Rue Haute (PO box 42)" and address.description == "HQ" and address.state is None


async def test_a_location_is_created_in_teams_once_and_updated_after() -> None:
    teams, session, row = FakeEmergencyLocations(), Session(), location()
    link = connection(emergency_locations=teams)
    await locations.push_to_teams(session, None, link, row)  # type: ignore[arg-type]
    assert (row.teams_civic_address_id, row.teams_location_id, session.commits) == ("civic-1", "loc-civic-1", 1)
    row.city = "Bruxelles"
    await locations.push_to_teams(session, None, link, row)  # type: ignore[arg-type]
    assert teams.writes == ["create_address Rue Haute", "update_address civic-1"] and len(teams.addresses) == 1
    assert teams.addresses["civic-1"].city == "Bruxelles"


async def test_without_a_linked_tenant_a_location_stays_local() -> None:
    row = location()
    await locations.push_to_teams(Session(), None, None, row)  # type: ignore[arg-type]
    assert row.teams_civic_address_id is None


async def test_teams_refusing_an_address_records_nothing() -> None:
    teams, session, row = FakeEmergencyLocations(), Session(), location(country="Belgium")
    with pytest.raises(UpstreamError, match="CountryOrRegion"):
        await locations.push_to_teams(session, None, connection(emergency_locations=teams), row)  # type: ignore[arg-type]
    assert row.teams_civic_address_id is None and session.commits == 0
    # A new location Teams refuses is taken back (it stayed, `msTeams: null`, and a retry made a second one).
    access = SimpleNamespace(tenant=SimpleNamespace(name="Contoso"), subscription=SimpleNamespace(id=1))
    address = locations.Address("Rue Haute", "12", "1000", "Brussels", "Belgium")
    link = connection(emergency_locations=teams)
    with pytest.raises(UpstreamError, match="CountryOrRegion"):
        await locations.create_location(session, access, link, address)  # type: ignore[arg-type]
    assert session.rows == [] and session.commits == 2 and teams.addresses == {}


# --- onboarding wizard -------------------------------------------------------------------------------------


def onboarded(**connector: object) -> tuple[FakeDirectory, FakeDirectRouting, FakeTeamsAdmin, FakeConnector]:
    directory, routing, teams = tenant(), FakeDirectRouting(), FakeTeamsAdmin()
    admin = directory.add_user("admin@contoso.com")
    directory.global_admins.add(admin.id)
    link = connection(directory, direct_routing=routing, teams_admin=teams)
    return directory, routing, teams, FakeConnector(link, domains={"contoso.com": "tenant-1"}, **connector)  # type: ignore[arg-type]


def wizard(username: str = "admin@contoso.com", tenant_id: str | None = None) -> onboarding.WizardInput:
    return onboarding.WizardInput(1, 7, 3, 2, username, tenant_id, "run-key-1")


KEYRING = Keyring(b"k" * 32)


CONSENTED = "tenant-1"  # the tenant whose Global Administrator consented at the subscription's consent URL


async def test_the_wizard_finds_the_tenant_from_the_admins_domain() -> None:
    *_, connector = onboarded()
    assert await onboarding.check_admin(connector, KEYRING, "https://tv.example", wizard(), CONSENTED) == "tenant-1"
    with pytest.raises(onboarding.StepFailed, match="No Microsoft 365 tenant uses the domain 'fabrikam.com'"):
        await onboarding.check_admin(connector, KEYRING, "https://tv.example", wizard("admin@fabrikam.com"), CONSENTED)


async def test_missing_consent_fails_the_step_with_the_consent_url() -> None:
    *_, connector = onboarded(consented=set())
    with pytest.raises(onboarding.StepFailed, match="no admin consent") as caught:
        await onboarding.check_admin(connector, KEYRING, "https://tv.example/", wizard(), CONSENTED)
    assert caught.value.consent_url is not None
    assert caught.value.consent_url.startswith("https://login.example/tenant-1/consent?redirect_uri=https://tv.example"
                                               + onboarding.CONSENT_CALLBACK_PATH)


async def test_the_apps_consent_alone_is_not_this_subscriptions_consent_and_reveals_no_directory() -> None:
    """The app has consent in the tenant (given for another subscription, another reseller's customer perhaps), but
    no Global Administrator consented at this subscription's URL: the step fails with the URL, and answers alike
    for the tenant's administrator, a plain user and a name the tenant does not have (no directory oracle)."""
    directory, *_, connector = onboarded()
    directory.add_user("helpdesk@contoso.com")
    answers = set()
    for username in ("admin@contoso.com", "helpdesk@contoso.com", "ghost@contoso.com"):
        for consented in (None, "tenant-2"):
            with pytest.raises(onboarding.StepFailed) as caught:
                await onboarding.check_admin(connector, KEYRING, "https://tv.example", wizard(username), consented)
            assert caught.value.consent_url is not None
            answers.add(caught.value.message)
    assert answers == {"teamsvoice has no admin consent for this subscription in tenant tenant-1: a Global "
                       "Administrator of the tenant must grant it at the consent URL, then run the wizard again"}


async def test_microsoft_unreachable_is_not_a_failed_step() -> None:
    *_, connector = onboarded(unreachable=True)
    with pytest.raises(UpstreamError) as caught:
        await onboarding.check_admin(connector, KEYRING, "https://tv.example", wizard(tenant_id="tenant-1"), CONSENTED)
    assert caught.value.retryable


async def test_the_administrator_must_exist_be_enabled_and_be_a_global_administrator() -> None:
    directory, *_, connector = onboarded()
    with pytest.raises(onboarding.StepFailed, match="is not a user of tenant"):
        await onboarding.check_admin(connector, KEYRING, "", wizard("ghost@contoso.com"), CONSENTED)
    directory.add_user("helpdesk@contoso.com")
    with pytest.raises(onboarding.StepFailed, match="not a Global Administrator"):
        await onboarding.check_admin(connector, KEYRING, "", wizard("helpdesk@contoso.com"), CONSENTED)
    off = directory.add_user("off@contoso.com", enabled=False)
    directory.global_admins.add(off.id)
    with pytest.raises(onboarding.StepFailed, match="is disabled"):
        await onboarding.check_admin(connector, KEYRING, "", wizard("off@contoso.com"), CONSENTED)


async def test_the_sbc_domain_is_a_verified_custom_domain() -> None:
    directory, *_, connector = onboarded()
    assert await onboarding.verified_domain(connector, "tenant-1") == "contoso.com"
    directory.tenant_domains = [TenantDomain("contoso.onmicrosoft.com", True, is_initial=True)]
    with pytest.raises(onboarding.StepFailed, match="no verified custom domain"):
        await onboarding.verified_domain(connector, "tenant-1")


async def test_the_licence_step_needs_teams_phone_seats() -> None:
    directory, *_, connector = onboarded()
    assert await onboarding.check_licences(connector, "tenant-1") == "MCOEV x5"
    directory.skus = [E3]
    with pytest.raises(onboarding.StepFailed, match="no Teams Phone"):
        await onboarding.check_licences(connector, "tenant-1")


async def test_the_powershell_step_reads_the_administrators_teams_account() -> None:
    _, _, teams, connector = onboarded()
    await onboarding.check_powershell(connector, "tenant-1", "admin@contoso.com")
    assert teams.powershell_reads == ["admin@contoso.com"]
    teams.powershell_failure = UpstreamError("Get-CsOnlineUser failed: not allowed", retryable=False, status=403)
    with pytest.raises(UpstreamError, match="not allowed"):
        await onboarding.check_powershell(connector, "tenant-1", "admin@contoso.com")


async def test_the_voice_configuration_step_is_idempotent() -> None:
    _, routing, _, connector = onboarded()
    await onboarding.create_voice_configuration(connector, "tenant-1", "sbc.contoso.com")
    made = list(routing.calls)
    assert any(c.startswith("create_gateway sbc.contoso.com") for c in made)
    await onboarding.create_voice_configuration(connector, "tenant-1", "sbc.contoso.com")
    assert routing.calls[len(made):] == ["routing"]  # read, found as wanted, nothing written
    assert routing.policies[onboarding.VOICE_NAME] == VoiceRoutingPolicy(onboarding.VOICE_NAME, [onboarding.VOICE_NAME])


# --- readiness -------------------------------------------------------------------------------------------


async def test_readiness_reports_every_check_and_a_failing_one_hides_none() -> None:
    directory, _, teams, connector = onboarded(consented={"graph"})
    teams.graph_failure = UpstreamError("Microsoft Graph GET failed (403 Forbidden): denied", retryable=False, status=403)
    readiness = await check_tenant_readiness(connector, "tenant-1")
    assert {c.name: c.ok for c in readiness.checks} == {
        "graph_consent": True, "teams_admin_consent": False, "verified_domains": True, "voice_licences": True,
        "teams_admin_api": False}
    detail = readiness.check("teams_admin_api").detail
    assert "denied" in detail and "Teams PowerShell not tried" in detail and teams.powershell_reads == []
