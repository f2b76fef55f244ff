"""Plan and apply of a tenant's voice state against an in-memory tenant (tests/unit/voice_fakes.py)."""

import json
from dataclasses import replace

import pytest

from teamsvoice.core.errors import UpstreamError, ValidationFailed
from teamsvoice.domain.voice_state.planner import plan
from teamsvoice.domain.voice_state.service import converge, operations, plan_tenant
from teamsvoice.domain.voice_state.state import (
    Assignment, DesiredState, ObservedState, export_document, parse_document,
)
from teamsvoice.microsoft.calling_ports import PstnGateway, RoutingInventory, VoiceRoute, VoiceRoutingPolicy
from tests.unit.voice_fakes import FakeTenantVoice

FQDN = "sbc1.contoso.com"
ROUTE = VoiceRoute("teamsvoice-eu", r"^\+?\d+$", [FQDN], ["teamsvoice-eu"], 0)
POLICY = VoiceRoutingPolicy("teamsvoice-eu", ["teamsvoice-eu"])


def desired(*users: Assignment, inventory: tuple[str, ...] = ()) -> DesiredState:
    routing = RoutingInventory([PstnGateway(FQDN, 5061, True)], ["teamsvoice-eu"], [ROUTE], [POLICY])
    return DesiredState("tid", routing, list(users), frozenset(inventory))


def user(upn: str, number: str | None = None, policy: str | None = "teamsvoice-eu", enabled: bool = True) -> Assignment:
    return Assignment(upn, f"id-{upn}", number, policy, enabled)


def converged_tenant() -> FakeTenantVoice:
    tenant = FakeTenantVoice()
    tenant.gateways[FQDN] = PstnGateway(FQDN, 5061, True)
    tenant.usages.append("teamsvoice-eu")
    tenant.routes[ROUTE.identity] = ROUTE
    tenant.policies[POLICY.identity] = POLICY
    return tenant


async def plan_of(tenant: FakeTenantVoice, state: DesiredState):  # type: ignore[no-untyped-def]
    return await plan_tenant(tenant, state)


async def test_a_converged_tenant_has_an_empty_plan() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221234567", "teamsvoice-eu")
    assert (await plan_of(tenant, desired(user("ada@c.com", "+3221234567")))).empty


async def test_an_empty_tenant_needs_every_configuration_object_created() -> None:
    result = await plan_of(FakeTenantVoice(), desired())
    assert [(d.kind, d.action) for d in result.differences] == [
        ("gateway", "create"), ("usage", "create"), ("route", "create"), ("policy", "create")]


async def test_a_deleted_route_is_to_create() -> None:
    tenant = converged_tenant()
    del tenant.routes[ROUTE.identity]
    (d,) = (await plan_of(tenant, desired())).differences
    assert (d.id, d.action, d.drift) == (f"route:{ROUTE.identity}", "create", "route_deleted")


async def test_a_changed_route_is_to_change() -> None:
    tenant = converged_tenant()
    tenant.routes[ROUTE.identity] = VoiceRoute(ROUTE.identity, ".*", [FQDN], ["teamsvoice-eu"], 3)
    (d,) = (await plan_of(tenant, desired())).differences
    assert (d.action, d.drift, d.observed["numberPattern"]) == ("change", "route_changed", ".*")


async def test_route_priority_and_gateway_case_are_not_differences() -> None:
    tenant = converged_tenant()
    tenant.routes[ROUTE.identity] = VoiceRoute(ROUTE.identity, ROUTE.number_pattern, [FQDN.upper()], ROUTE.usages, 7)
    assert (await plan_of(tenant, desired())).empty


async def test_a_disabled_gateway_or_other_port_is_to_change() -> None:
    tenant = converged_tenant()
    tenant.gateways[FQDN] = PstnGateway(FQDN, 5067, False)
    (d,) = (await plan_of(tenant, desired())).differences
    assert (d.kind, d.action, d.observed) == ("gateway", "change", {"sipSignalingPort": 5067, "enabled": False})


async def test_a_policy_with_other_usages_is_to_change() -> None:
    tenant = converged_tenant()
    tenant.policies[POLICY.identity] = VoiceRoutingPolicy(POLICY.identity, ["other"])
    (d,) = (await plan_of(tenant, desired())).differences
    assert (d.kind, d.action, d.drift) == ("policy", "change", "policy_changed")


async def test_a_deleted_usage_is_to_create() -> None:
    tenant = converged_tenant()
    tenant.usages.clear()
    (d,) = (await plan_of(tenant, desired())).differences
    assert (d.kind, d.action, d.drift) == ("usage", "create", "usage_deleted")


async def test_objects_teamsvoice_did_not_make_are_left_alone() -> None:
    tenant = converged_tenant()
    tenant.routes["customer-route"] = VoiceRoute("customer-route", ".*", ["other.contoso.com"], ["x"], 1)
    tenant.policies["customer"] = VoiceRoutingPolicy("customer", ["x"])
    tenant.add_user("bob@c.com", "+3229999999", "customer")
    assert (await plan_of(tenant, desired())).empty


async def test_a_number_moved_to_another_user_shows_on_both_sides() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", None, "teamsvoice-eu")
    tenant.add_user("eve@c.com", "+3221234567")
    result = await plan_of(tenant, desired(user("ada@c.com", "+3221234567")))
    by_id = {d.id: d for d in result.differences}
    assert by_id["number:+3221234567"].action == "remove"
    assert by_id["number:+3221234567"].drift == "number_moved"
    assert by_id["user:ada@c.com:phoneNumber"].action == "create"
    assert by_id["user:ada@c.com:phoneNumber"].drift == "number_moved"


async def test_a_number_moved_between_two_managed_users() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", None, "teamsvoice-eu")
    tenant.add_user("bob@c.com", "+3221234567", "teamsvoice-eu")
    state = desired(user("ada@c.com", "+3221234567"), user("bob@c.com", "+3227654321"))
    result = await plan_of(tenant, state)
    assert {(d.id, d.action, d.drift) for d in result.differences} == {
        ("user:ada@c.com:phoneNumber", "create", "number_moved"),
        ("user:bob@c.com:phoneNumber", "change", "number_changed")}
    await converge(tenant, result, state)
    assert (await plan_of(tenant, state)).empty


async def test_a_policy_granted_by_hand_is_to_change() -> None:
    tenant = converged_tenant()
    tenant.policies["vip"] = VoiceRoutingPolicy("vip", ["teamsvoice-eu"])
    tenant.add_user("ada@c.com", "+3221234567", "vip")
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", "+3221234567")))).differences
    assert (d.id, d.action, d.drift, d.desired, d.observed) == (
        "user:ada@c.com:voiceRoutingPolicy", "change", "policy_granted_by_hand", "teamsvoice-eu", "vip")


async def test_a_policy_granted_to_a_user_who_should_have_global_is_to_remove() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221234567", "teamsvoice-eu")
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", "+3221234567", policy=None)))).differences
    assert (d.action, d.drift) == ("remove", "policy_granted_by_hand")


async def test_a_revoked_policy_is_to_create() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221234567", None)
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", "+3221234567")))).differences
    assert (d.action, d.drift) == ("create", "policy_removed")


async def test_a_policy_missing_from_the_tenant_and_not_ours_is_left() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221234567", None)
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", "+3221234567", policy="gone")))).differences
    assert (d.action, d.drift) == ("leave", "policy_deleted")
    assert operations([d]) == []


async def test_a_user_deleted_in_entra_while_holding_a_number_is_to_remove_from_records() -> None:
    tenant = converged_tenant()
    (d,) = (await plan_of(tenant, desired(user("gone@c.com", "+3221234567")))).differences
    assert (d.id, d.action, d.drift, d.field) == ("user:gone@c.com:account", "remove", "user_deleted", "account")
    results, records = await converge(tenant, (await plan_of(tenant, desired(user("gone@c.com", "+3221234567")))),
                                      desired())
    assert results == [] and [r.id for r in records] == ["user:gone@c.com:account"]


async def test_a_deleted_user_without_number_or_calling_is_no_difference() -> None:
    assert (await plan_of(converged_tenant(), desired(user("gone@c.com", None, None, enabled=False)))).empty


async def test_a_user_disabled_in_entra_while_holding_a_number_is_offboarded() -> None:
    """Disabled, not deleted: the user still holds the number in Teams. Apply finishes the offboarding: the
    number is removed in Teams, Enterprise Voice turned off, and the records free the number (quarantine)."""
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221234567", "teamsvoice-eu")
    tenant.add_user("eve@c.com", "+3221000001", "teamsvoice-eu")
    tenant.disabled.add("id-ada@c.com")
    state = desired(user("ada@c.com", "+3221234567"), user("eve@c.com", "+3221000001"))
    first = await plan_of(tenant, state)
    assert [(d.id, d.action, d.drift) for d in first.differences] == [
        ("user:ada@c.com:account", "remove", "user_disabled"),
        ("user:ada@c.com:enterpriseVoice", "change", "user_disabled"),
        ("user:ada@c.com:phoneNumber", "remove", "user_disabled")]
    account = first.differences[0]
    assert account.observed == {"accountEnabled": False} and account.user_id == "id-ada@c.com"
    assert "disabled in Entra ID while holding +3221234567" in account.detail and "quarantine" in account.detail
    assert [op.stage for op in operations(first.differences)] == ["release", "user", "record"]
    results, records = await converge(tenant, first, state)
    assert all(r["status"] == "done" for r in results) and [r.id for r in records] == ["user:ada@c.com:account"]
    assert tenant.users["ada@c.com"].phone_numbers == [] and not tenant.users["ada@c.com"].enterprise_voice
    assert tenant.users["eve@c.com"].phone_numbers == ["+3221000001"]  # others untouched
    # What the records step does (repository.free_deleted_user): no number, no calling; then nothing is left.
    state.users[0] = Assignment("ada@c.com", None, None, "teamsvoice-eu", False)
    assert (await plan_of(tenant, state)).empty


async def test_a_disabled_user_teamsvoice_gives_no_number_or_calling_is_no_difference() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com")
    tenant.disabled.add("id-ada@c.com")
    assert (await plan_of(tenant, desired(user("ada@c.com", None, None, enabled=False)))).empty


async def test_a_disabled_user_whose_number_was_already_removed_needs_only_the_records() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com")
    tenant.disabled.add("id-ada@c.com")
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", "+3221234567")))).differences
    assert (d.id, d.action, d.drift) == ("user:ada@c.com:account", "remove", "user_disabled")
    assert [op.stage for op in operations([d])] == ["record"]


async def test_a_resource_account_is_no_disabled_user() -> None:
    """Microsoft creates a resource account's Entra ID user disabled: the plan took every call queue holding a number
    for a user disabled while holding it, and apply offboarded it (its number removed in Teams and freed)."""
    tenant = converged_tenant()
    tenant.add_user("queue@c.com", "+3221234567", "teamsvoice-eu")
    tenant.disabled.add("id-queue@c.com")
    queue = Assignment("queue@c.com", "id-queue@c.com", "+3221234567", "teamsvoice-eu", True, resource_account=True)
    assert (await plan_of(tenant, desired(queue))).empty
    tenant.users["queue@c.com"] = replace(tenant.users["queue@c.com"], enterprise_voice=False, phone_numbers=[])
    (d,) = (await plan_of(tenant, desired(queue))).differences  # its number removed in Teams: an ordinary difference
    assert (d.id, d.action, d.drift) == ("user:queue@c.com:phoneNumber", "create", "number_removed")


async def test_users_match_by_id_when_the_upn_was_renamed() -> None:
    tenant = converged_tenant()
    tenant.users["ada.new@c.com"] = tenant.add_user("ada@c.com", "+3221234567", "teamsvoice-eu")
    del tenant.users["ada@c.com"]
    assert (await plan_of(tenant, desired(user("ada@c.com", "+3221234567")))).empty


async def test_an_inventory_number_assigned_by_hand_to_an_unmanaged_user_is_to_remove() -> None:
    tenant = converged_tenant()
    tenant.add_user("bob@c.com", "+3221000000")
    (d,) = (await plan_of(tenant, desired(inventory=("+3221000000",)))).differences
    assert (d.id, d.action, d.drift, d.observed) == ("number:+3221000000", "remove", "number_assigned_by_hand", "bob@c.com")


async def test_a_disabled_user_holding_a_number_is_to_remove() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221234567")
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", None, None, enabled=False)))).differences
    assert (d.field, d.action) == ("phoneNumber", "remove")


async def test_a_disabled_user_with_enterprise_voice_on_is_to_change() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com")
    tenant._set("ada@c.com", enterprise_voice=True)
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", None, None, enabled=False)))).differences
    assert (d.field, d.action, d.desired) == ("enterpriseVoice", "change", False)


async def test_an_enabled_user_without_number_needs_enterprise_voice() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", None, "teamsvoice-eu")
    (d,) = (await plan_of(tenant, desired(user("ada@c.com", None)))).differences
    assert (d.field, d.action, d.desired) == ("enterpriseVoice", "change", True)


async def test_differences_are_ordered_configuration_then_numbers_then_users() -> None:
    tenant = FakeTenantVoice()
    tenant.add_user("ada@c.com")
    tenant.add_user("bob@c.com", "+3221000000")
    result = await plan_of(tenant, desired(user("ada@c.com", "+3221000000")))
    kinds = [d.kind for d in result.differences]
    assert kinds == sorted(kinds, key=["gateway", "usage", "route", "policy", "number", "user"].index)


async def test_operations_release_every_number_before_placing_any() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com", "+3221000001", "teamsvoice-eu")
    tenant.add_user("bob@c.com", "+3221000002", "teamsvoice-eu")
    state = desired(user("ada@c.com", "+3221000002"), user("bob@c.com", "+3221000001"))  # a swap
    result = await plan_of(tenant, state)
    stages = [op.stage for op in operations(result.differences)]
    assert stages == ["release", "release", "place", "place"]
    await converge(tenant, result, state)
    assert (await plan_of(tenant, state)).empty


async def test_apply_converges_every_kind_of_drift_and_a_second_plan_is_empty() -> None:
    tenant = converged_tenant()
    del tenant.routes[ROUTE.identity]
    tenant.policies["vip"] = VoiceRoutingPolicy("vip", ["x"])
    tenant.add_user("ada@c.com", None, "vip")
    tenant.add_user("eve@c.com", "+3221234567")
    tenant.add_user("bob@c.com", "+3221000000")
    state = desired(user("ada@c.com", "+3221234567"), user("gone@c.com", "+3229999999"), inventory=("+3221000000",))
    first = await plan_of(tenant, state)
    results, records = await converge(tenant, first, state)
    assert all(r["status"] == "done" for r in results), results
    assert [r.id for r in records] == ["user:gone@c.com:account"]
    state.users = [u for u in state.users if u.user_principal_name != "gone@c.com"]  # what the records step does
    assert (await plan_of(tenant, state)).empty
    assert tenant.users["eve@c.com"].phone_numbers == []
    assert tenant.users["ada@c.com"].voice_routing_policy == "teamsvoice-eu"


async def test_apply_twice_is_a_no_op_the_second_time() -> None:
    tenant = FakeTenantVoice()
    tenant.add_user("ada@c.com")
    state = desired(user("ada@c.com", "+3221234567"))
    await converge(tenant, await plan_of(tenant, state), state)
    tenant.calls.clear()
    results, _ = await converge(tenant, await plan_of(tenant, state), state)
    assert results == [] and sorted(tenant.calls) == ["disabled_user_ids", "routing", "voice_users"]


async def test_a_create_replayed_after_a_crash_updates_instead() -> None:
    tenant = FakeTenantVoice()
    first = await plan_of(tenant, desired())
    await converge(tenant, first, desired())
    results, _ = await converge(tenant, first, desired())  # the same plan again: every object exists now
    assert [r["status"] for r in results] == ["done"] * 4
    assert "update_route teamsvoice-eu" in tenant.calls


async def test_a_release_replayed_after_a_crash_is_done() -> None:
    tenant = converged_tenant()
    tenant.add_user("bob@c.com", "+3221000000")
    state = desired(inventory=("+3221000000",))
    first = await plan_of(tenant, state)
    await converge(tenant, first, state)
    results, _ = await converge(tenant, first, state)
    assert [r["status"] for r in results] == ["done"]


async def test_one_refused_operation_does_not_stop_the_others() -> None:
    tenant = converged_tenant()
    tenant.add_user("ada@c.com")
    tenant.add_user("bob@c.com")
    state = desired(user("ada@c.com", "+3221000001"), user("bob@c.com", "+3221000002"))
    result = await plan_of(tenant, state)
    del tenant.users["ada@c.com"]  # deleted between plan and apply
    results, _ = await converge(tenant, result, state)
    statuses = {(r["id"], r["stage"]): r["status"] for r in results}
    assert statuses[("user:ada@c.com:phoneNumber", "place")] == "failed"
    assert statuses[("user:bob@c.com:phoneNumber", "place")] == "done"


async def test_transient_failures_go_through_the_callers_attempt() -> None:
    tenant = FakeTenantVoice()
    tries: list[int] = []

    async def patient(call):  # type: ignore[no-untyped-def]
        while True:
            try:
                return await call()
            except Exception as exc:  # noqa: BLE001
                tries.append(1)
                if not getattr(exc, "retryable", False):
                    raise

    first = await plan_of(tenant, desired())
    tenant.fail_transiently = 2
    results, _ = await converge(tenant, first, desired(), patient)
    assert len(tries) == 2 and all(r["status"] == "done" for r in results)


async def test_a_failed_read_of_the_tenant_is_microsofts_error_itself() -> None:
    """The reads run in a task group, whose ExceptionGroup was a 500 on the console's plan card and a traceback from
    `teamsvoice plan`, and a transient failure that the jobs' retry did not recognise."""
    tenant = FakeTenantVoice()
    tenant.fail_transiently = 3
    with pytest.raises(UpstreamError) as failed:
        await plan_of(tenant, desired())
    assert failed.value.retryable


def test_plan_wire_counts_actions() -> None:
    result = plan(desired(), ObservedState(RoutingInventory(), []))
    body = result.wire()
    assert body["counts"] == {"create": 4, "change": 0, "remove": 0, "leave": 0}
    assert body["empty"] is False and json.dumps(body)


def test_plan_of_a_large_tenant_is_fast() -> None:
    users = [user(f"u{i}@c.com", f"+32210{i:05d}") for i in range(5000)]
    from teamsvoice.microsoft.ports import VoiceState
    observed = ObservedState(RoutingInventory([PstnGateway(FQDN, 5061, True)], ["teamsvoice-eu"], [ROUTE], [POLICY]),
                             [VoiceState(f"id-u{i}@c.com", f"u{i}@c.com", True, [f"+32210{i:05d}"], "teamsvoice-eu")
                              for i in range(5000)])
    assert plan(desired(*users), observed).empty


# --- export / restore ----------------------------------------------------------------------------------


def test_export_then_parse_gives_the_same_state() -> None:
    state = desired(user("ada@c.com", "+3222100100"), user("bob@c.com", None, None, enabled=False))
    restored = parse_document(json.loads(json.dumps(export_document(state))))
    assert restored.routing.gateways == state.routing.gateways
    assert restored.routing.routes == state.routing.routes and restored.routing.policies == state.routing.policies
    assert [(u.user_principal_name, u.phone_number, u.voice_routing_policy, u.calling_enabled) for u in restored.users] == [
        ("ada@c.com", "+3222100100", "teamsvoice-eu", True), ("bob@c.com", None, None, False)]


@pytest.mark.parametrize("document, message", [
    ([], "must be a JSON object"),
    ({"version": 2}, "version"),
    ({"version": 1, "gateways": [{"fqdn": "a.b"}]}, "gateways[0].sipSignalingPort"),
    ({"version": 1, "gateways": [{"fqdn": "a.b", "sipSignalingPort": True}]}, "gateways[0].sipSignalingPort"),
    ({"version": 1, "gateways": [{"fqdn": "a.b", "sipSignalingPort": 0}]}, "gateways[0].sipSignalingPort: must be a port"),
    ({"version": 1, "gateways": [{"fqdn": "a.b", "sipSignalingPort": -1}]}, "gateways[0].sipSignalingPort: must be a port"),
    ({"version": 1, "gateways": [{"fqdn": "", "sipSignalingPort": 5061}]}, "gateways[0].fqdn: is required"),
    ({"version": 1, "gateways": [{"fqdn": "a\u0000b", "sipSignalingPort": 5061}]}, "gateways[0].fqdn: must not contain NUL"),
    ({"version": 1, "gateways": [{"fqdn": "a" * 100_000, "sipSignalingPort": 5061}]}, "gateways[0].fqdn: at most 255"),
    ({"version": 1, "gateways": [{"fqdn": "a.b", "sipSignalingPort": 5061, "enabled": "no"}]}, "gateways[0].enabled"),
    ({"version": 1, "voiceRoutes": [{"identity": "r", "numberPattern": ".*", "gateways": "x", "pstnUsages": []}]},
     "voiceRoutes[0].gateways"),
    ({"version": 1, "users": [{"userPrincipalName": "nope", "callingEnabled": True}]}, "users[0].userPrincipalName"),
    ({"version": 1, "users": [{"userPrincipalName": "a@b.c", "callingEnabled": True, "phoneNumber": "+3222100100"},
                              {"userPrincipalName": "b@b.c", "callingEnabled": True, "phoneNumber": "+32 2 210 01 00"}]},
     "users[1].phoneNumber: +3222100100 is given to two users"),
    ({"version": 1, "users": [{"userPrincipalName": "a@b.c", "callingEnabled": True, "phoneNumber": "3222100100"}]},
     "users[0].phoneNumber: '3222100100' is not in E.164 format"),
    ({"version": 1, "users": [{"userPrincipalName": "a@b.c", "callingEnabled": True, "phoneNumber": "+3222100100;ext=1"}]},
     "users[0].phoneNumber: '+3222100100;ext=1' has an extension"),
    ({"version": 1, "users": [{"userPrincipalName": "a@b.c", "callingEnabled": True, "phoneNumber": "+1"}]},
     "users[0].phoneNumber: '+1' is not a phone number"),
    ({"version": 1, "users": [{"userPrincipalName": "a@b.c", "callingEnabled": "yes"}]}, "users[0].callingEnabled"),
    ({"version": 1, "pstnUsages": "x"}, "pstnUsages"),
])
def test_a_bad_document_is_refused_naming_the_field(document: object, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_document(document)
    assert message in caught.value.message


def test_rename_domain_moves_users_and_gateways_to_the_replacement_tenant() -> None:
    from teamsvoice.domain.voice_state.state import rename_domain

    state = desired(user("ada@contoso.com", "+3221234567"), user("bob@other.com"))
    state.routing.gateways[0] = PstnGateway("sbc1.contoso.com", 5061, True)
    state.routing.routes[0] = VoiceRoute("r", ".*", ["sbc1.contoso.com"], ["u"], 0)
    moved = rename_domain(state, "contoso.com", "fabrikam.com")
    assert [u.user_principal_name for u in moved.users] == ["ada@fabrikam.com", "bob@other.com"]
    assert moved.routing.gateways[0].fqdn == "sbc1.fabrikam.com" and moved.routing.routes[0].gateways == ["sbc1.fabrikam.com"]
    assert rename_domain(state, "toso.com", "x.com").users[0].user_principal_name == "ada@contoso.com"


async def test_a_ring_of_swapped_numbers_releases_one_number_and_a_move_is_one_assignment() -> None:
    """a->b->c->a rotate their numbers, d moves to a free number and e takes d's old one. One user of the ring is
    released first (it waits on nothing), the next takes its number, and so on around; d's and e's changes are one
    assignment each (over the old number), e's after d's. Run again with the first operations recorded as done (a
    crash after them), nothing recorded is repeated; a stopped job starts nothing."""
    from teamsvoice.domain.voice_state.service import Operation, run_scheduled, schedule

    tenant = converged_tenant()
    for upn, number in (("a@c.com", "+321"), ("b@c.com", "+322"), ("c@c.com", "+323"), ("d@c.com", "+324"), ("e@c.com", "+325")):
        tenant.add_user(upn, number, "teamsvoice-eu")
    state = desired(user("a@c.com", "+322"), user("b@c.com", "+323"), user("c@c.com", "+321"), user("d@c.com", "+329"),
                    user("e@c.com", "+324"))
    current = await plan_of(tenant, state)
    order = schedule(current.differences)
    ops = {(op.difference_id.split(":")[1], op.stage) for op in order.numbers}
    assert ops == {("a@c.com", "release"), ("a@c.com", "place"), ("b@c.com", "place"), ("c@c.com", "place"),
                   ("d@c.com", "place"), ("e@c.com", "place")}
    place = lambda upn: Operation(f"user:{upn}:phoneNumber", "place")  # noqa: E731
    assert order.waits == {place("c@c.com"): Operation("user:a@c.com:phoneNumber", "release"),
                           place("b@c.com"): place("c@c.com"), place("a@c.com"): place("b@c.com"),
                           place("e@c.com"): place("d@c.com")}
    nothing: list[dict] = []
    await run_scheduled(tenant, order, current.differences, state, lambda call: call(), limit=8, on_result=nothing.append,
                        stopped=lambda: True)
    assert nothing == [] and not [c for c in tenant.calls if "number" in c]
    first: list[dict] = []
    await run_scheduled(tenant, order, current.differences, state, lambda call: call(), limit=8, on_result=first.append)
    assert all(r["status"] == "done" for r in first) and len(first) == 6, first
    assert {u: tenant.users[u].phone_numbers for u in ("a@c.com", "b@c.com", "c@c.com", "d@c.com", "e@c.com")} == {
        "a@c.com": ["+322"], "b@c.com": ["+323"], "c@c.com": ["+321"], "d@c.com": ["+329"], "e@c.com": ["+324"]}
    at = tenant.calls.index
    assert at("remove_number a@c.com +321") < at("assign_number c@c.com +321") < at("assign_number b@c.com +323") \
        < at("assign_number a@c.com +322")
    assert at("assign_number d@c.com +329") < at("assign_number e@c.com +324")
    assert "remove_number e@c.com +325" not in tenant.calls[:at("assign_number e@c.com +324")]  # (e kept +325 until then)
    calls = len(tenant.calls)
    await run_scheduled(tenant, order, current.differences, state, lambda call: call(), limit=8, on_result=nothing.append,
                        done={(r["id"], r["stage"]) for r in first})
    assert nothing == [] and len(tenant.calls) == calls
