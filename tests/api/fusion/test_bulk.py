"""Bulk update of MS Teams users (spec 004): 200 / 207 / 400 with per-user details, jobs history and details,
Prefer: respond-async, templates named by bulk items."""

import asyncio

import pytest

from tests.api.fusion.users_support import Onboarded, onboard


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation)


async def test_bulk_update_statuses_details_and_history(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(6)][1:]
    template = await client.post(f"{path}/msteams/templates", headers=headers, json={
        "name": "BE-Test", "productKey": "be", "location": "BE", "vrp": "teamsvoice", "groups": ["Sales"], "licenses": ["MCOEV"]})
    assert template.status_code == 201, template.text
    ok = {"upn": users[0]["userPrincipalName"], "displayName": "bulk test 1", "number": sub.numbers[0], "country": "BE",
          "vrp": "teamsvoice", "groups": ["Support"], "licenses": ["MCOEV"], "customerLicenses": ["Call-Bundle"]}
    templated = {"upn": users[1]["userPrincipalName"], "displayName": "bulk test 2", "number": sub.numbers[1], "template": "BE-Test"}
    missing = {"upn": users[2]["userPrincipalName"], "displayName": "bulk test 3", "number": None, "template": "BE-Best"}

    full = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Bulk update", "data": [ok, templated]})
    assert full.status_code == 200, full.text
    assert full.json() == {"details": [{"details": {}, "upn": ok["upn"]}, {"details": {}, "upn": templated["upn"]}],
                           "message": "Success"}
    assert await sub.teams_numbers(users[0]["id"]) == [sub.numbers[0]]
    got = (await client.get(f"{path}/msteams/user/{users[1]['id']}", headers=headers)).json()
    assert got["msTeams"]["location"] == "BE" and got["msTeams"]["vrp"] == "teamsvoice"
    assert "Sales" in [g["displayName"] for g in got["msTeams"]["groups"]] and got["draas"]["phoneNumber"] == sub.numbers[1]

    partial = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Bulk test partial", "data": [ok, missing]})
    assert partial.status_code == 207, partial.text
    error = {"error": {"code": 2095, "reason": "The template does not exist"}, "upn": missing["upn"]}
    assert partial.json() == {"details": [{"details": {}, "upn": ok["upn"]}, error], "errors": [error],
                              "message": "Some errors detected"}

    taken = {**ok, "upn": users[3]["userPrincipalName"]}  # the number is users[0]'s
    failed = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Bulk test all fail",
                                                                                  "data": [missing, taken]})
    assert failed.status_code == 400, failed.text
    assert [e["error"]["code"] for e in failed.json()["errors"]] == [2095, 2011]

    for body in ({"name": "x"}, {"name": "x", "data": []}, {"data": [ok]}, {"name": "x", "data": [{"displayName": "no upn"}]},
                 {"name": "x", "data": [ok, ok]}):
        response = await client.put(f"{path}/msteams/users/bulk", headers=headers, json=body)
        assert response.status_code == 400 and "reason" in response.json()["error"], body
    # The job's name is a stored name as any other (a probe's name of any length was taken): refused, not recorded.
    for name, problem in (("n" * 201, "at most 200 characters"), ("a\tb", "control characters"),
                          ("  ", "a bulk job descriptive name is required")):
        response = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": name, "data": [ok]})
        assert response.status_code == 400, response.text
        reason = response.json()["error"]["reason"]
        assert reason.startswith("name: ") and problem in reason, reason

    history = (await client.get(f"{path}/msteams/users/bulk", headers=headers, params={"page_size": 2})).json()
    assert [b["title"] for b in history["bulks"]] == ["Bulk test all fail", "Bulk test partial"]
    assert history["results"] == 3 and history["pages"] == 2 and history["next"]
    assert set(history["bulks"][0]) == {"id", "job_id", "kind", "title", "created_on", "updated_on"}
    searched = (await client.get(f"{path}/msteams/users/bulk", headers=headers, params={"search": "PARTIAL"})).json()
    assert [b["title"] for b in searched["bulks"]] == ["Bulk test partial"]
    details = (await client.get(f"{path}/msteams/users/bulk/{history['bulks'][1]['id']}", headers=headers)).json()
    assert details["status"] == "partial" and details["total_count"] == 2 and details["success_count"] == 1
    assert details["kind"] == "ms_users" and [i["status"] for i in details["job_items"]] == ["success", "error"]
    assert details["job_items"][1]["data"] == missing and details["job_items"][0]["upn"] == ok["upn"]
    assert (await client.get(f"{path}/msteams/users/bulk/999999", headers=headers)).status_code == 404


async def test_an_item_without_display_name_refuses_the_whole_job(sub: Onboarded) -> None:
    """Spec 004's bulk object marks `displayName` required (a probe found an item without it accepted): the job is
    refused, 400 naming the item's index and the field, before anything is recorded (no job in the history, no
    number given to the valid item before it)."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(3)][1:]
    valid = {"upn": users[0]["userPrincipalName"], "displayName": users[0]["displayName"], "number": sub.numbers[0]}
    for missing in ({}, {"displayName": None}, {"displayName": "  "}, {"displayName": 7}):
        item = {"upn": users[1]["userPrincipalName"], "number": sub.numbers[1]} | missing
        refused = await client.put(f"{path}/msteams/users/bulk", headers=headers,
                                   json={"name": "Without a name", "data": [valid, item]})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["reason"].startswith("data[1].displayName: required"), refused.text
    history = (await client.get(f"{path}/msteams/users/bulk", headers=headers)).json()
    assert history["results"] == 0 and history["bulks"] == []
    got = (await client.get(f"{path}/msteams/user/{users[0]['id']}", headers=headers)).json()
    assert (got.get("draas") or {}).get("phoneNumber") is None, got


async def test_bulk_respond_async(sub: Onboarded) -> None:
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(12)][1:11]
    data = [{"upn": u["userPrincipalName"], "displayName": u["displayName"], "number": sub.numbers[i], "vrp": "teamsvoice"}
            for i, u in enumerate(users)]
    accepted = await client.put(f"{path}/msteams/users/bulk", headers={**headers, "Prefer": "respond-async"},
                                json={"name": "async", "data": data})
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Preference-Applied"] == "respond-async"
    job = accepted.json()
    assert job["total_count"] == 10 and accepted.headers["Location"].endswith(f"/msteams/users/bulk/{job['id']}")
    for _ in range(200):
        details = (await client.get(f"{path}/msteams/users/bulk/{job['id']}", headers=headers)).json()
        assert details["total_count"] == 10 and len(details["job_items"]) == 10
        if details["status"] == "success":
            break
        assert details["status"] in ("queued", "running")
        await asyncio.sleep(0.1)
    assert details["status"] == "success" and details["success_count"] == 10
    for index, user in enumerate(users):
        assert await sub.teams_numbers(user["id"]) == [sub.numbers[index]]


async def test_items_without_a_voice_change_end_and_are_counted(sub: Onboarded) -> None:
    """An item's success is written with its last change (`service.apply_update`'s `settle`): in the voice user's last
    transaction for a voice change, with the customer licences when only those change, in a transaction of its own
    when only the directory does. Each ends `success` and the job counts it."""
    client, path, headers = sub.world.client, sub.path, sub.headers
    users = [u["msTeams"] for u in await sub.users(6)][1:]
    name_only = {"upn": users[0]["userPrincipalName"], "displayName": "only the name"}
    licences_only = {"upn": users[1]["userPrincipalName"], "displayName": users[1]["displayName"],
                     "customerLicenses": ["Call-Bundle"]}
    answer = await client.put(f"{path}/msteams/users/bulk", headers=headers,
                              json={"name": "No voice change", "data": [name_only, licences_only]})
    assert answer.status_code == 200, answer.text
    history = (await client.get(f"{path}/msteams/users/bulk", headers=headers, params={"search": "No voice"})).json()
    details = (await client.get(f"{path}/msteams/users/bulk/{history['bulks'][0]['id']}", headers=headers)).json()
    assert (details["status"], details["total_count"], details["success_count"]) == ("success", 2, 2), details
    got = (await client.get(f"{path}/msteams/user/{users[0]['id']}", headers=headers)).json()
    assert got["msTeams"]["displayName"] == "only the name"
    # Fusion data is shown for a user with a number only (spec 004): the licences kept are seen once it has one.
    user = f"{path}/msteams/users/{users[1]['id']}"
    assert "draas" not in (await client.get(f"{path}/msteams/user/{users[1]['id']}", headers=headers)).json()
    given = await client.put(f"{user}/phone_number", headers=headers, json={"phoneNumber": sub.numbers[0]})
    assert given.status_code == 204, given.text
    got = (await client.get(f"{path}/msteams/user/{users[1]['id']}", headers=headers)).json()
    assert got["draas"]["customerLicenses"] == ["Call-Bundle"], got["draas"]
    assert (await client.put(f"{user}/phone_number", headers=headers, json={"phoneNumber": None})).status_code == 204


async def test_a_stopping_server_answers_a_waiting_bulk_update_with_its_job(sub: Onboarded) -> None:
    """SIGTERM to `teamsvoice api` while a client waits on a bulk update without `Prefer: respond-async`: uvicorn's
    graceful shutdown cancels the wait after its timeout (5 s), and the client got uvicorn's bare text/plain 500 for
    a job that then succeeded (a probe), so it sent the work again. It gets a 503 in Fusion's envelope now (code
    1505, Retry-After) naming the job and where to follow it (Location), and the job ends as it would have. The API
    is served here as `teamsvoice api` serves it (runner.server, stopped by runner.serve_until as a signal stops it),
    on the live server's database and job engine, with a graceful timeout of half a second."""
    import httpx

    from tests.support.live import answer_of_a_stopping_api

    client, path, headers, live = sub.world.client, sub.path, sub.headers, sub.world.live
    users = [u["msTeams"] for u in await sub.users(4)][1:3]
    body = {"name": "Stopping", "data": [{"upn": u["userPrincipalName"], "displayName": u["displayName"],
                                          "number": sub.numbers[i], "vrp": "teamsvoice"} for i, u in enumerate(users)]}
    bulks: dict = {"bulks": []}

    async def update(stopping: httpx.AsyncClient) -> httpx.Response:
        return await stopping.put(f"{path}/msteams/users/bulk", headers=headers, json=body)

    async def recorded() -> bool:  # the job is recorded: the request waits for it (still running when cancelled)
        bulks.update((await client.get(f"{path}/msteams/users/bulk", headers=headers, params={"search": "Stopping"})).json())
        return bool(bulks["bulks"])

    answer = await answer_of_a_stopping_api(live.settings, live.emulator, update, recorded)
    [job] = bulks["bulks"]
    location = f"{path}/msteams/users/bulk/{job['id']}"
    assert answer.status_code == 503, (answer.status_code, answer.headers.get("content-type"), answer.text)
    assert answer.json() == {"error": {"code": 1505, "reason": (
        f"The server is stopping and answers before bulk job {job['id']} has ended; the job was not lost and goes on: "
        f"follow it at {location} rather than sending the request again")}}
    assert answer.headers["Retry-After"] == "5" and answer.headers["Location"] == location
    for _ in range(300):
        details = (await client.get(location, headers=headers)).json()
        if details["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert (details["status"], details["success_count"]) == ("success", 2), details


async def test_a_bulk_item_applies_the_default_template_as_one_user_is_applied_it(sub: Onboarded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A bulk item naming the "Default" template added MCOEV whatever the user held, so in a tenant whose Teams Phone
    comes in a suite (E5) and which subscribes no MCOEV SKU, an E5 user's item failed ("The license MCOEV does not
    exist"), though applying template 0 to that user alone leaves it as it is (a user with Teams Phone keeps what it
    holds). The item now decides as the single-user apply does (`templates.update_for`): it succeeds and changes
    nothing, the user as that apply finds and leaves it. The emulator subscribes no such suite: here teamsvoice reads
    the tenant's MCOEV SKU under a suite's name (its MCOEV plan kept), so the tenant has no SKU named MCOEV."""
    from dataclasses import replace

    from teamsvoice.microsoft import directory

    client, path, headers = sub.world.client, sub.path, sub.headers
    user = (await sub.users(2))[1]["msTeams"]
    assert "MCOEV" in [lic["skuPartNumber"] for lic in user["licenses"]], user  # its Teams Phone, seen as a suite's
    tenant_id, read = sub.tenant["tenantId"], directory.DirectoryAdmin._read_skus

    async def in_a_suite(self):  # type: ignore[no-untyped-def]
        skus = await read(self)
        if self._graph.tenant_id != tenant_id:
            return skus
        return [replace(s, sku_part_number="SPE_E5") if s.sku_part_number == "MCOEV" else s for s in skus]

    monkeypatch.setattr(directory.DirectoryAdmin, "_read_skus", in_a_suite)
    directory._SKUS.forget(tenant_id)  # (an earlier test's read of the tenant is remembered: bulk items take it)
    try:
        alone = await client.put(f"{path}/msteams/users/{user['id']}/templates/0", headers=headers)
        assert alone.status_code == 200, alone.text
        assert alone.json()["after"] == alone.json()["before"], alone.json()
        item = {"upn": user["userPrincipalName"], "displayName": user["displayName"], "template": "Default"}
        bulk = await client.put(f"{path}/msteams/users/bulk", headers=headers, json={"name": "Default", "data": [item]})
        assert bulk.status_code == 200, bulk.text
        assert bulk.json() == {"details": [{"details": {}, "upn": item["upn"]}], "message": "Success"}
        again = await client.put(f"{path}/msteams/users/{user['id']}/templates/0", headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["before"] == again.json()["after"] == alone.json()["after"], (again.json(), alone.json())
    finally:
        monkeypatch.undo()
        directory._SKUS.forget(tenant_id)  # the later tests read the tenant's SKUs as Microsoft names them
