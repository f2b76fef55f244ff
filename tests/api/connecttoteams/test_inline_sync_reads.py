"""ConnecttoTeams' inline Sync Teams Users (syncTeamsRegistrations of an enterprise of 25 users at most, answered with
the request: `calling/workflows.sync_registrations`) reads the tenant's Teams voice state as the durable job does
(tests/api/connecttoteams/test_sync_reads.py): more than a batch of users cost one read of the tenant, and a user
that matches its record no request of its own. It read Microsoft user after user: 21 users, 21 requests."""

import uuid

from teamsvoice.domain.calling import workflows as calling_workflows
from teamsvoice.domain.orgs.models import Enterprise
from teamsvoice.domain.provisioning import voice_users
from teamsvoice.domain.provisioning.service import ProvisioningAccess
from teamsvoice.microsoft.connector import MicrosoftConnector
from tests.api.connecttoteams.test_sync_reads import USERS, _teams_requests, registered
from tests.support.database import in_session
from tests.support.emulated import emulated_tenant


async def test_an_inline_sync_reads_the_tenant_once_not_user_by_user(  # type: ignore[no-untyped-def]
        client, live, organisation, receiver) -> None:
    microsoft = await emulated_tenant(live, f"inline-{uuid.uuid4().hex[:8]}.example", USERS)
    tenant_id = microsoft["tenantId"]
    onboarding, _ = await registered(client, live, organisation, receiver, microsoft)
    connector = MicrosoftConnector(live.settings)
    try:
        connection = connector.connect(tenant_id)
        listed = await connection.graph.get("/users", **{"$select": "id,userPrincipalName", "$top": "999"})
        people = sorted(((u["userPrincipalName"].lower(), u["id"]) for u in listed["value"]))
        assert len(people) == USERS + 1  # and its Global Administrator: 21, one more than a batch, at most 25

        async def records(session):  # type: ignore[no-untyped-def]
            # As Teams holds them (no number, Enterprise Voice off, the Global policy): nothing to change.
            for upn, user_id in people:
                await voice_users.add(session, onboarding.enterprise_id, upn, user_id, calling_enabled=False)

        await in_session(live, records)

        async def sync(session):  # type: ignore[no-untyped-def]
            enterprise = await session.get(Enterprise, onboarding.enterprise_id)
            return await calling_workflows.sync_registrations(session, ProvisioningAccess(enterprise, connection),
                                                              live.settings.number_quarantine_seconds)

        before = _teams_requests(tenant_id)
        results = await in_session(live, sync)
        sent = _teams_requests(tenant_id) - before
    finally:
        await connector.aclose()
    assert [(r.user_principal_name, r.status, r.changes) for r in results] == [
        (upn, "UNCHANGED", []) for upn, _ in people], results
    print(f"\ninline no-change sync of {len(people)} users: {sent:.0f} Teams requests")
    assert sent == 1, f"{sent} Teams requests for {len(people)} users that match: the tenant is read once"

    async def statuses(session):  # type: ignore[no-untyped-def]
        return {r.user_principal_name: r.last_sync_status
                for r in await voice_users.of_enterprise(session, onboarding.enterprise_id)}

    assert await in_session(live, statuses) == {upn: "UNCHANGED" for upn, _ in people}
