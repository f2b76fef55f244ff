"""Plan and apply over the TenantVoiceAdmin port: read the tenant, diff it with the desired state, and
converge it one operation at a time (so a durable job can run the operations in resumable chunks).

Every operation is safe to repeat: a create that finds the object already there (a replay after a crash)
updates it instead; removing a number that is already gone is done.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from teamsvoice.core.errors import DomainError, UpstreamError
from teamsvoice.domain.voice_state.planner import Difference, Plan, plan
from teamsvoice.domain.voice_state.state import DesiredState, ObservedState
from teamsvoice.microsoft.ports import TenantVoiceAdmin

T = TypeVar("T")
# Runs one Microsoft call; a durable job passes one that waits out transient failures.
Attempt = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

# The stages of apply, in order: configuration, numbers released, numbers placed, the rest of the users,
# then teamsvoice's own records (a user deleted in Entra ID frees its number).
STAGES = ("configure", "release", "place", "user", "record")


@dataclass(frozen=True)
class Operation:
    difference_id: str
    stage: str


async def _direct(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


async def observe(voice: TenantVoiceAdmin) -> ObservedState:
    async with anyio.create_task_group() as group:
        found: dict[str, Any] = {}

        async def read(name: str, call: Callable[[], Awaitable[Any]]) -> None:
            found[name] = await call()

        group.start_soon(read, "routing", voice.routing)
        group.start_soon(read, "users", voice.voice_users)
        group.start_soon(read, "disabled", voice.disabled_user_ids)
    return ObservedState(found["routing"], found["users"], frozenset(found["disabled"]))


async def plan_tenant(voice: TenantVoiceAdmin, desired: DesiredState) -> Plan:
    """Reads Microsoft, changes nothing."""
    return plan(desired, await observe(voice))


def operations(differences: list[Difference]) -> list[Operation]:
    """What apply does, in order. A number changing hands is released everywhere before it is placed."""
    ops: list[Operation] = []
    for d in differences:
        if d.action == "leave":
            continue
        if d.kind in ("gateway", "usage", "route", "policy"):
            ops.append(Operation(d.id, "configure"))
        elif d.kind == "number":
            ops.append(Operation(d.id, "release"))
        elif d.field == "phoneNumber":
            if d.observed:
                ops.append(Operation(d.id, "release"))
            if d.desired:
                ops.append(Operation(d.id, "place"))
        elif d.field == "account":
            ops.append(Operation(d.id, "record"))
        else:
            ops.append(Operation(d.id, "user"))
    return sorted(ops, key=lambda op: STAGES.index(op.stage))


async def _create_or_update(attempt: Attempt[None], create: Callable[[], Awaitable[None]],
                            update: Callable[[], Awaitable[None]]) -> None:
    try:
        await attempt(create)
    except UpstreamError as exc:
        if exc.retryable:
            raise
        await attempt(update)  # it exists (made by hand, or by this operation before a crash): correct it


async def _release(attempt: Attempt[None], voice: TenantVoiceAdmin, upn: str, number: str) -> None:
    try:
        await attempt(lambda: voice.remove_number(upn, number))
    except UpstreamError as exc:
        if exc.retryable or "not assigned" not in exc.message:
            raise


async def run_operation(voice: TenantVoiceAdmin, op: Operation, d: Difference, desired: DesiredState,
                        attempt: Attempt[Any] = _direct) -> str:
    """Carries out one stage of one difference in Microsoft; answers what was done. `record` operations
    are the caller's (teamsvoice's database), not Microsoft's."""
    routing = desired.routing
    if d.kind == "gateway":
        gateway = next(g for g in routing.gateways if g.fqdn.lower() == d.object.lower())
        if d.action == "create":
            await _create_or_update(attempt, lambda: voice.create_gateway(gateway.fqdn, gateway.sip_port),
                                    lambda: voice.update_gateway(gateway.fqdn, gateway.sip_port))
        else:
            await attempt(lambda: voice.update_gateway(gateway.fqdn, gateway.sip_port))
        return f"PSTN gateway {gateway.fqdn} {d.action}d"
    if d.kind == "usage":
        await attempt(lambda: voice.add_usage(d.object))
        return f"PSTN usage {d.object} added"
    if d.kind == "route":
        route = next(r for r in routing.routes if r.identity.lower() == d.object.lower())
        if d.action == "create":
            await _create_or_update(attempt, lambda: voice.create_route(route), lambda: voice.update_route(route))
        else:
            await attempt(lambda: voice.update_route(route))
        return f"voice route {route.identity} {d.action}d"
    if d.kind == "policy":
        policy = next(p for p in routing.policies if p.identity.lower() == d.object.lower())
        if d.action == "create":
            await _create_or_update(attempt, lambda: voice.create_policy(policy), lambda: voice.update_policy(policy))
        else:
            await attempt(lambda: voice.update_policy(policy))
        return f"voice routing policy {policy.identity} {d.action}d"
    if d.kind == "number":
        await _release(attempt, voice, str(d.observed), d.object)
        return f"{d.object} removed from {d.observed}"
    upn = d.object
    if d.field == "phoneNumber":
        if op.stage == "release":
            for number in d.observed or []:
                await _release(attempt, voice, upn, number)
            return f"{', '.join(d.observed or [])} removed from {upn}"
        await attempt(lambda: voice.assign_number(upn, str(d.desired)))
        return f"{d.desired} assigned to {upn}"
    if d.field == "enterpriseVoice":
        await attempt(lambda: voice.set_enterprise_voice(upn, bool(d.desired)))
        return f"Enterprise Voice {'enabled' if d.desired else 'disabled'} for {upn}"
    if d.field == "voiceRoutingPolicy":
        await attempt(lambda: voice.grant_voice_routing_policy(upn, d.desired))
        return f"voice routing policy of {upn} set to {d.desired or 'Global'}"
    raise ValueError(f"{d.id}: no Microsoft operation for stage {op.stage}")


async def converge(voice: TenantVoiceAdmin, current: Plan, desired: DesiredState,
                   attempt: Attempt[Any] = _direct) -> tuple[list[dict[str, Any]], list[Difference]]:
    """Runs every Microsoft operation of the plan. Answers per-operation results, and the differences whose
    fix is in teamsvoice's records (users deleted in Entra ID) for the caller to write. One operation
    Microsoft refuses does not stop the others."""
    by_id = {d.id: d for d in current.differences}
    results: list[dict[str, Any]] = []
    records: list[Difference] = []
    for op in operations(current.differences):
        d = by_id[op.difference_id]
        if op.stage == "record":
            records.append(d)
            continue
        try:
            results.append({"id": d.id, "stage": op.stage, "status": "done",
                            "detail": await run_operation(voice, op, d, desired, attempt)})
        except DomainError as exc:
            results.append({"id": d.id, "stage": op.stage, "status": "failed", "detail": exc.message})
    return results, records
