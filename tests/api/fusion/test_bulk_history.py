"""The bulk jobs history's `filters` (spec 004: kind, one among ms_users and ms_resource_accounts; an object or an
array of condition objects, as for the users list) apply in the query, before paging: a probe found
`page_size=1&filters={"kind":["ms_resource_accounts"]}` answering no job but 4 results and 4 pages (the filter was
applied to the page afterwards). An unknown kind is a 400 naming it."""

import json

from tests.api.fusion.support import BASE, make_world


async def test_bulk_history_filters_before_paging(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(client, live, organisation)
    reseller = await world.as_("reseller")
    tenant = await world.create_tenant()
    subscription = await world.create_subscription(tenant["uuid"])
    path = f"{BASE}/tenants/{tenant['uuid']}/subscriptions/{subscription['id']}/msteams/users/bulk"

    async def jobs(session) -> None:  # type: ignore[no-untyped-def]
        from teamsvoice.domain.teams_users.models import FusionBulkJob

        for n, kind in enumerate(("ms_resource_accounts", "ms_users", "ms_users", "ms_users", "ms_resource_accounts")):
            session.add(FusionBulkJob(job_id=str(1_700_000_000 + n), subscription_id=subscription["id"], kind=kind,
                                      title=f"Job {n}", status="success"))

    await world._with_session(jobs)

    async def listed(**params: str) -> dict:  # type: ignore[type-arg]
        answer = await client.get(path, headers=reseller, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    kind = json.dumps({"kind": ["ms_resource_accounts"]})
    first = await listed(page_size="1", filters=kind)
    assert [(j["title"], j["kind"]) for j in first["bulks"]] == [("Job 4", "ms_resource_accounts")], first
    assert (first["pages"], first["results"]) == (2, 2) and first.get("next"), first
    second = await listed(page_size="1", filters=kind, next=first["next"])
    assert [j["title"] for j in second["bulks"]] == ["Job 0"] and "next" not in second, second
    users = await listed(page_size="10", filters=json.dumps({"kind": "ms_users"}))
    assert [j["title"] for j in users["bulks"]] == ["Job 3", "Job 2", "Job 1"] and users["results"] == 3, users
    both = await listed(filters=json.dumps({"kind": ["ms_users", "ms_resource_accounts"]}))
    assert both["results"] == 5
    # The spec types `filters` as an array: an array of condition objects is read as the users list reads it.
    array = json.dumps([{"kind": "ms_resource_accounts"}])
    first = await listed(page_size="1", filters=array)
    assert [j["title"] for j in first["bulks"]] == ["Job 4"] and first["results"] == 2, first
    second = await listed(page_size="1", filters=array, next=first["next"])
    assert [j["title"] for j in second["bulks"]] == ["Job 0"] and "next" not in second, second
    assert (await listed(filters=json.dumps([{"kind": ["ms_users", "ms_resource_accounts"]}])))["results"] == 5
    for bad, said in (([{"kind": "ms_users"}, {"kind": "ms_resource_accounts"}], "filters: kind is given in two"),
                      (["ms_users"], "filters: each condition must be an object"), ([], "filters: supported filter"),
                      ([{"kind": "ms_users"}, {"title": "x"}], "filters: supported filter is kind")):
        refused = await client.get(path, headers=reseller, params={"filters": json.dumps(bad)})
        assert refused.status_code == 400 and refused.json()["error"]["reason"].startswith(said), (bad, refused.text)
    for bad, named in (({"kind": ["ms_groups"]}, '"ms_groups"'), ({"kind": [3]}, "3"), ({"kind": ["ms_users", None]}, "null")):
        refused = await client.get(path, headers=reseller, params={"filters": json.dumps(bad)})
        assert refused.status_code == 400, (bad, refused.text)
        reason = refused.json()["error"]["reason"]
        assert reason.startswith(f"filters.kind: {named} is not a bulk job kind") and "ms_resource_accounts" in reason, reason
