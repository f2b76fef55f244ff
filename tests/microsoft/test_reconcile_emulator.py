"""A user's voice assignment (`provisioning.reconcile`, both families' one-user change and every bulk item)
against the emulator over Graph: one request at a time (the tenant's concurrency limit counts items, so an item
never has two requests in flight), the voice routing policy granted while Teams completes the number's operation
(after the 202, before the operation is looked at), both land, and a refused number is reported with nothing else
changed (the policy granted meanwhile is given back)."""

import uuid

import httpx
import pytest

from teamsvoice.core.errors import UpstreamError
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.provisioning.service import reconcile
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.directory import DirectoryUser
from tests.microsoft.support import MsEmulator, SeededTenant
from tests.microsoft.test_faults import faults, inject  # noqa: F401 (faults: the fixture, cleared around a test)
from tests.microsoft.test_teams_voice_graph import Seen, new_number, people, seen, voice  # noqa: F401 (fixtures)


def wish(user: DirectoryUser, number: str | None, policy: str | None) -> TeamsVoiceUser:
    return TeamsVoiceUser(enterprise_id=1, user_principal_name=user.user_principal_name, microsoft_user_id=user.id,
                          phone_number=number, voice_routing_policy=policy, calling_enabled=True)


async def new_policy(connector: MicrosoftConnector, tenant: SeededTenant) -> str:
    policy = f"Reconcile-{uuid.uuid4().hex[:6]}"
    await connector.connect(tenant.tenant_id).cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": policy})
    return policy


async def test_the_policy_is_granted_while_the_number_operation_runs(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator,  # noqa: F811
        seen: Seen) -> None:  # noqa: F811
    policy, number, user = await new_policy(connector, tenant), new_number(), people[0]
    in_flight, most = 0, 0

    async def sent(request: httpx.Request) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)

    async def answered_(response: httpx.Response) -> None:
        nonlocal in_flight
        in_flight -= 1

    connector.http.event_hooks["request"].append(sent)
    connector.http.event_hooks["response"].append(answered_)
    inject(faults, numberOperationMs=1500)
    try:
        done = await reconcile(connector.connect(tenant.tenant_id), wish(user, number, policy))
    finally:
        connector.http.event_hooks["request"].remove(sent)
        connector.http.event_hooks["response"].remove(answered_)
    inject(faults)
    assert most == 1  # one request at a time
    assert done.status == "UPDATED" and done.changes == [f"number set to {number}", f"voice routing policy set to {policy}"]
    state = await voice(connector, tenant).voice_state(user.id)
    assert (state.phone_numbers, state.voice_routing_policy) == ([number], policy)
    # In the order the requests were answered: the grant came after Teams accepted the number and before the
    # operation was looked at, and the operation was then followed to its success.
    answered = [(method, path) for method, path, _ in seen.requests]
    accepted = answered.index(("POST", "/v1.0/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber"))
    granted = answered.index(("POST", "/v1.0/admin/teams/policy/userAssignments/assign"))
    polls = [i for i, (method, path) in enumerate(answered) if method == "GET" and "/telephoneNumberManagement/operations" in path]
    assert polls and accepted < granted < polls[0] and seen.operation_statuses[-1] == "succeeded"

    again = await reconcile(connector.connect(tenant.tenant_id), wish(user, number, policy))
    assert again.status == "UNCHANGED"


async def test_a_refused_number_is_reported_and_nothing_else_is_changed(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator) -> None:  # noqa: F811
    policy, number = await new_policy(connector, tenant), new_number()
    await voice(connector, tenant).assign_number(people[0].user_principal_name, number)
    inject(faults, numberOperationMs=300)
    with pytest.raises(UpstreamError) as taken:
        await reconcile(connector.connect(tenant.tenant_id), wish(people[1], number, policy))
    inject(faults)
    assert taken.value.message == f"assignNumber failed: Telephone Number '{number}' has already been assigned to another user"
    assert taken.value.is_refusal
    state = await voice(connector, tenant).voice_state(people[1].id)
    assert (state.phone_numbers, state.voice_routing_policy) == ([], None)

    # Both refused: the number's refusal is the one reported (the number goes first).
    with pytest.raises(UpstreamError) as both:
        await reconcile(connector.connect(tenant.tenant_id), wish(people[2], number, "No-Such-Policy"))
    assert both.value.message == taken.value.message


async def test_a_refused_policy_is_reported_as_before_and_takes_the_new_number_back(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator) -> None:  # noqa: F811
    number, user = new_number(), people[0]
    inject(faults, numberOperationMs=300)
    with pytest.raises(UpstreamError, match="is not a user policy") as unknown:
        await reconcile(connector.connect(tenant.tenant_id), wish(user, number, "No-Such-Policy"))
    inject(faults)
    assert unknown.value.is_refusal
    state = await voice(connector, tenant).voice_state(user.id)
    assert (state.phone_numbers, state.voice_routing_policy) == ([], None)  # as the record is again: it stayed
