"""Names of users and resource accounts Fusion creates in Microsoft: what Entra ID refuses is refused up front.

A probe found POST msteams/users sent Microsoft any username but one with @ or a space ("a+b", "é", "a/b": Graph's
400 came back with the raw value quoted) and any displayName (5,000 characters, a NUL, a newline: created); a
resource account's userPrincipalName needed only an @, so "a+b@domain" was accepted (200) and its job failed in
Microsoft. Now the characters Entra ID documents for a userPrincipalName (A-Z a-z 0-9 ' . - _ ! # ^ ~ before the
@; graph-and-teams-notes 1.3) and teamsvoice's name rule for display names are checked before Microsoft is asked.
"""

from tests.api.fusion.users_support import onboard

REFUSED_NAMES = ("a+b", "a&b", "é", "a/b", "a,b", "a b", "a\tb", "a%b", "a:b", "a@b")


async def _user_count(sub) -> int:  # type: ignore[no-untyped-def]
    return len((await sub.graph("/users", **{"$select": "id", "$top": "999"}))["value"])


async def test_a_name_entra_refuses_is_refused_before_microsoft(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=1)
    users, domain = f"{sub.path}/msteams/users", sub.tenant["domain"]
    base = {"displayName": "Name Probe", "domain": domain, "location": "NL"}
    before = await _user_count(sub)
    for username in REFUSED_NAMES:
        refused = await client.post(users, headers=sub.headers, json={**base, "username": username})
        assert refused.status_code == 400, (username, refused.text)
        reason = refused.json()["error"]["reason"]
        assert reason.startswith("username: only A-Z a-z 0-9"), reason
        assert "\t" not in reason, reason
    for name in ("x" * 201, "a\nb", "a\u0000b"):
        refused = await client.post(users, headers=sub.headers, json={**base, "username": "nameprobe", "displayName": name})
        assert refused.status_code == 400 and refused.json()["error"]["reason"].startswith("displayName: "), refused.text
    assert await _user_count(sub) == before  # nothing was created in Microsoft
    created = await client.post(users, headers=sub.headers, json={**base, "username": "o'neil.j-x_y!z#w^v~u"})
    assert created.status_code == 201, created.text
    ms_id = created.json()["msTeamsId"]
    renamed = await client.put(f"{users}/{ms_id}", headers=sub.headers, json={"displayName": "x" * 201})
    assert renamed.status_code == 400 and renamed.json()["error"]["reason"].startswith("displayName: "), renamed.text
    # The emulated tenant outlives the test: the user goes (other tests pick users by their place in the list).
    assert (await client.delete(f"{users}/{ms_id}", headers=sub.headers)).status_code == 204

    accounts = f"{sub.path}/msteams/resource_accounts"
    account = {"accountType": "call-queue", "displayName": "Queue", "location": "BE"}
    existing = (await client.get(accounts, headers=sub.headers)).json()["resourceAccounts"]
    for name in ("a+b", "é", "a/b"):
        refused = await client.post(accounts, headers=sub.headers, json={**account, "userPrincipalName": f"{name}@{domain}"})
        assert refused.status_code == 400, (name, refused.text)
        assert refused.json()["error"]["reason"].startswith("userPrincipalName: only A-Z a-z 0-9"), refused.text
    long_name = await client.post(accounts, headers=sub.headers,
                                  json={**account, "userPrincipalName": f"queue@{domain}", "displayName": "q" * 201})
    assert long_name.status_code == 400 and long_name.json()["error"]["reason"].startswith("displayName: "), long_name.text
    assert (await client.get(accounts, headers=sub.headers)).json()["resourceAccounts"] == existing
