"""The MS Teams users list's `next` token (spec 004: "a token used to get the next records"): opaque to the client.

A probe found the token held Microsoft Graph's @odata.nextLink readable (base64 JSON with the tenant's Graph address
and skiptoken), and a token was bound to the query but not to the subscription: one issued for another subscription
was followed with this subscription's credentials. Now it is sealed (encrypted) and bound to the subscription.
"""

import base64
import binascii

from teamsvoice.api.fusion import paging
from teamsvoice.core.security import Keyring, load_or_create_master_key
from tests.api.fusion.support import BASE
from tests.api.fusion.users_support import onboard


def _readable(token: str) -> str:
    """Everything a client can read out of the token: the token itself and each part base64-decoded."""
    parts = [token]
    for part in token.split("."):
        try:
            parts.append(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode("latin-1"))
        except (binascii.Error, ValueError):
            pass
    return "\n".join(parts).lower()


def _refused_naming_next(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.text
    assert response.json()["error"]["reason"].startswith("next: "), response.text


async def test_next_is_opaque_and_only_valid_for_its_subscription(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=1)
    users = f"{sub.path}/msteams/users"
    first = (await client.get(users, headers=sub.headers, params={"page_size": 2})).json()
    token = first["next"]
    readable = _readable(token)
    for secret in ("graph", "skiptoken", "http", "/v1.0", live.emulator.url.lower(), sub.tenant["tenantId"].lower()):
        assert secret not in readable, (secret, token)
    following = await client.get(users, headers=sub.headers, params={"page_size": 2, "next": token})
    assert following.status_code == 200 and following.json()["users"], following.text

    # A changed token is refused before anything is asked of Microsoft.
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1:]
    for bad in (tampered, token[:-4], token + "x", "x" * 9000):
        _refused_naming_next(await client.get(users, headers=sub.headers, params={"page_size": 2, "next": bad}))

    # Another subscription (of another MS Teams tenant) with the same query: the token is not its own.
    other_subscription = await sub.world.create_subscription(sub.path.split("/tenants/")[1].split("/")[0], name="Other")
    other = f"{BASE}/tenants/{sub.path.split('/tenants/')[1].split('/')[0]}/subscriptions/{other_subscription['id']}"
    await sub.world.onboard(other, live.emulator.tenants[1])
    own = await client.get(f"{other}/msteams/users", headers=sub.headers, params={"page_size": 2})
    assert own.status_code == 200 and own.json()["next"], own.text
    _refused_naming_next(await client.get(f"{other}/msteams/users", headers=sub.headers,
                                          params={"page_size": 2, "next": token}))


async def test_a_link_outside_the_tenants_graph_is_never_followed(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    """Even a token sealed with the server's key (its keyring leaked, a bug elsewhere) is never a request to an
    arbitrary URL: only a page of the tenant's own Graph is followed."""
    sub = await onboard(client, live, organisation, count=1)
    keyring = Keyring(load_or_create_master_key(live.settings.secret_key, live.settings.data_dir))
    subscription_id = int(sub.path.rsplit("/", 1)[1])
    context = {"subscription": subscription_id, "ms_tenant": sub.tenant["tenantId"], "page_size": 2, "search": "",
               "group": "", "country": [], "voice": None, "have": None}
    for link in ("http://127.0.0.1:21201/v1.0/users", f"{live.emulator.url}/v1.0/users/../../_admin/faults",
                 f"{live.emulator.url}.evil.example/v1.0/users"):
        forged = paging.encode_cursor(keyring, {"u": link, "s": 0}, context)
        _refused_naming_next(await client.get(f"{sub.path}/msteams/users", headers=sub.headers,
                                              params={"page_size": 2, "next": forged}))
