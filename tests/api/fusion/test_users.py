"""MS Teams users of a subscription (spec 004): list/get/check/update and the sub-resources."""

import json
import secrets

import pytest

from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.fusion.users_support import Onboarded, onboard

MCOEV = "e43b5b99-8dfb-405f-9987-dc307f34bcbd"
ENTERPRISEPACK = "6fd2c87f-b296-42f0-b197-1e91e994b900"
MAX_PAGE = 999  # the largest page_size the users list takes (teams_users.service.MAX_USERS_PAGE)


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation)


async def test_list_paging_search_and_filters(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    first = (await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 5})).json()
    assert len(first["users"]) == 5 and first["next"]
    user = first["users"][0]["msTeams"]
    assert set(user) >= {"id", "userPrincipalName", "displayName", "location", "licenses", "voiceEnabled"}
    assert user["voiceEnabled"] in ("yes", "no", "maybe") and {"skuId", "skuPartNumber"} <= set(user["licenses"][0])
    second = (await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 5, "next": first["next"]})).json()
    assert not {u["msTeams"]["id"] for u in second["users"]} & {u["msTeams"]["id"] for u in first["users"]}
    for params in ({"page_size": 6, "next": first["next"]}, {"page_size": 5, "search": "a", "next": first["next"]},
                   {"next": "garbage"}, {"filters": "{bad"}, {"filters": json.dumps({"have_number": "maybe"})}):
        response = await client.get(f"{path}/msteams/users", headers=headers, params=params)
        assert response.status_code == 400, (params, response.text)
        assert set(response.json()["error"]) == {"code", "reason"}
    name = user["displayName"]
    found = (await client.get(f"{path}/msteams/users", headers=headers, params={"search": name[:3].lower(), "page_size": 50})).json()
    assert found["users"] and all(u["msTeams"]["displayName"].lower().startswith(name[:3].lower()) for u in found["users"])
    country = user["location"]
    by_country = (await client.get(f"{path}/msteams/users", headers=headers,
                                   params={"page_size": 50, "filters": json.dumps({"country": [country]})})).json()
    assert by_country["users"] and all(u["msTeams"]["location"] == country for u in by_country["users"])
    # One country rule: a code that is no country is a 400 here as everywhere (it answered 200 and no user).
    for url in (f"{path}/msteams/users", f"{path}/msteams/resource_accounts"):
        for bad in (["ZZ"], ["be", "ZZ"], [None]):
            refused = await client.get(url, headers=headers, params={"filters": json.dumps({"country": bad})})
            assert refused.status_code == 400, (url, bad, refused.text)
            assert refused.json()["error"]["reason"].startswith("filters.country: "), refused.text
            assert "None" not in refused.json()["error"]["reason"]
        # One reading of `filters` for every list: a condition given twice in the array form is a 400 (the last
        # one counted, silently).
        twice = json.dumps([{"country": ["BE"]}, {"country": [country]}])
        refused = await client.get(url, headers=headers, params={"filters": twice})
        assert refused.status_code == 400, (url, refused.text)
        assert refused.json()["error"]["reason"] == "filters: country is given in two conditions", refused.text
    with_number = (await client.get(f"{path}/msteams/users", headers=headers,
                                    params={"filters": json.dumps({"have_number": "yes"})})).json()
    assert with_number["users"] == []


async def test_a_filtered_list_fills_each_page_with_matching_users_and_lists_each_once(sub: Onboarded) -> None:
    """`have_number` was applied after a page had been filled to page_size from Microsoft's users: with a few of the
    tenant's users given a number, page_size=2 and have_number yes answered page after page of no user, each with a
    `next` (a portal followed 13). Now every page but the last holds page_size matching users, each matching user is
    listed once in Microsoft's order, and `next` is given only while more may follow."""
    client, path, headers = sub.world.client, sub.path, sub.headers

    async def pages(page_size: int, filters: dict | None = None) -> list[list[str]]:
        params = {"page_size": page_size} | ({"filters": json.dumps(filters)} if filters else {})
        answered: list[list[str]] = []
        while len(answered) < 40:
            response = await client.get(f"{path}/msteams/users", headers=headers, params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            answered.append([u["msTeams"]["id"] for u in body["users"]])
            if filters and filters.get("have_number") == "yes":
                assert all(u["draas"]["phoneNumber"] for u in body["users"])
            if "next" not in body:
                return answered
            params["next"] = body["next"]
        raise AssertionError(f"no last page after {len(answered)} pages")

    voiced = [u["msTeams"]["id"] for u in await sub.users(100)]
    assert len(voiced) >= 6
    numbered = [voiced[1], voiced[len(voiced) // 2], voiced[-1]]  # Microsoft's order: first, middle, last voiced
    for user_id, number in zip(numbered, sub.numbers):
        given = await client.put(f"{path}/msteams/users/{user_id}/phone_number", headers=headers,
                                 json={"phoneNumber": number})
        assert given.status_code == 204, given.text
    everyone = [user for page in await pages(MAX_PAGE) for user in page]
    assert set(numbered) <= set(everyone) and len(set(everyone)) == len(everyone)

    assert await pages(2, {"have_number": "yes"}) == [numbered[:2], numbered[2:]]
    assert await pages(1, {"have_number": "yes"}) == [[n] for n in numbered]
    assert await pages(3, {"have_number": "yes"}) == [numbered]  # full, and nothing more follows: no `next`
    assert await pages(2, {"have_number": "yes", "is_voice_enabled": "yes"}) == [numbered[:2], numbered[2:]]
    for page_size in (2, 5):
        without = await pages(page_size, {"have_number": "no"})
        assert all(len(page) == page_size for page in without[:-1]) and without[-1], without
        assert [user for page in without for user in page] == [u for u in everyone if u not in numbered]


async def test_the_list_shows_roles_as_one_user_read_does(sub: Onboarded) -> None:
    """Spec 004's users list example gives a user's `roles` (Global Administrator); the list left them out (only
    `GET msteams/user/{id}` had them). Now each listed user holding a directory role has them, as one user's read
    shows them (one renderer); a user without any has none."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    listed = (await client.get(f"{path}/msteams/users", headers=headers, params={"page_size": 50})).json()["users"]
    admin = next(u["msTeams"] for u in listed if u["msTeams"]["userPrincipalName"].startswith("admin@"))
    assert admin["roles"] == [{"id": "62e90394-69f5-4237-9190-012177145e10", "displayName": "Global Administrator"}]
    alone = (await client.get(f"{path}/msteams/user/{admin['id']}", headers=headers)).json()["msTeams"]
    assert alone["roles"] == admin["roles"]
    others = [u["msTeams"] for u in listed if u["msTeams"]["id"] != admin["id"]]
    assert others and not [u for u in others if "roles" in u]
    assert "roles" not in (await client.get(f"{path}/msteams/user/{others[0]['id']}", headers=headers)).json()["msTeams"]


async def test_update_user_number_vrp_licences_groups(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = await sub.users(5)
    alice, bob = users[1]["msTeams"], users[2]["msTeams"]
    groups = (await client.get(f"{path}/msteams/groups", headers=headers)).json()["groups"]
    group_id = groups[0]["id"]
    body = {"displayName": "John Doe", "location": "NL", "phoneNumber": sub.numbers[0], "groups": [group_id],
            "vrp": "teamsvoice", "licenses": [MCOEV], "customerLicenses": ["test-sku"]}
    updated = await client.put(f"{path}/msteams/users/{alice['id']}", headers=headers, json=body)
    assert updated.status_code == 200, updated.text
    got = (await client.get(f"{path}/msteams/user/{alice['id']}", headers=headers)).json()
    assert got["msTeams"]["displayName"] == "John Doe" and got["msTeams"]["location"] == "NL"
    assert got["msTeams"]["vrp"] == "teamsvoice" and group_id in [g["id"] for g in got["msTeams"]["groups"]]
    assert MCOEV in [l["skuId"] for l in got["msTeams"]["licenses"]] and got["msTeams"]["voiceEnabled"] == "yes"
    draas = got["draas"]
    assert draas["phoneNumber"] == sub.numbers[0] and draas["customerLicenses"] == ["test-sku"]
    assert draas["status"] == "active" and isinstance(draas["numberId"], int) and isinstance(draas["id"], int)
    assert await sub.teams_numbers(alice["id"]) == [sub.numbers[0]]
    assert (await client.get(f"{path}/msteams/users/{alice['id']}/check", headers=headers)).json() == {"voiceEnabled": True}
    listed = (await client.get(f"{path}/msteams/users", headers=headers,
                               params={"filters": json.dumps({"have_number": "yes"})})).json()["users"]
    assert [u["msTeams"]["id"] for u in listed] == [alice["id"]] and listed[0]["draas"]["phoneNumber"] == sub.numbers[0]

    held = await client.put(f"{path}/msteams/users/{bob['id']}/phone_number", headers=headers, json={"phoneNumber": sub.numbers[0]})
    assert held.status_code == 400 and held.json()["error"]["code"] == 2011
    foreign = await client.put(f"{path}/msteams/users/{bob['id']}/phone_number", headers=headers, json={"phoneNumber": "+3222999999"})
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == 2012
    bad_vrp = await client.put(f"{path}/msteams/users/{bob['id']}/vrp", headers=headers, json={"vrp": "Nope"})
    assert bad_vrp.status_code == 400, bad_vrp.text
    assert (await client.put(f"{path}/msteams/users/{bob['id']}", headers=headers, json={"location": "XX"})).status_code == 400
    # The voice checks come before Microsoft is changed: a number held or not the subscription's, or a policy the
    # tenant lacks, was refused once the name had changed, the groups and the licence (a paid seat) assigned.
    dan = next(u["msTeams"] for u in await sub.users(50, teams_phone=False)
               if MCOEV not in [l["skuId"] for l in u["msTeams"]["licenses"]] and u["msTeams"]["location"]
               and "roles" not in u["msTeams"])
    dan_read = (await client.get(f"{path}/msteams/user/{dan['id']}", headers=headers)).json()["msTeams"]
    dan_groups = [g["id"] for g in dan_read["groups"]]
    other_group = next(g["id"] for g in groups if g["id"] not in dan_groups)
    directory = {"displayName": "Not Applied", "groups": [other_group], "licenses": [MCOEV]}
    for sent, code in (({"phoneNumber": sub.numbers[0]}, 2011), ({"phoneNumber": "+3222999999"}, 2012),
                       ({"vrp": "Nope"}, 2093)):
        refused = await client.put(f"{path}/msteams/users/{dan['id']}", headers=headers, json={**directory, **sent})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == code, refused.text
        if code == 2093:  # answered as a policy Teams refuses is answered (the vrp sub-resource's answer)
            assert refused.json() == bad_vrp.json(), (refused.text, bad_vrp.text)
        got = (await client.get(f"{path}/msteams/user/{dan['id']}", headers=headers)).json()
        assert (got["msTeams"]["displayName"], got["msTeams"]["licenses"]) == (dan["displayName"], dan["licenses"]), got
        assert [g["id"] for g in got["msTeams"]["groups"]] == dan_groups and "draas" not in got, got
    # The number is recorded before the directory's changes: should they fail, it is put back (still free).
    failed = await client.put(f"{path}/msteams/users/{bob['id']}", headers=headers,
                              json={"groups": ["No Such Group"], "phoneNumber": sub.numbers[5]})
    assert failed.status_code == 404, failed.text
    assert "draas" not in (await client.get(f"{path}/msteams/user/{bob['id']}", headers=headers)).json()
    assert sub.numbers[5] in (await client.get(f"{path}/free_numbers", headers=headers)).json()["freeNumbers"]
    # A number Teams refuses (held there by a user teamsvoice does not know) leaves bob as he was, his sync failed
    # (provisioning.service.undone_on_failure, the rule ConnecttoTeams' updateUserDetails shares).
    carol = users[3]["msTeams"]["userPrincipalName"]
    connector = MicrosoftConnector(sub.world.live.settings)
    teams = connector.connect(sub.tenant["tenantId"]).voice
    try:
        await teams.assign_number(carol, sub.numbers[2])
        refused = await client.put(f"{path}/msteams/users/{bob['id']}/phone_number", headers=headers,
                                   json={"phoneNumber": sub.numbers[2]})
        assert refused.status_code == 400 and "already been assigned" in refused.json()["error"]["reason"], refused.text
        got = (await client.get(f"{path}/msteams/user/{bob['id']}", headers=headers)).json()
        assert "draas" not in got, got  # no number: no Fusion data (spec 004)
        # A user with a number keeps it in Teams too: removed before the refused one was asked for, it is given back
        # (alice was left with no number in Teams, hers free there for anyone, while Fusion said she held it).
        in_teams = await teams.voice_state(alice["id"])
        assert in_teams.phone_numbers == [sub.numbers[0]] and in_teams.voice_routing_policy == "teamsvoice", in_teams
        refused = await client.put(f"{path}/msteams/users/{alice['id']}/phone_number", headers=headers,
                                   json={"phoneNumber": sub.numbers[2]})
        assert refused.status_code == 400 and "already been assigned" in refused.json()["error"]["reason"], refused.text
        assert await teams.voice_state(alice["id"]) == in_teams
        # Customer licences sent with it stay as they were too (billing data: they were written with the number).
        refused = await client.put(f"{path}/msteams/users/{alice['id']}", headers=headers,
                                   json={"phoneNumber": sub.numbers[2], "customerLicenses": ["other-sku"]})
        assert refused.status_code == 400 and "already been assigned" in refused.json()["error"]["reason"], refused.text
        got = (await client.get(f"{path}/msteams/user/{alice['id']}", headers=headers)).json()
        assert got["draas"]["phoneNumber"] == sub.numbers[0] and got["msTeams"]["vrp"] == "teamsvoice", got
        assert got["draas"]["customerLicenses"] == ["test-sku"], got
    finally:
        await teams.remove_numbers(carol)
        await connector.aclose()

    assert (await client.put(f"{path}/msteams/users/{alice['id']}/phone_number", headers=headers,
                             json={"phoneNumber": sub.numbers[1]})).status_code == 204
    assert await sub.teams_numbers(alice["id"]) == [sub.numbers[1]]
    disabled = await client.put(f"{path}/msteams/users/{alice['id']}", headers=headers, json={"phoneNumber": None})
    assert disabled.status_code == 204 and await sub.teams_numbers(alice["id"]) == []
    assert (await client.put(f"{path}/msteams/users/{bob['id']}/phone_number", headers=headers,
                             json={"phoneNumber": sub.numbers[0]})).status_code == 204  # freed, so free again
    assert (await client.put(f"{path}/msteams/users/{alice['id']}/vrp", headers=headers, json={"vrp": None})).status_code == 204
    assert (await client.put(f"{path}/msteams/users/{alice['id']}/groups", headers=headers, json={"groups": []})).status_code == 204
    assert (await client.put(f"{path}/msteams/{alice['id']}/licenses", headers=headers,
                             json={"skuIds": [ENTERPRISEPACK]})).status_code == 204
    assert (await client.put(f"{path}/msteams/users/{alice['id']}/properties", headers=headers,
                             json={"displayName": "Jane Doe", "location": "BE"})).status_code == 204
    got = (await client.get(f"{path}/msteams/user/{alice['id']}", headers=headers)).json()["msTeams"]
    assert got["groups"] == [] and got["vrp"] == "Global" and [l["skuId"] for l in got["licenses"]] == [ENTERPRISEPACK]
    assert got["displayName"] == "Jane Doe" and got["location"] == "BE"
    sip = (await client.get(f"{path}/users/{alice['id']}/sip_address", headers=headers)).json()
    assert sip == {"sipAddress": f"sip:{alice['userPrincipalName']}"}
    # Its object id in capitals is the same user (the other routes find it): Teams was asked by the id as sent, and
    # answered 400 code 1009 "Get-CsOnlineUser failed: Management object not found".
    upper = await client.get(f"{path}/users/{alice['id'].upper()}/sip_address", headers=headers)
    assert upper.status_code == 200 and upper.json() == sip, upper.text
    assert (await client.get(f"{path}/msteams/user/00000000-0000-0000-0000-000000000000", headers=headers)).status_code == 404


async def test_fusion_data_only_for_a_voice_enabled_user_with_a_number(sub: Onboarded) -> None:
    """Spec 004: "The MS Teams data is enriched with Fusion data if a user is voice enabled and have a phone number
    assigned". A user teamsvoice keeps a record of without a number (customer licences only) had a `draas` in the
    list and read alone; it has none now."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    user = (await sub.users(3))[2]["msTeams"]
    given = await client.put(f"{path}/msteams/users/{user['id']}", headers=headers, json={"customerLicenses": ["CL-1"]})
    assert given.status_code == 200, given.text
    alone = (await client.get(f"{path}/msteams/user/{user['id']}", headers=headers)).json()
    listed = (await sub.users(3))[2]
    assert alone["msTeams"]["id"] == listed["msTeams"]["id"] == user["id"] and alone["msTeams"]["voiceEnabled"] == "yes"
    assert "draas" not in alone and "draas" not in listed, (alone, listed)


async def test_create_and_delete_user_and_roles(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    body = {"displayName": "Thomas Anderson", "domain": sub.tenant["domain"], "username": "ThomasA", "location": "NL",
            "customerLicenses": ["test-sku"]}
    created = await client.post(f"{path}/msteams/users", headers=headers, json=body)
    assert created.status_code == 201, created.text
    ms_id = created.json()["msTeamsId"]
    user = await sub.graph(f"/users/{ms_id}", **{"$select": "userPrincipalName,usageLocation"})
    assert user["userPrincipalName"].lower() == f"thomasa@{sub.tenant['domain']}" and user["usageLocation"] == "NL"
    assert (await client.post(f"{path}/msteams/users", headers=headers, json={**body, "domain": "nope.example"})).status_code == 400
    # A null location is named as the request wrote it (it answered "'None' is not an ISO 3166 alpha-2 country code").
    null = "location: must be an ISO 3166 alpha-2 country code such as BE, not null"
    for method, url, sent in (("POST", f"{path}/msteams/users", {**body, "location": None}),
                              ("PUT", f"{path}/msteams/users/{ms_id}", {"location": None})):
        refused = await client.request(method, url, headers=headers, json=sent)
        assert refused.status_code == 400 and refused.json()["error"]["reason"] == null, refused.text
    # A new user has no licence: Teams Phone first, then its number (Microsoft refuses a number without it).
    assert (await client.put(f"{path}/msteams/users/{ms_id}/licenses", headers=headers,
                             json={"licenses": [MCOEV]})).status_code == 204
    assert (await client.put(f"{path}/msteams/users/{ms_id}/phone_number", headers=headers,
                             json={"phoneNumber": sub.numbers[2]})).status_code == 204
    assert (await client.delete(f"{path}/msteams/users/{ms_id}", headers=headers)).status_code == 204
    assert (await client.get(f"{path}/msteams/user/{ms_id}", headers=headers)).status_code == 404
    # Its number rests in quarantine, as any number whose user was deleted in Entra ID (it was free at once).
    await _in_quarantine(sub, sub.numbers[2])
    assert await _record(sub, user["userPrincipalName"]) == (None, False, None, "USER_DELETED", None)
    again = await client.delete(f"{path}/msteams/users/{ms_id}", headers=headers)  # gone, and freed: unknown now
    assert again.status_code == 404 and again.json()["error"]["code"] == 2090, again.text
    await sub.world.tenant_login(sub.path.split("/")[6], "reader", permissions=[
        "tenants.instance.subscriptions.instance.msteams.users.list"])
    reader = await sub.world.as_("reader")
    assert (await client.get(f"{path}/msteams/users", headers=reader)).status_code == 200
    for method, url in (("PUT", f"{path}/msteams/users/{ms_id}"), ("GET", f"{path}/msteams/user/{ms_id}"),
                        ("PUT", f"{path}/msteams/users/bulk"), ("POST", f"{path}/msteams/groups")):
        response = await client.request(method, url, headers=reader, json={})
        assert response.status_code == 403 and response.json()["error"]["code"] == 1003


async def _in_quarantine(sub: Onboarded, number: str) -> None:
    """The number is neither held nor free: not in free_numbers, listed unassigned with `freeOn`, refused to a user."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    free = (await client.get(f"{path}/free_numbers", headers=headers, params={"search": number[3:]})).json()
    assert free["freeNumbers"] == [], free
    listed = (await client.get(f"{path}/numbers", headers=headers, params={"search": number[3:]})).json()["numbers"]
    assert [(n["fullNumber"], n["assigned"], "freeOn" in n) for n in listed] == [(number, False, True)], listed
    someone = next(u["msTeams"]["id"] for u in await sub.users(3))
    refused = await client.put(f"{path}/msteams/users/{someone}/phone_number", headers=headers,
                               json={"phoneNumber": number})
    assert refused.status_code == 400, refused.text
    assert f"{number} is in quarantine" in refused.json()["error"]["reason"], refused.text


async def _record(sub: Onboarded, upn: str) -> tuple | None:
    """The user's voice record as (number, calling, Microsoft id, last sync status, customer licences)."""
    from teamsvoice.domain.fusion.models import FusionSubscription
    from teamsvoice.domain.provisioning import voice_users
    from teamsvoice.domain.teams_users import repository

    found: list = []

    async def read(session):  # type: ignore[no-untyped-def]
        subscription = await session.get(FusionSubscription, int(sub.path.rsplit("/", 1)[1]))
        record = await voice_users.find(session, subscription.enterprise_id, upn)
        if record is not None:
            licences = await repository.customer_licences_of(session, [record.id])
            found.append((record.phone_number, record.calling_enabled, record.microsoft_user_id,
                          record.last_sync_status, licences.get(record.id)))
    await sub.world._with_session(read)
    return found[0] if found else None


async def test_a_user_is_freed_only_once_microsoft_deleted_it(sub: Onboarded,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete asked Microsoft last: teamsvoice had freed the number and forgotten the user (committed) when
    Microsoft's delete failed, and the user still held the number in Entra ID and Teams while it was listed free.
    Microsoft is asked first now: its failure leaves the user, its record and its number as they were; and a DELETE
    sent again once the user is gone from the directory (as after a crash between the two steps) finishes the
    records' step."""
    import httpx

    from teamsvoice.microsoft.directory import DirectoryAdmin

    client, path, headers = sub.world.client, sub.path, sub.headers
    body = {"displayName": "Leaver", "domain": sub.tenant["domain"], "username": f"leaver{secrets.token_hex(3)}",
            "location": "BE", "customerLicenses": ["test-sku"]}
    created = await client.post(f"{path}/msteams/users", headers=headers, json=body)
    assert created.status_code == 201, created.text
    ms_id, number = created.json()["msTeamsId"], sub.numbers[3]
    upn = f"{body['username']}@{sub.tenant['domain']}".lower()
    assert (await client.put(f"{path}/msteams/users/{ms_id}/licenses", headers=headers,
                             json={"licenses": [MCOEV]})).status_code == 204
    assert (await client.put(f"{path}/msteams/users/{ms_id}/phone_number", headers=headers,
                             json={"phoneNumber": number})).status_code == 204
    before = await _record(sub, upn)
    assert before == (number, True, ms_id, before[3], ["test-sku"]), before

    emulator = sub.world.live.emulator

    async def faults(method: str, config: dict | None = None) -> None:
        async with httpx.AsyncClient(verify=str(emulator.ca_cert_path)) as admin:
            answer = await admin.request(method, f"{emulator.url}/_admin/faults", json=config)
            assert answer.status_code == 200, answer.text

    delete = DirectoryAdmin.delete_user

    async def refused_by_microsoft(self: DirectoryAdmin, id_or_upn: str, *, missing_ok: bool = False) -> bool:
        # Microsoft fails this user's delete itself (every try a 429): what came before it was answered.
        if id_or_upn != ms_id:
            return await delete(self, id_or_upn, missing_ok=missing_ok)
        await faults("PUT", {"storm429": {"count": 200, "retryAfterSeconds": 0}})
        try:
            return await delete(self, id_or_upn, missing_ok=missing_ok)
        finally:
            await faults("DELETE")

    monkeypatch.setattr(DirectoryAdmin, "delete_user", refused_by_microsoft)
    try:
        failed = await client.delete(f"{path}/msteams/users/{ms_id}", headers=headers)
    finally:
        await faults("DELETE")
        monkeypatch.setattr(DirectoryAdmin, "delete_user", delete)
    assert failed.status_code >= 500 and set(failed.json()["error"]) == {"code", "reason"}, failed.text
    assert (await sub.graph(f"/users/{ms_id}", **{"$select": "id"}))["id"] == ms_id
    assert await sub.teams_numbers(ms_id) == [number]
    assert await _record(sub, upn) == before
    got = await client.get(f"{path}/msteams/user/{ms_id}", headers=headers)
    assert got.status_code == 200 and got.json()["draas"]["phoneNumber"] == number, got.text
    free = (await client.get(f"{path}/free_numbers", headers=headers, params={"search": number[3:]})).json()
    assert free["freeNumbers"] == [], free

    # Microsoft deleted the user, and teamsvoice never got to its records (a crash between the two steps): the
    # DELETE sent again finds the user gone from the directory and finishes.
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        assert await connector.connect(sub.tenant["tenantId"]).directory_admin.delete_user(ms_id) is True
    finally:
        await connector.aclose()
    finished = await client.delete(f"{path}/msteams/users/{ms_id.upper()}", headers=headers)
    assert finished.status_code == 204, finished.text
    assert await _record(sub, upn) == (None, False, None, "USER_DELETED", None)
    await _in_quarantine(sub, number)
    # A user neither Microsoft nor teamsvoice knows is not found, as before.
    unknown = await client.delete(f"{path}/msteams/users/00000000-0000-0000-0000-000000000000", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 2090, unknown.text


async def test_a_user_seen_first_with_a_number_is_one_record_and_one_audit_entry(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A Teams user teamsvoice has no record of yet, given a number: its record is added with the number (one
    INSERT, one `teams_user.create` entry carrying it, not an empty record and then its change). Should another
    request add the record meanwhile, the change is decided again against that record (and applied to it)."""
    from sqlalchemy import select

    from teamsvoice.domain.audit.models import AuditEntry
    from teamsvoice.domain.provisioning import voice_users
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser

    client, path, headers = sub.world.client, sub.path, sub.headers
    first, second = (u["msTeams"] for u in (await sub.users(30))[-2:])
    put = await client.put(f"{path}/msteams/users/{first['id']}/phone_number", headers=headers, json={"phoneNumber": sub.numbers[0]})
    assert put.status_code in (200, 204), put.text
    upn = first["userPrincipalName"].lower()

    found: list = []

    async def entries(session):  # type: ignore[no-untyped-def]
        found.extend((e.action, (e.after or {}).get("phone_number")) for e in await session.scalars(
            select(AuditEntry).where(AuditEntry.aggregate == "teams_user", AuditEntry.object_label == upn)))
    await sub.world._with_session(entries)
    assert found == [("teams_user.create", sub.numbers[0])]

    # Another request adds the second user's record after this one looked (and found none): it is used.
    other = second["userPrincipalName"].lower()
    looked = voice_users.find

    async def stale_once(session, enterprise_id, name, microsoft_user_id=None):  # type: ignore[no-untyped-def]
        if name.lower() != other:
            return await looked(session, enterprise_id, name, microsoft_user_id)
        monkeypatch.setattr(voice_users, "find", looked)
        await voice_users.add(session, enterprise_id, name, second["id"], voice_routing_policy="teamsvoice")
        return None

    monkeypatch.setattr(voice_users, "find", stale_once)
    put = await client.put(f"{path}/msteams/users/{second['id']}/phone_number", headers=headers, json={"phoneNumber": sub.numbers[1]})
    assert put.status_code in (200, 204), put.text

    records: list = []

    async def record(session):  # type: ignore[no-untyped-def]
        records.extend((r.phone_number, r.voice_routing_policy, r.calling_enabled) for r in await session.scalars(
            select(TeamsVoiceUser).where(TeamsVoiceUser.user_principal_name == other)))
    await sub.world._with_session(record)
    assert records == [(sub.numbers[1], "teamsvoice", True)]
    assert sub.numbers[1] in await sub.teams_numbers(second["id"])


async def test_a_user_added_meanwhile_with_the_same_number_keeps_it(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same change made twice at once (a bulk item retried while its run cut off by a cancel is still in flight):
    the other transaction adds the user's record with the number after this one looked and found none. The number is
    this user's own, not 'already assigned': the change succeeds (before, the retried item failed with 'already
    assigned to <the same user>': tests/console/test_console_without_javascript.py under load)."""
    from sqlalchemy import select

    from teamsvoice.domain.provisioning import voice_users
    from teamsvoice.domain.provisioning.models import TeamsVoiceUser

    client, path, headers = sub.world.client, sub.path, sub.headers
    third = (await sub.users(30))[-3]["msTeams"]
    name, number = third["userPrincipalName"].lower(), sub.numbers[2]
    looked = voice_users.find

    async def stale_once(session, enterprise_id, upn, microsoft_user_id=None):  # type: ignore[no-untyped-def]
        if upn.lower() != name:
            return await looked(session, enterprise_id, upn, microsoft_user_id)
        monkeypatch.setattr(voice_users, "find", looked)
        await voice_users.add(session, enterprise_id, upn, third["id"], phone_number=number, calling_enabled=True)
        return None

    monkeypatch.setattr(voice_users, "find", stale_once)
    put = await client.put(f"{path}/msteams/users/{third['id']}/phone_number", headers=headers, json={"phoneNumber": number})
    assert put.status_code in (200, 204), put.text

    records: list = []

    async def record(session):  # type: ignore[no-untyped-def]
        records.extend((r.phone_number, r.calling_enabled) for r in await session.scalars(
            select(TeamsVoiceUser).where(TeamsVoiceUser.user_principal_name == name)))
    await sub.world._with_session(record)
    assert records == [(number, True)]
    assert number in await sub.teams_numbers(third["id"])


async def test_a_create_converges_and_a_new_user_starts_afresh(sub: Onboarded, monkeypatch: pytest.MonkeyPatch) -> None:
    """Graph's client sends POST /users again after a 5xx or a lost connection: when the first had made the user, the
    second was refused "already exists" and the caller got a conflict (400, code 1009) for its own creation, at every
    retry. A user of the name that teamsvoice does not know and that is what was asked (display name, location, no
    licence) is taken as made now; any other holder of the name is still a conflict. And a new user was given the
    record of a deleted user of the same name, that user's number and calling with it (the next sync pushed them): it
    starts afresh now, the number in quarantine as any deleted user's."""
    import httpx

    from teamsvoice.microsoft.graph import GraphClient

    client, path, headers = sub.world.client, sub.path, sub.headers
    body = {"displayName": "Twice Made", "domain": sub.tenant["domain"], "username": f"twice{secrets.token_hex(3)}",
            "location": "BE", "customerLicenses": ["old-sku"]}
    upn, number = f"{body['username']}@{sub.tenant['domain']}".lower(), sub.numbers[4]
    first = await client.post(f"{path}/msteams/users", headers=headers, json=body)
    assert first.status_code == 201, first.text
    old_id = first.json()["msTeamsId"]
    assert (await client.put(f"{path}/msteams/users/{old_id}/licenses", headers=headers,
                             json={"licenses": [MCOEV]})).status_code == 204
    assert (await client.put(f"{path}/msteams/users/{old_id}/phone_number", headers=headers,
                             json={"phoneNumber": number})).status_code == 204
    # Deleted in Microsoft 365 by someone else, no sync since: its record still holds the number, calling on.
    connector = MicrosoftConnector(sub.world.live.settings)
    try:
        assert await connector.connect(sub.tenant["tenantId"]).directory_admin.delete_user(old_id) is True
    finally:
        await connector.aclose()
    assert (await _record(sub, upn))[:3] == (number, True, old_id)

    # Made again under the name, and Graph's answer to the POST is lost (a 503 once the user is made): sent again.
    send, lost = GraphClient._send, []

    async def answer_lost(self, method, url, sent_headers, kwargs):  # type: ignore[no-untyped-def]
        response = await send(self, method, url, sent_headers, kwargs)
        if method == "POST" and httpx.URL(url).path.endswith("/users") and not lost:
            lost.append(response.status_code)
            return httpx.Response(503, json={"error": {"code": "serviceUnavailable", "message": "lost"}},
                                  request=response.request)
        return response

    monkeypatch.setattr(GraphClient, "_send", answer_lost)
    try:
        again = await client.post(f"{path}/msteams/users", headers=headers,
                                  json={**body, "customerLicenses": ["new-sku"]})
    finally:
        monkeypatch.setattr(GraphClient, "_send", send)
    assert lost == [201] and again.status_code == 201, (lost, again.text)
    new_id = again.json()["msTeamsId"]
    assert new_id == (await sub.graph(f"/users/{upn}", **{"$select": "id"}))["id"] != old_id
    recorded = await _record(sub, upn)
    assert recorded is not None and recorded[:3] == (None, False, new_id) and recorded[4] == ["new-sku"], recorded
    await _in_quarantine(sub, number)

    # Another holder of the name is refused (Fusion's conflict: 400, code 1009): a user teamsvoice knows (this one
    # now), or one unlike what was asked.
    known = await client.post(f"{path}/msteams/users", headers=headers, json={**body, "customerLicenses": ["new-sku"]})
    assert known.status_code == 400 and known.json()["error"]["code"] == 1009, known.text
    plain = {**body, "username": f"plain{secrets.token_hex(3)}", "customerLicenses": []}
    made = await client.post(f"{path}/msteams/users", headers=headers, json=plain)
    assert made.status_code == 201, made.text
    same = await client.post(f"{path}/msteams/users", headers=headers, json=plain)  # (a retry of it: it is there)
    assert same.status_code == 201 and same.json() == made.json(), same.text
    for unlike in ({"displayName": "Someone Else"}, {"location": "NL"}):
        refused = await client.post(f"{path}/msteams/users", headers=headers, json={**plain, **unlike})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == 1009, (unlike, refused.text)
