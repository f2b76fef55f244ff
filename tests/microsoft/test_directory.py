"""DirectoryAdmin (microsoft/directory.py) against the emulator over HTTPS, through the production connector."""

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft import directory
from teamsvoice.microsoft.directory import DirectoryAdmin, directory_admin
from teamsvoice.microsoft.graph import GraphClient
from teamsvoice.microsoft.ports import GRAPH_RESOURCE

from tests.microsoft.support import SeededTenant


@pytest.fixture
def admin(connector: MicrosoftConnector, tenant: SeededTenant) -> DirectoryAdmin:
    return directory_admin(connector.connect(tenant.tenant_id))


@contextmanager
def requests_sent(connector: MicrosoftConnector, name: Callable[[str], str | None]) -> Iterator[list[str]]:
    """What `name` calls each request the connector sends inside the block, by its path (None: not listed)."""
    sent: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        if (named := name(request.url.path)) is not None:
            sent.append(named)

    connector.http.event_hooks["request"].append(on_request)
    try:
        yield sent
    finally:
        connector.http.event_hooks["request"].remove(on_request)


def sku_read(path: str) -> str | None:
    return path if path.endswith("/subscribedSkus") else None


def user_read_or_batch(path: str) -> str | None:
    return "$batch" if path.endswith("/$batch") else "GET" if "/users/" in path else None


async def test_lists_every_user_across_pages(admin: DirectoryAdmin) -> None:
    users = [user async for user in admin.users(page_size=40)]
    # 150 seeded + the Global Administrator, and any user another test of this worker created in the tenant:
    # the pages of 40 hold exactly what one page of 999 holds, each user once.
    assert len(users) >= 151 and len({user.id for user in users}) == len(users)
    assert {user.id for user in users} == {user.id async for user in admin.users(page_size=999)}
    assert all(user.user_principal_name.endswith("@northwind.example") for user in users)


async def test_filters_and_searches_users(admin: DirectoryAdmin) -> None:
    everyone = [user async for user in admin.users()]
    first = everyone[5]
    prefix = (first.display_name or "")[:3]
    filtered = [u async for u in admin.users(filter=f"startswith(displayName,'{prefix}')", select=["id", "displayName"])]
    assert first.id in {u.id for u in filtered}
    assert all((u.display_name or "").startswith(prefix) for u in filtered)
    found = [u async for u in admin.users(search=f'"displayName:{prefix}"')]
    assert first.id in {u.id for u in found}


async def test_user_by_id_and_upn_and_missing(admin: DirectoryAdmin) -> None:
    some = await anext(aiter(admin.users()))
    assert (await admin.user(some.user_principal_name)).id == some.id
    assert (await admin.user(some.id)).user_principal_name == some.user_principal_name
    with pytest.raises(NotFound, match="nobody@northwind.example"):
        await admin.user("nobody@northwind.example")


async def test_create_update_delete_user(admin: DirectoryAdmin) -> None:
    upn = f"new-{uuid.uuid4().hex[:8]}@northwind.example"
    created = await admin.create_user(user_principal_name=upn, display_name="New Person", mail_nickname=upn.split("@")[0],
                                      password="Initial-Passw0rd!", usage_location="BE")
    assert created.id and created.user_principal_name == upn
    with pytest.raises(Conflict, match="already exists"):
        await admin.create_user(user_principal_name=upn, display_name="Again", mail_nickname="again",
                                password="Initial-Passw0rd!")
    with pytest.raises(ValidationFailed, match="verified domain"):
        await admin.create_user(user_principal_name="x@elsewhere.example", display_name="X", mail_nickname="x",
                                password="Initial-Passw0rd!")
    await admin.update_user(created.id, display_name="Renamed Person", usage_location="NL")
    again = await admin.user(created.id)
    assert (again.display_name, again.usage_location) == ("Renamed Person", "NL")
    with pytest.raises(ValidationFailed, match="nothing to update"):
        await admin.update_user(created.id)
    with pytest.raises(ValidationFailed, match="favourite_colour"):
        await admin.update_user(created.id, favourite_colour="blue")
    assert await admin.delete_user(created.id) is True
    with pytest.raises(NotFound):
        await admin.user(created.id)
    assert await admin.delete_user(created.id, missing_ok=True) is False


async def test_update_users_in_batches(admin: DirectoryAdmin) -> None:
    users = [u async for u in admin.users(page_size=999)][:45]
    results = await admin.update_users({u.id: {"job_title": f"Batch {i}"} for i, u in enumerate(users)}
                                       | {"ghost@northwind.example": {"job_title": "none"}})
    assert [r.ok for r in results] == [True] * 45 + [False]
    assert isinstance(results[-1].error, NotFound)
    assert (await admin.user(users[44].id)).job_title == "Batch 44"


async def test_licences_seats_and_usage_location(admin: DirectoryAdmin) -> None:
    skus = {s.sku_part_number: s for s in await admin.subscribed_skus()}
    virtual = skus["PHONESYSTEM_VIRTUALUSER"]
    assert virtual.prepaid == 2 and virtual.available == 2 - virtual.consumed
    upns = []
    for index in range(3):
        upn = f"ra-{index}-{uuid.uuid4().hex[:6]}@northwind.example"
        await admin.create_user(user_principal_name=upn, display_name=f"RA {index}", mail_nickname=upn.split("@")[0],
                                password="Initial-Passw0rd!", usage_location="US")
        upns.append(upn)
    nowhere = f"nowhere-{uuid.uuid4().hex[:6]}@northwind.example"
    await admin.create_user(user_principal_name=nowhere, display_name="No Location", mail_nickname=nowhere.split("@")[0],
                            password="Initial-Passw0rd!")
    with pytest.raises(ValidationFailed, match="PHONESYSTEM_VIRTUALUSER.*usage location"):
        await admin.assign_licences(nowhere, add=["PHONESYSTEM_VIRTUALUSER"])
    free = (await admin.sku("PHONESYSTEM_VIRTUALUSER")).available
    for upn in upns[:free]:
        assert (await admin.assign_licences(upn, add=["PHONESYSTEM_VIRTUALUSER"])).user_principal_name == upn
        assert virtual.sku_id in (await admin.user(upn)).assigned_sku_ids
    with pytest.raises(Conflict, match="no free seat of licence PHONESYSTEM_VIRTUALUSER"):
        await admin.assign_licences(upns[-1], add=[virtual.sku_id])
    assert (await admin.sku("PHONESYSTEM_VIRTUALUSER")).available == 0
    assert [d.sku_part_number for d in await admin.licences(upns[0])] == ["PHONESYSTEM_VIRTUALUSER"]
    await admin.remove_licences(upns[0], ["PHONESYSTEM_VIRTUALUSER"])
    assert (await admin.sku("PHONESYSTEM_VIRTUALUSER")).available == 1
    with pytest.raises(NotFound, match="NOT_A_SKU"):
        await admin.assign_licences(upns[0], add=["NOT_A_SKU"])


async def test_groups_membership_is_idempotent(admin: DirectoryAdmin) -> None:
    groups = [g async for g in admin.groups()]
    teams = [g async for g in admin.groups(teams_only=True)]
    assert groups and all(g.is_team for g in teams)
    assert {g.id for g in teams} <= {g.id for g in groups}
    group = groups[0]
    user = await anext(aiter(admin.users()))
    if user.id in [m.id async for m in admin.group_members(group.id)]:
        assert await admin.remove_group_member(group.id, user.id) is True
    assert await admin.add_group_member(group.id, user.id) is True
    assert await admin.add_group_member(group.id, user.id) is False  # already a member: success, nothing to do
    assert group.id in {m.id for m in await admin.member_of(user.id) if m.kind == "group"}
    assert await admin.remove_group_member(group.id, user.id) is True
    assert await admin.remove_group_member(group.id, user.id) is False
    with pytest.raises(NotFound, match="group"):
        await admin.add_group_member(str(uuid.uuid4()), user.id)
    with pytest.raises(NotFound, match="directory object"):
        await admin.add_group_member(group.id, str(uuid.uuid4()))


async def test_global_admin_role_in_member_of(admin: DirectoryAdmin, tenant: SeededTenant) -> None:
    roles = [m for m in await admin.member_of(tenant.admin) if m.kind == "directoryRole"]
    assert any(r.role_template_id == "62e90394-69f5-4237-9190-012177145e10" for r in roles)


async def test_domains(admin: DirectoryAdmin) -> None:
    domains = {d.name: d for d in await admin.domains()}
    assert domains["northwind.example"].is_verified and domains["northwind.example"].is_default
    assert any(d.is_initial and d.name.endswith(".onmicrosoft.com") for d in domains.values())


async def test_connection_exposes_directory_admin(connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    connection = connector.connect(tenant.tenant_id)
    assert connection.directory_admin is connection.directory_admin
    assert isinstance(connection.directory_admin, DirectoryAdmin)


async def test_a_licence_name_is_resolved_from_the_processs_last_read_of_the_tenants_skus(
        connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    """Each bulk item has its own connection: a licence's name is resolved from this process's last read of the
    tenant's SKUs (not one /subscribedSkus per item); a fresh read, or a name the last read lacks, asks Graph."""
    with requests_sent(connector, sku_read) as sent:
        first = await directory_admin(connector.connect(tenant.tenant_id)).sku("MCOEV")  # fresh: reads
        again = await directory_admin(connector.connect(tenant.tenant_id)).sku("mcoev", fresh=False)
        assert (again.sku_id, len(sent)) == (first.sku_id, 1)
        with pytest.raises(NotFound):
            await directory_admin(connector.connect(tenant.tenant_id)).sku("NO_SUCH_SKU", fresh=False)
        assert len(sent) == 2  # not in the last read: asked again before it is called missing


async def test_items_starting_together_read_the_tenants_skus_once(connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    """A bulk job's first items start together, each on its own connection, none with the SKUs remembered yet: one
    /subscribedSkus is sent and every item resolves the licence from it."""
    directory._SKUS.forget(tenant.tenant_id)  # (the tenant is the session's: an earlier test's read is remembered)
    with requests_sent(connector, sku_read) as sent:
        found = await asyncio.gather(*(directory_admin(connector.connect(tenant.tenant_id)).sku("MCOEV", fresh=False)
                                       for _ in range(20)))
        assert len({sku.sku_id for sku in found}) == 1 and len(sent) == 1


async def test_one_user_reads_sent_together_share_a_batch(connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    """A bulk job's items each read their user first: those waiting while a read is on its way go in the next
    `$batch` together (one round trip, not one each), each answered its own user, and a user Graph does not know
    is NotFound for its read alone."""
    admin = directory_admin(connector.connect(tenant.tenant_id))
    users = []
    for _ in range(3):
        upn = f"read-{uuid.uuid4().hex[:10]}@{tenant.domain}"
        users.append(await admin.create_user(user_principal_name=upn, display_name=f"Read {upn[5:15]}",
                                             mail_nickname=upn.split("@")[0], password="Initial-Passw0rd!",
                                             usage_location="BE"))
    with requests_sent(connector, user_read_or_batch) as sent:
        members = [users[0].user_principal_name, users[1].user_principal_name, f"nobody-{uuid.uuid4().hex[:8]}@{tenant.domain}",
                   users[2].id]
        answers = await asyncio.gather(*(directory_admin(connector.connect(tenant.tenant_id)).user_batched(member)
                                         for member in members), return_exceptions=True)
    assert sent == ["GET", "$batch"]  # the first alone, the three that came meanwhile together
    assert isinstance(answers[2], NotFound) and members[2] in answers[2].message
    found = [answers[0], answers[1], answers[3]]
    assert [(u.id, u.user_principal_name, u.display_name, u.usage_location) for u in found] == [  # type: ignore[union-attr]
        (u.id, u.user_principal_name, u.display_name, "BE") for u in users]
    for user in users:
        await admin.delete_user(user.id)


async def test_a_signed_in_admins_requests_never_share_a_call(connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    """A call goes out with the token of the client that sends it: a directory client on a signed-in admin's token
    (`connect(..., delegated_graph_token=...)`) sends each of its one-user requests alone, never in a `$batch` with
    the app's (or another admin's) requests, while the app-only client's reads made together share one."""
    token = await connector.identity.app_token(tenant.tenant_id, GRAPH_RESOURCE)  # a token the emulator accepts
    upns = [u.user_principal_name async for u in directory_admin(connector.connect(tenant.tenant_id)).users(page_size=5)][:4]
    with requests_sent(connector, user_read_or_batch) as alone:
        signed_in = directory_admin(connector.connect(tenant.tenant_id, delegated_graph_token=token))
        found = await asyncio.gather(*(signed_in.user_batched(upn) for upn in upns))
    with requests_sent(connector, user_read_or_batch) as sent:
        app = directory_admin(connector.connect(tenant.tenant_id))
        await asyncio.gather(*(app.user_batched(upn) for upn in upns))
    assert [u.user_principal_name for u in found] == upns
    assert alone == ["GET"] * len(upns)
    assert sent == ["GET", "$batch"]


async def test_one_user_licence_changes_sent_together_share_a_batch(connector: MicrosoftConnector, tenant: SeededTenant) -> None:
    """A bulk job's items each assign one user's licence: those waiting while a call is on its way go in the
    next `$batch` together, and a user Graph does not know fails alone."""
    admin = directory_admin(connector.connect(tenant.tenant_id))
    users = []
    for _ in range(3):
        upn = f"lic-{uuid.uuid4().hex[:10]}@{tenant.domain}"
        users.append(await admin.create_user(user_principal_name=upn, display_name="Licensed", mail_nickname=upn.split("@")[0],
                                             password="Initial-Passw0rd!", usage_location="BE"))
    def licence_change_or_batch(path: str) -> str | None:
        return path.rsplit("/", 1)[-1] if path.endswith("/$batch") or path.endswith("/assignLicense") else None

    with requests_sent(connector, licence_change_or_batch) as sent:
        members = [users[0].id, users[1].id, str(uuid.uuid4()), users[2].id]
        outcomes = await asyncio.gather(*(directory_admin(connector.connect(tenant.tenant_id)).assign_licences_batched(
            member, add=["MCOEV"]) for member in members), return_exceptions=True)
    assert outcomes[:2] == [None, None] and outcomes[3] is None and isinstance(outcomes[2], NotFound)
    assert sent == ["$batch", "$batch"]  # the first alone, the three that came meanwhile together
    mcoev = (await admin.sku("MCOEV")).sku_id
    for user in users:
        assert mcoev in (await admin.user(user.id)).assigned_sku_ids
        await admin.delete_user(user.id)


async def test_a_groups_members_are_read_999_a_page_their_ids_and_names(connector: MicrosoftConnector,
                                                                        admin: DirectoryAdmin) -> None:
    """At Graph's default page (100), a 5,000-member group of a list's SRE group filter took 50 requests."""
    group = await anext(aiter(admin.groups()))
    sent: list[httpx.URL] = []

    async def on_request(request: httpx.Request) -> None:
        if request.url.path.endswith("/members"):
            sent.append(request.url)

    connector.http.event_hooks["request"].append(on_request)
    try:
        members = [m async for m in admin.group_members(group.id)]
    finally:
        connector.http.event_hooks["request"].remove(on_request)
    assert members and all(m.id and m.kind == "user" and m.display_name for m in members)
    assert [(url.params["$top"], url.params["$select"]) for url in sent] == [("999", "id,displayName")]


async def test_the_role_holders_are_read_in_one_batch_after_the_roles() -> None:
    """`role_holders` read each activated role's members one role after another, a request each; they are
    independent: one `$batch` now holds every role's first page (20 a call), a further page of a role follows it,
    and a role deactivated since the roles were listed (404 in the batch) is held by nobody. Each holder's roles
    stay in the order Graph lists them."""
    admins, users, gone = (str(uuid.UUID(int=n)) for n in (1, 2, 3))
    base = "https://graph.test/v1.0"
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.path == "/v1.0/directoryRoles":
            return httpx.Response(200, json={"value": [
                {"id": role, "displayName": name, "roleTemplateId": f"template-{name}"}
                for role, name in ((admins, "Global Administrator"), (users, "User Administrator"), (gone, "Gone"))]})
        if request.url.path == "/v1.0/$batch":
            answers = {admins: (200, {"value": [{"id": "u1"}, {"id": "u2"}],
                                      "@odata.nextLink": f"{base}/directoryRoles/{admins}/members?$select=id&$skiptoken=2"}),
                       users: (200, {"value": [{"id": "u2"}]}),
                       gone: (404, {"error": {"code": "Request_ResourceNotFound", "message": "gone"}})}
            return httpx.Response(200, json={"responses": [
                {"id": item["id"], "status": answers[item["url"].split("/")[2]][0],
                 "headers": {"Content-Type": "application/json"}, "body": answers[item["url"].split("/")[2]][1]}
                for item in json.loads(request.content)["requests"]]})
        assert request.url.params.get("$skiptoken") == "2", request.url
        return httpx.Response(200, json={"value": [{"id": "u3"}]})

    async def token() -> str:
        return "token"

    graph = GraphClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), base, token, tenant_id="scripted")
    held = await DirectoryAdmin(graph).role_holders()
    assert {user: [role.display_name for role in roles] for user, roles in held.items()} == {
        "u1": ["Global Administrator"], "u2": ["Global Administrator", "User Administrator"],
        "u3": ["Global Administrator"]}
    assert [(r.method, r.url.path) for r in sent] == [
        ("GET", "/v1.0/directoryRoles"), ("POST", "/v1.0/$batch"), ("GET", f"/v1.0/directoryRoles/{admins}/members")]
    assert [item["url"] for item in json.loads(sent[1].content)["requests"]] == [
        f"/directoryRoles/{role}/members?$select=id" for role in (admins, users, gone)]
