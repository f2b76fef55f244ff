"""Identifiers from and to callers: values bound for a Microsoft URL path are validated (a GUID or a UPN) and
encoded, in both API families; bulk job ids never collide."""

import asyncio

import pytest

from tests.api.fusion.users_support import Onboarded, onboard
from tests.support.ctt import bearer, token_for

HOSTILE = ["\x00", "../users", "..%2Fusers", "x?$select=passwordProfile", "a#b", "a/b", "../../organization@x.example",
           "x" * 5000]


@pytest.fixture
async def sub(client, live, organisation) -> Onboarded:  # type: ignore[no-untyped-def]
    return await onboard(client, live, organisation, count=2)


async def test_values_bound_for_graph_paths_are_validated(sub: Onboarded, organisation) -> None:  # type: ignore[no-untyped-def]
    client, path, headers = sub.world.client, sub.path, sub.headers
    for group in HOSTILE:
        response = await client.get(f"{path}/msteams/users", headers=headers, params={"group": group})
        assert response.status_code == 400, (group, response.text)
        assert response.json()["error"]["reason"].startswith("group:") and len(response.text) < 400, response.text
    # A well-formed id that is no group is still a plain 404.
    missing = await client.get(f"{path}/msteams/users", headers=headers, params={"group": "00000000-0000-0000-0000-00000000abcd"})
    assert missing.status_code == 404, missing.text
    for user_id in ("%00", "not-a-user", "x%3F%24select%3Did", "a%23b@x.example"):
        response = await client.get(f"{path}/msteams/user/{user_id}", headers=headers)
        assert response.status_code in (400, 404), (user_id, response.text)
    assert (await client.get(f"{path}/msteams/user/%00", headers=headers)).status_code == 400

    # ConnecttoTeams: the userPrincipalName reaches Graph's /users/{upn}.
    token = await token_for(client, organisation.resellers[0])
    consent_object = {"tenantId": sub.tenant["tenantId"], "resellerId": organisation.resellers[0].reseller_id}
    for upn in HOSTILE[1:]:
        response = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                     json=consent_object | {"userPrincipalName": upn, "voiceRoutingPolicy": None})
        assert response.status_code == 400, (upn, response.text)
        assert len(response.json()["message"]) < 200, response.text
    real = (await sub.users(3))[-1]["msTeams"]["userPrincipalName"]
    fine = await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                             json=consent_object | {"userPrincipalName": real, "voiceRoutingPolicy": None})
    assert fine.status_code == 200, fine.text


async def test_concurrent_bulk_jobs_get_distinct_job_ids(sub: Onboarded) -> None:
    client, path = sub.world.client, sub.path
    headers = {**sub.headers, "Prefer": "respond-async"}
    body = {"name": "same second", "data": [{"upn": "nobody@nowhere.example", "displayName": "Nobody"}]}
    answers = await asyncio.gather(*(client.put(f"{path}/msteams/users/bulk", headers=headers, json=body) for _ in range(5)))
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    job_ids = [a.json()["job_id"] for a in answers]
    assert len(set(job_ids)) == 5 and all(j.isdigit() for j in job_ids), job_ids
