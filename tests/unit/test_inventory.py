"""The number inventory's rules on a real database (both backends): one owner per number whichever family gave
it, and the free numbers' pages. Each test works inside one transaction that is rolled back, so it leaves
nothing behind for the other tests sharing the database."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from teamsvoice.core.clock import utcnow
from teamsvoice.core.errors import Conflict, NotFound, ValidationFailed
from teamsvoice.core.phone import parse_e164
from teamsvoice.domain.audit.models import AuditEntry
from teamsvoice.domain.calling.models import PbxLocation, PbxUser
from teamsvoice.domain.fusion import numbers
from teamsvoice.domain.fusion.models import FusionSubscription, FusionTenant
from teamsvoice.domain.fusion.scope import SubscriptionAccess
from teamsvoice.domain.inventory import ownership
from teamsvoice.domain.orgs.models import Enterprise, PbxType, Reseller, SbcGateway
from teamsvoice.domain.provisioning.models import TeamsVoiceUser
from teamsvoice.domain.voice_state import repository as voice_state
from teamsvoice.domain.voice_state.models import NumberQuarantine
from teamsvoice.microsoft.calling_ports import PstnGateway, VoiceRoute, VoiceRoutingPolicy
from tests.support.database import rolled_back_session

# Numbers no other test uses (the database is shared within a backend's run).
N = [f"+325070000{i}" for i in range(10)]


@dataclass
class World:
    session: AsyncSession
    fusion: SubscriptionAccess  # a Fusion subscription's customer, numbers N[0..5] in its inventory
    other: Enterprise  # a ConnecttoTeams-only customer of another reseller, no inventory

    async def user(self, enterprise: Enterprise, upn: str, number: str | None) -> TeamsVoiceUser:
        record = TeamsVoiceUser(enterprise_id=enterprise.id, user_principal_name=upn, phone_number=number)
        self.session.add(record)
        await self.session.flush()
        return record


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with rolled_back_session(database_url) as session:
        resellers = [Reseller(name=f"inventory-test-{n}", level="RESELLER") for n in (1, 2)]
        session.add_all(resellers)
        await session.flush()
        customer, other = (Enterprise(reseller_id=r.id, enterprise_name=f"inventory-test-{r.id}") for r in resellers)
        session.add_all([customer, other])
        tenant = FusionTenant(name="inventory-test", owner_reseller_id=resellers[0].id)
        session.add(tenant)
        await session.flush()
        subscription = FusionSubscription(fusion_tenant_id=tenant.id, name="voice", enterprise_id=customer.id)
        session.add(subscription)
        await session.flush()
        access = SubscriptionAccess(None, tenant, subscription, customer)  # type: ignore[arg-type]
        await numbers.add_numbers(session, access, [parse_e164(n) for n in N[:6]], "numbers")
        yield World(session, access, other)


async def test_a_number_in_one_customers_inventory_is_not_found_for_another_family_or_customer(world: World) -> None:
    with pytest.raises(NotFound) as caught:  # ConnecttoTeams' writers ask the same rule
        await ownership.require_free(world.session, world.other.id, N[0])
    assert caught.value.code == ownership.NUMBER_NOT_AVAILABLE and "not found" in caught.value.message
    await ownership.require_free(world.session, world.fusion.enterprise.id, N[0])  # its owner may give it


async def test_a_number_given_through_connecttoteams_conflicts_through_fusion(world: World) -> None:
    # A ConnecttoTeams user of the Fusion customer holds N[1] (one row per user, whichever family wrote it).
    holder = await world.user(world.fusion.enterprise, "ada@contoso.com", N[1])
    with pytest.raises(Conflict) as caught:
        await numbers.require_free_number(world.session, world.fusion, N[1])
    assert caught.value.code == ownership.NUMBER_TAKEN and "ada@contoso.com" in caught.value.message
    assert await numbers.require_free_number(world.session, world.fusion, N[1], for_user_id=holder.id) == N[1]
    # Another customer cannot take it, nor learn who holds it.
    with pytest.raises(NotFound) as hidden:
        await ownership.require_free(world.session, world.other.id, N[1])
    assert "ada@" not in hidden.value.message


async def test_a_fusion_users_number_is_checked_in_one_statement_inventory_first(world: World) -> None:
    """A Fusion user's number must be its subscription's and free: one statement asks both (a bulk job asks it for every
    user), and a number outside the subscription's inventory is that error first, whoever holds it."""
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = world.session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert await numbers.require_free_number(world.session, world.fusion, N[2]) == N[2]
        assert len(statements) == 1, statements
        await world.user(world.other, "bob@fabrikam.com", N[9])  # held outside any inventory, by another customer
        for outside in (N[8], N[9]):
            with pytest.raises(ValidationFailed) as caught:
                await numbers.require_free_number(world.session, world.fusion, outside)
            assert caught.value.code == numbers.NUMBER_NOT_IN_SUBSCRIPTION and "bob@" not in caught.value.message
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_a_number_held_outside_any_inventory_belongs_to_its_holders_customer(world: World) -> None:
    await world.user(world.other, "bob@fabrikam.com", N[7])
    with pytest.raises(Conflict) as caught:  # Fusion cannot put it in an inventory
        await numbers.add_numbers(world.session, world.fusion, [parse_e164(N[7]), parse_e164(N[8])], "numbers")
    assert caught.value.code == numbers.NUMBER_TAKEN and N[7] in caught.value.message and "bob@" not in caught.value.message
    with pytest.raises(NotFound):  # nor give it to a user
        await ownership.require_free(world.session, world.fusion.enterprise.id, N[7])
    with pytest.raises(Conflict) as taken:  # the holder's customer gets the holder named
        await ownership.require_free(world.session, world.other.id, N[7])
    assert taken.value.code == ownership.NUMBER_TAKEN and "bob@fabrikam.com" in taken.value.message
    assert await ownership.owners(world.session, [N[7], N[0], N[9]]) == {N[7]: world.other.id, N[0]: world.fusion.enterprise.id}


async def test_a_number_a_pbx_connector_user_holds_is_taken_for_every_other_user(world: World) -> None:
    session, other = world.session, world.other
    pbx_type = PbxType(reseller_id=other.reseller_id, pbx_name="generic", pbx_label="Generic")
    session.add(pbx_type)
    await session.flush()
    location = PbxLocation(enterprise_id=other.id, pbx_type_id=pbx_type.id, pbx_location="HQ", pbx_label="HQ",
                           canonical_pbx_sip_domain="pbx.fabrikam.com")
    session.add(location)
    await session.flush()
    record = await world.user(other, "carol@fabrikam.com", None)
    pbx = PbxUser(enterprise_id=other.id, kind="PBX", teams_user_id="carol@fabrikam.com", microsoft_user_id="id-carol",
                  voice_user_id=record.id, pbx_location_id=location.id, phone_number=N[8], pbx_user_id="200",
                  pbx_auth_user_id="200", sip_password_encrypted="x")
    session.add(pbx)
    await session.flush()
    with pytest.raises(NotFound):  # another customer: not found
        await ownership.require_free(session, world.fusion.enterprise.id, N[8])
    with pytest.raises(Conflict) as caught:  # another user of its customer: taken, holder named
        await ownership.require_free(session, other.id, N[8])
    assert caught.value.code == ownership.NUMBER_TAKEN and "carol@fabrikam.com" in caught.value.message
    await ownership.require_free(session, other.id, N[8], pbx_user_id=pbx.id)  # the PBX user itself
    await ownership.require_free(session, other.id, N[8], voice_user_id=record.id)  # its Teams record


async def test_one_owner_per_number_whether_asked_for_one_or_for_many(world: World) -> None:
    """Rows no rule admits any more (held by another customer's user while in an inventory, as data older than the
    rule may be): the owner is still the strongest claim's, the same for `owners` (many numbers) and for the one-number
    rule (`require_free`): the inventory over a holder."""
    await world.user(world.other, "dora@fabrikam.com", N[2])  # N[2] is in the Fusion customer's inventory
    assert await ownership.owners(world.session, [N[2]]) == {N[2]: world.fusion.enterprise.id}
    with pytest.raises(NotFound):  # not the holder's customer's to give
        await ownership.require_free(world.session, world.other.id, N[2])
    await ownership.require_free(world.session, world.fusion.enterprise.id, N[2])  # the owner's (its own users hold none)


async def test_a_number_in_quarantine_waits(world: World) -> None:
    world.session.add(NumberQuarantine(enterprise_id=world.fusion.enterprise.id, e164=N[2], previous_holder="gone@contoso.com",
                                       until=utcnow() + timedelta(days=1)))
    world.session.add(NumberQuarantine(enterprise_id=world.fusion.enterprise.id, e164=N[3], previous_holder="old@contoso.com",
                                       until=utcnow() - timedelta(days=1)))
    await world.session.flush()
    with pytest.raises(Conflict) as caught:
        await ownership.require_free(world.session, world.fusion.enterprise.id, N[2])
    assert caught.value.code == ownership.NUMBER_IN_QUARANTINE
    await ownership.require_free(world.session, world.fusion.enterprise.id, N[3])  # its quarantine is over


async def test_the_rule_asks_the_database_once(world: World) -> None:
    """A bulk item asks the rule for every user it gives a number, inside the transaction that holds a pooled
    connection: one statement answers owner, quarantine and holders, whatever the answer."""
    await world.user(world.fusion.enterprise, "dan@contoso.com", N[4])
    world.session.add(NumberQuarantine(enterprise_id=world.fusion.enterprise.id, e164=N[5], previous_holder="x@contoso.com",
                                       until=utcnow() + timedelta(days=1)))
    await world.session.flush()
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    engine = world.session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", count)
    try:
        for enterprise_id, number, refused in ((world.fusion.enterprise.id, N[0], None),
                                               (world.other.id, N[0], NotFound),
                                               (world.fusion.enterprise.id, N[4], Conflict),
                                               (world.fusion.enterprise.id, N[5], Conflict)):
            sent.clear()
            if refused is None:
                await ownership.require_free(world.session, enterprise_id, number)
            else:
                with pytest.raises(refused):
                    await ownership.require_free(world.session, enterprise_id, number)
            assert len(sent) == 1, (number, sent)
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_the_audit_log_reads_a_users_customer_once_per_session(world: World) -> None:
    """Each flush of a user writes an audit entry naming its customer; the customer's row is read at the first
    flush and remembered by the session (a bulk item flushes its user twice), read again once it changed."""
    session, customer = world.session, world.fusion.enterprise
    reads: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM enterprises" in statement:
            reads.append(statement)

    engine = session.bind.sync_engine  # type: ignore[union-attr]
    event.listen(engine, "before_cursor_execute", count)
    try:
        customer.enterprise_name = "customer-before"
        await session.flush()  # (the fixture's flushes read the customer already: changed now, it is read anew)
        reads.clear()
        record = await world.user(customer, "erin@contoso.com", None)
        record.phone_number = N[0]
        await session.flush()
        assert len(reads) == 1
        customer.enterprise_name = "customer-after"
        await session.flush()
        record.phone_number = N[1]
        await session.flush()
        assert len(reads) == 2  # the customer changed in this session: read again
    finally:
        event.remove(engine, "before_cursor_execute", count)
    entries = (await session.scalars(select(AuditEntry).where(AuditEntry.aggregate == "teams_user",
                                                               AuditEntry.object_label.contains("erin@"))
                                     .order_by(AuditEntry.id))).all()
    assert [(e.enterprise_id, e.customer) for e in entries] == [(customer.id, "customer-before")] * 2 + [
        (customer.id, "customer-after")]


async def test_free_numbers_are_paged_in_order_without_the_held_ones(world: World) -> None:
    await world.user(world.fusion.enterprise, "ada@contoso.com", N[1])  # held through ConnecttoTeams
    await world.user(world.fusion.enterprise, "eve@contoso.com", N[4])  # held through Fusion: the same row kind

    async def page(offset: int, limit: int, **kwargs: object) -> tuple[list[str], int]:
        rows, total = await numbers.list_numbers(world.session, world.fusion, search=kwargs.get("search"),  # type: ignore[arg-type]
                                                 offset=offset, limit=limit, free_only=kwargs.get("free_only", True))  # type: ignore[arg-type]
        return [r.e164 for r in rows], total

    assert await page(0, 2) == ([N[0], N[2]], 4)
    assert await page(2, 2) == ([N[3], N[5]], 4)
    assert await page(4, 2) == ([], 4)
    assert await page(0, 10, search="070-0003") == ([N[3]], 1)
    assert await page(0, 10, free_only=False) == (N[:6], 6)
    assert await numbers.count_numbers(world.session, world.fusion.subscription.id) == (6, 4, 2)
    held = await numbers.holders(world.session, world.fusion, N[:6])
    assert {n: (h.user.user_principal_name, h.resource_account_id) for n, h in held.items()} == {
        N[1]: ("ada@contoso.com", None), N[4]: ("eve@contoso.com", None)}


async def test_the_desired_state_holds_the_inventory_and_what_the_wizard_created(world: World) -> None:
    customer = world.fusion.enterprise
    customer.tenant_id, customer.tenant_domain = f"tid-{customer.id}", "Contoso.com"
    world.session.add(SbcGateway(reseller_id=customer.reseller_id, region="EU", fqdn="edge1.provider.net"))
    await world.session.flush()
    desired = await voice_state.desired_state(world.session, customer)
    assert desired.inventory == frozenset(N[:6])
    routing = desired.routing
    assert routing.gateways == [PstnGateway("edge1.contoso.com", 5061, True)] and routing.usages == ["teamsvoice"]
    assert routing.routes == [VoiceRoute("teamsvoice", ".*", ["edge1.contoso.com"], ["teamsvoice"], 0)]
    assert routing.policies == [VoiceRoutingPolicy("teamsvoice", ["teamsvoice"])]
