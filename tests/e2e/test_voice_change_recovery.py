"""A one-user voice change whose process died once its wish was committed (before Teams answered), sent again by
the client and then refused by Teams, goes back to the user's settings before the first attempt, not to the dead
attempt's wish: the record keeps the user's own number, which is not listed free. Before, the change sent again took
the record as it read it (holding the dead attempt's wish) for "before": the undo "restored" the refused number, the
user's own number was listed free though Teams kept it, and syncs pushed the refused one. The change is pending on
the record (`provisioning.service.record_wish`) until its outcome: the same rule for Fusion's user PUT and
ConnecttoTeams' updateUserDetails (and bulk items: test_bulk_item_recovery.py)."""

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from teamsvoice.core.db import transaction
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.provisioning import service as provisioning
from teamsvoice.domain.teams_users import bulk, service
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.ports import TenantConnection
from tests.api.fusion.users_support import Onboarded, onboard
from tests.support.ctt import bearer, token_for


class Killed(BaseException):
    """The process dying: none of the change's own handling runs (an Exception would be its failure)."""


async def _killed(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    raise Killed()


Attempt = Callable[[async_sessionmaker[AsyncSession], SubscriptionAccess, TenantConnection], Awaitable[object]]


async def _dies_once_recorded(live, sub: Onboarded, attempt: Attempt) -> None:  # type: ignore[no-untyped-def]
    """Runs `attempt(sessions, access, connection)` on a connection whose first change in Teams (removing the
    user's number) kills the process: the wish is committed, Teams not changed."""
    async with sub.as_a_worker() as (sessions, access, connector):
        dying = connector.connect(sub.tenant["tenantId"])  # (this connection only: the live server runs on)
        dying.voice.remove_numbers = _killed  # type: ignore[method-assign]
        with pytest.raises(Killed):
            await attempt(sessions, access, dying)


async def _held_in_teams_by(live, sub: Onboarded, upn: str, number: str) -> None:
    """`number` given to `upn` in Teams behind teamsvoice's back: Teams refuses it to anyone else."""
    connector = MicrosoftConnector(live.settings)
    try:
        await connector.connect(sub.tenant["tenantId"]).voice.assign_number(upn, number)
    finally:
        await connector.aclose()


async def _put_number(sub: Onboarded, user_id: str, number: str) -> int:
    put = await sub.world.client.put(f"{sub.path}/msteams/users/{user_id}/phone_number", headers=sub.headers,
                                     json={"phoneNumber": number})
    return put.status_code


async def _two_users(sub: Onboarded) -> tuple[dict, dict]:
    users = [u["msTeams"] for u in await sub.users(6) if not u["msTeams"]["userPrincipalName"].startswith("admin@")]
    return users[0], users[1]


async def test_a_fusion_put_sent_again_after_a_crash_and_refused_keeps_the_users_own_number(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, count=4)
    ada, bob = await _two_users(sub)
    own, held, other = sub.numbers[0], sub.numbers[1], sub.numbers[2]
    assert await _put_number(sub, ada["id"], own) == 204
    await _held_in_teams_by(live, sub, bob["userPrincipalName"], held)

    def put(number: str) -> Attempt:
        async def attempt(sessions, access, connection):  # type: ignore[no-untyped-def]
            user = await service.directory_user(connection.directory_admin, ada["id"])
            return await service.apply_update(sessions, access, connection, user,
                                              service.parse_changes({"phone_number": number}))
        return attempt

    await _dies_once_recorded(live, sub, put(held))
    again = await client.put(f"{sub.path}/msteams/users/{ada['id']}/phone_number", headers=sub.headers,
                             json={"phoneNumber": held})
    assert again.status_code == 400 and "already been assigned" in again.json()["error"]["reason"], again.text
    assert await sub.recorded_number(ada["id"]) == own
    assert await sub.teams_numbers(ada["id"]) == [own]
    assert own not in await sub.free_numbers()

    # A change that succeeds is no longer pending: a later refusal goes back to it, not to the settings before a
    # dead attempt of it.
    await _dies_once_recorded(live, sub, put(other))
    assert await _put_number(sub, ada["id"], other) == 204
    assert await _put_number(sub, ada["id"], held) == 400
    assert await sub.recorded_number(ada["id"]) == other
    assert await sub.teams_numbers(ada["id"]) == [other]
    free = await sub.free_numbers()
    assert other not in free and own in free, free


async def test_a_connecttoteams_update_sent_again_after_a_crash_and_refused_keeps_the_users_own_number(client, live, organisation) -> None:  # type: ignore[no-untyped-def]
    sub = await onboard(client, live, organisation, tenant_index=2, count=3)
    ada, bob = await _two_users(sub)
    own, held = sub.numbers[0], sub.numbers[1]
    token = await token_for(client, organisation.resellers[0])
    consent_object = {"tenantId": sub.tenant["tenantId"], "resellerId": organisation.resellers[0].reseller_id}

    async def update(number: str):  # type: ignore[no-untyped-def]
        return await client.post("/provisioning/updateUserDetails", headers=bearer(token),
                                 json=consent_object | {"userPrincipalName": ada["userPrincipalName"], "phoneNumber": number})
    given = await update(own)
    assert given.status_code == 200, given.text
    await _held_in_teams_by(live, sub, bob["userPrincipalName"], held)

    async def attempt(sessions, access, connection):  # type: ignore[no-untyped-def]
        async with transaction(sessions) as session:
            await provisioning.update_user_details(session, provisioning.ProvisioningAccess(access.enterprise, connection),
                                                   ada["userPrincipalName"], phone_number=held)

    await _dies_once_recorded(live, sub, attempt)
    again = await update(held)
    assert again.status_code == 409 and "already been assigned" in again.json()["message"], again.text
    assert await sub.recorded_number(ada["id"]) == own
    assert await sub.teams_numbers(ada["id"]) == [own]
    assert own not in await sub.free_numbers()
