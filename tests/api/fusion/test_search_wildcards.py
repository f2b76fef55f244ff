"""A search matches its text as written (`core.search`): a probe found tenant `search=_` answering every tenant,
`search=a_a` matching "Adatum" (LIKE's wildcards were not escaped) and a NUL (`%00`) in a search matching all.
Every search over the database goes through the one helper; a NUL is a 400 naming the field."""

from tests.api.fusion.support import BASE, make_world


async def test_searches_match_wildcards_as_written(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(client, live, organisation)
    reseller = await world.as_("reseller")
    names = ["Adatum", "Under_score", "100% Voice", "Back\\slash"]
    for name in names:
        await world.create_tenant(name=name)

    async def found(url: str, key: str, search: str) -> list[str]:
        answer = await client.get(url, headers=reseller, params={"search": search})
        assert answer.status_code == 200, (search, answer.text)
        return [row.get("name") or row.get("title") or row.get("username") for row in answer.json()[key]]

    tenants = f"{BASE}/tenants"
    assert await found(tenants, "tenants", "_") == ["Under_score"]
    assert await found(tenants, "tenants", "a_a") == []
    assert await found(tenants, "tenants", "%") == ["100% Voice"]
    assert await found(tenants, "tenants", "\\") == ["Back\\slash"]
    assert await found(tenants, "tenants", "ADA") == ["Adatum"]  # still any case
    uuid = (await client.get(tenants, headers=reseller, params={"search": "Adatum"})).json()["tenants"][0]["uuid"]
    subscription = await world.create_subscription(uuid, name="Main_line")
    await world.create_subscription(uuid, name="Backup")
    subscriptions = f"{tenants}/{uuid}/subscriptions"
    assert await found(subscriptions, "subscriptions", "_") == ["Main_line"]
    assert await found(subscriptions, "subscriptions", "%") == []

    async def jobs(session) -> None:  # type: ignore[no-untyped-def]
        from teamsvoice.domain.teams_users.models import FusionBulkJob

        for title in ("50% done", "Renumbering"):
            session.add(FusionBulkJob(job_id="1700000000", subscription_id=subscription["id"], title=title, status="success"))

    await world._with_session(jobs)
    bulk = f"{subscriptions}/{subscription['id']}/msteams/users/bulk"
    assert await found(bulk, "bulks", "%") == ["50% done"]
    assert await found(bulk, "bulks", "0_") == []  # not "0 and any one character" ("50% done")
    assert await found(bulk, "bulks", "s_u") == ["Renumbering", "50% done"]  # the kind, ms_users
    for url in (tenants, subscriptions, bulk, f"{subscriptions}/{subscription['id']}/msteams/templates",
                f"{BASE}/users"):
        refused = await client.get(url, headers=reseller, params={"search": "a\x00"})
        assert refused.status_code == 400, (url, refused.text)
        assert refused.json()["error"]["reason"] == "search: must not contain a NUL character", (url, refused.text)
