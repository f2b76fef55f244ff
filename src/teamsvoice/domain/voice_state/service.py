"""Plan and apply over the TenantVoiceAdmin port: read the tenant, diff it with the desired state, and
converge it (`schedule` orders the operations by what each waits for, `run_scheduled` runs them, those that wait
on nothing at once, within a bound).

Every operation is safe to repeat: a create that finds the object already there (a replay after a crash)
updates it instead; removing a number that is already gone is done; assigning a user the number it holds is a
no-op.

Numbers: a user whose number changes gets the new one in one operation (`place`: Graph's assignNumber of a primary
number replaces the user's previous primary number, so the user is never without one), and a placement waits only
for the operation that frees its number (its holder's own change, or the release of a number nobody gets back).
Numbers swapped between users (A's to B and B's to A) wait on each other: one user of each such cycle has its
number released first (`release`), the others keep theirs until their new one is placed.
"""

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from teamsvoice.core.errors import DomainError, UpstreamError
from teamsvoice.domain.voice_state.planner import Difference, Plan, plan
from teamsvoice.domain.voice_state.state import DesiredState, ObservedState
from teamsvoice.microsoft.ports import TenantVoiceAdmin

T = TypeVar("T")
# Runs one Microsoft call; a durable job passes one that waits out transient failures.
Attempt = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]

# The stages of apply: configuration, numbers released, numbers placed, the rest of the users, then teamsvoice's own
# records (a user deleted in Entra ID frees its number). `operations` runs them in this order (the chunked apply of
# earlier releases); `schedule` only configuration first and the records last, the rest as each waits for another.
STAGES = ("configure", "release", "place", "user", "record")
_CONFIGURATION = ("gateway", "usage", "route", "policy")  # each kind may need the ones before it


@dataclass(frozen=True)
class Operation:
    difference_id: str
    stage: str


async def _direct(call: Callable[[], Awaitable[T]]) -> T:
    return await call()


async def observe(voice: TenantVoiceAdmin) -> ObservedState:
    """The tenant's three reads at once. Microsoft's failure of one is raised as itself, not in the task group's
    ExceptionGroup: that was a 500 (the console's plan card, the plan route), a traceback (`teamsvoice plan`), and a
    transient failure that `until_microsoft_answers` did not see as one."""
    found: dict[str, Any] = {}

    async def read(name: str, call: Callable[[], Awaitable[Any]]) -> None:
        found[name] = await call()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(read, "routing", voice.routing)
            group.start_soon(read, "users", voice.voice_users)
            group.start_soon(read, "disabled", voice.disabled_user_ids)
    except ExceptionGroup as failed:
        refusal = next((exc for exc in failed.exceptions if isinstance(exc, DomainError)), None)
        if refusal is None:
            raise  # a defect: the group as it is
        raise refusal from None
    return ObservedState(found["routing"], found["users"], frozenset(found["disabled"]))


async def plan_tenant(voice: TenantVoiceAdmin, desired: DesiredState) -> Plan:
    """Reads Microsoft, changes nothing."""
    return plan(desired, await observe(voice))


def operations(differences: list[Difference]) -> list[Operation]:
    """What the apply of earlier releases did, in order (its chunks are slices of this list: kept for the jobs such a
    release left unfinished). A number changing hands is released everywhere before it is placed."""
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


@dataclass
class Schedule:
    """The operations of a plan and what each waits for (`schedule`)."""

    configure: list[list[Operation]] = field(default_factory=list)  # groups run one after the other
    numbers: list[Operation] = field(default_factory=list)  # releases and placements
    users: list[Operation] = field(default_factory=list)  # Enterprise Voice and policy differences
    records: list[Operation] = field(default_factory=list)  # teamsvoice's own records, last
    waits: dict[Operation, Operation] = field(default_factory=dict)  # an operation -> the one that must end first

    def all(self) -> list[Operation]:
        return [op for group in self.configure for op in group] + self.numbers + self.users + self.records


def schedule(differences: list[Difference]) -> Schedule:
    """What apply does and in which order. Configuration first (a policy must exist before it is granted), kind by
    kind; then every number and user operation, each as soon as the one it waits for has ended: a placement waits for
    the operation freeing its number, and a user's other change for its number's; the records last.

    A user whose number changes has one `place` operation (the new number assigned over the old one). Placements
    waiting on each other in a cycle (numbers swapped) are broken at the cycle's first user: its number is released
    (`release`, waiting on nothing), the next in the cycle waits for that release, and its own placement stays last."""
    out = Schedule()
    kinds: dict[str, list[Operation]] = {}
    wanted: dict[Operation, str] = {}  # a placement -> the number it places
    freer: dict[str, Operation] = {}  # a number held now -> the operation that takes it from its holder
    of_user: dict[str, Operation] = {}  # a user -> its number operation
    for d in differences:
        if d.action == "leave":
            continue
        if d.kind in _CONFIGURATION:
            kinds.setdefault(d.kind, []).append(Operation(d.id, "configure"))
        elif d.kind == "number":
            op = Operation(d.id, "release")
            out.numbers.append(op)
            freer[d.object] = op
        elif d.field == "phoneNumber":
            op = Operation(d.id, "place" if d.desired else "release")
            out.numbers.append(op)
            of_user[d.object] = op
            if d.desired:
                wanted[op] = str(d.desired)
            for number in d.observed or []:
                if number != d.desired:
                    freer[number] = op
        elif d.field == "account":
            out.records.append(Operation(d.id, "record"))
        else:
            out.users.append(Operation(d.id, "user"))
    out.configure = [kinds[kind] for kind in _CONFIGURATION if kind in kinds]
    for op, number in wanted.items():
        if (first := freer.get(number)) is not None and first != op:
            out.waits[op] = first
    _break_cycles(out)
    by_id = {d.id: d for d in differences}
    for op in out.users:
        if (number_op := of_user.get(by_id[op.difference_id].object)) is not None:
            out.waits[op] = number_op
    return out


def _break_cycles(order: Schedule) -> None:
    """Placements waiting on each other in a ring (each waits for at most one): the ring's first user releases
    its numbers first (see `schedule`)."""
    state: dict[Operation, int] = {}  # 1: on the path being walked, 2: done
    for start in list(order.waits):
        path: list[Operation] = []
        op: Operation | None = start
        while op is not None and op not in state:
            state[op] = 1
            path.append(op)
            op = order.waits.get(op)
        if op is not None and state[op] == 1:  # a ring: from op around to the end of the path
            ring = path[path.index(op):]
            first = min(ring, key=lambda o: o.difference_id)
            release = Operation(first.difference_id, "release")
            order.numbers.append(release)
            for waiting in ring:
                if order.waits.get(waiting) == first:
                    order.waits[waiting] = release
        for walked in path:
            state[walked] = 2


# Runs one operation (run_operation's signature): a caller may pass its own (tests, a job's).
OperationRunner = Callable[..., Awaitable[str]]
# What one operation's failure says; raises what must not be an operation's outcome.
Failure = Callable[[Exception, str], str]


def _domain_failure(exc: Exception, _what: str) -> str:
    if isinstance(exc, DomainError):
        return exc.message
    raise exc


async def run_scheduled(voice: TenantVoiceAdmin, order: Schedule, differences: list[Difference], desired: DesiredState,
                        attempt: Attempt[Any], *, limit: int, on_result: Callable[[dict[str, Any]], None],
                        done: Collection[tuple[str, str]] = (), stopped: Callable[[], bool] = lambda: False,
                        run: OperationRunner | None = None, failure: Failure = _domain_failure) -> None:
    """Runs the schedule's Microsoft operations (not its records), at most `limit` at once, each as soon as the one
    it waits for has ended (done or failed: a placement whose number is still held is then refused by Teams, named).
    The voice routing policy differences go to Microsoft together, one call per policy (`grant_policies`), beside
    the numbers. `on_result` gets each result ({id, stage, status, detail}) as its operation ends. Operations in
    `done` (by (id, stage): a job run again after a crash) are not run again; once `stopped()` answers true (the job
    was cancelled), no operation starts."""
    run = run or run_operation
    by_id = {d.id: d for d in differences}
    limiter = anyio.CapacityLimiter(max(1, limit))
    ended: dict[Operation, anyio.Event] = {op: anyio.Event() for op in order.all()}

    async def one(op: Operation) -> None:
        try:
            if (first := order.waits.get(op)) is not None:
                await ended[first].wait()
            if (op.difference_id, op.stage) in done:
                return
            async with limiter:
                if stopped():
                    return
                d = by_id[op.difference_id]
                try:
                    result = {"status": "done", "detail": await run(voice, op, d, desired, attempt)}
                except Exception as exc:  # noqa: BLE001 - one operation's failure, whatever it is, is its outcome
                    result = {"status": "failed", "detail": failure(exc, d.id)}
                on_result({"id": d.id, "stage": op.stage, **result})
        finally:
            ended[op].set()  # (also when it failed or did not run: nothing waits for ever)

    async def grants(ops: list[Operation]) -> None:
        todo = [by_id[op.difference_id] for op in ops if (op.difference_id, op.stage) not in done]
        if todo and not stopped():
            async with limiter:
                for result in await grant_policies(voice, todo, desired, attempt, run=run, failure=failure):
                    on_result(result)

    for group in order.configure:
        async with anyio.create_task_group() as tasks:
            for op in group:
                tasks.start_soon(one, op)
    async with anyio.create_task_group() as tasks:
        policy_grants = [op for op in order.users if is_policy_grant(by_id[op.difference_id])]
        if policy_grants:
            tasks.start_soon(grants, policy_grants)
        granting = set(policy_grants)  # (a list looked up per user: 12.5M comparisons for a 5,000-user onboarding)
        for op in order.numbers + [op for op in order.users if op not in granting]:
            tasks.start_soon(one, op)


def is_policy_grant(d: Difference) -> bool:
    return d.kind == "user" and d.field == "voiceRoutingPolicy" and d.action != "leave"


async def grant_policies(voice: TenantVoiceAdmin, differences: list[Difference], desired: DesiredState,
                         attempt: Attempt[Any], *, run: OperationRunner | None = None,
                         failure: Failure = _domain_failure) -> list[dict[str, Any]]:
    """Voice routing policy differences (is_policy_grant): one Microsoft call per policy for all its users (None:
    back to Global). Should Microsoft refuse a group, each of its users is tried alone, so a refusal names its user
    and spares the others. Results as run_operation's."""
    run = run or run_operation
    by_policy: dict[str | None, list[Difference]] = {}
    for d in differences:
        by_policy.setdefault(d.desired, []).append(d)
    results: list[dict[str, Any]] = []
    for policy, group in by_policy.items():
        users = [d.user_id or d.object for d in group]
        try:
            await attempt(lambda: voice.grant_voice_routing_policy_to_many(users, policy))
        except DomainError:
            for d in group:
                try:
                    detail = await run(voice, Operation(d.id, "user"), d, desired, attempt)
                    results.append({"id": d.id, "stage": "user", "status": "done", "detail": detail})
                except Exception as exc:  # noqa: BLE001 - one user's failure, whatever it is, is its outcome
                    results.append({"id": d.id, "stage": "user", "status": "failed", "detail": failure(exc, d.id)})
            continue
        results.extend({"id": d.id, "stage": "user", "status": "done",
                        "detail": f"voice routing policy of {d.object} set to {policy or 'Global'}"} for d in group)
    return results


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
        await attempt(lambda: voice.assign_number(upn, str(d.desired)))  # over the old primary number (replaced)
        others = [n for n in d.observed or [] if n != d.desired]
        for number in others:  # a number the assignment did not replace (not primary): gone; else already done
            await _release(attempt, voice, upn, number)
        return f"{d.desired} assigned to {upn}" + (f" (was {', '.join(others)})" if others else "")
    if d.field == "enterpriseVoice":
        await attempt(lambda: voice.set_enterprise_voice(upn, bool(d.desired)))
        return f"Enterprise Voice {'enabled' if d.desired else 'disabled'} for {upn}"
    if d.field == "voiceRoutingPolicy":
        await attempt(lambda: voice.grant_voice_routing_policy(upn, d.desired))
        return f"voice routing policy of {upn} set to {d.desired or 'Global'}"
    raise ValueError(f"{d.id}: no Microsoft operation for stage {op.stage}")


async def converge(voice: TenantVoiceAdmin, current: Plan, desired: DesiredState,
                   attempt: Attempt[Any] = _direct, *, limit: int = 1) -> tuple[list[dict[str, Any]], list[Difference]]:
    """Runs every Microsoft operation of the plan (`schedule`, at most `limit` at once). Answers per-operation
    results, and the differences whose fix is in teamsvoice's records (users deleted in Entra ID) for the caller to
    write. One operation Microsoft refuses does not stop the others."""
    order = schedule(current.differences)
    results: list[dict[str, Any]] = []
    await run_scheduled(voice, order, current.differences, desired, attempt, limit=limit, on_result=results.append)
    by_id = {d.id: d for d in current.differences}
    return results, [by_id[op.difference_id] for op in order.records]
