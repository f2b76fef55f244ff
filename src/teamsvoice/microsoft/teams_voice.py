"""Directory reads on Graph v1.0 and Teams voice on Graph's admin/teams: users' configurations, number
assignment (long-running operations, polled) and policy assignment (many users per call). Only Enterprise
Voice on its own (no Graph API sets it) still goes through the Set-CsPhoneNumberAssignment cmdlet.

Number changes: `assignNumber` / `unassignNumber` / `updateNumber` answer 202 with a Location naming a
telephoneNumberLongRunningOperation, polled until it succeeds or fails (`OperationPolling`). A failed
operation is Teams refusing the change: it is raised as the cmdlet path raised it (UpstreamError, status
400, "<action> failed: <Teams' reason>", not retryable), so the API families answer exactly as before
(ConnecttoTeams 409, Fusion 400). An operation still running past the deadline, or gone, is transient
(retryable): jobs retry it, and assigning the same number to the same user again is a no-op.

Policies: `policy/getPolicyId` resolves a voice routing policy's name to its id (remembered by the process
for POLICY_ID_SECONDS, asked again when an assignment with a remembered id is refused), then
`policy/userAssignments/assign` grants it to up to POLICY_ASSIGN_CHUNK users per call; None or "Global"
removes the per-user grant (`unassign`), so the user falls back to the tenant's Global policy.
"""

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from teamsvoice.core.errors import NotFound, UpstreamError
from teamsvoice.microsoft.budget import current_job
from teamsvoice.microsoft.coalescing import COALESCER
from teamsvoice.microsoft.directory import ORGANIZATION_SELECT
from teamsvoice.microsoft.graph import BatchRequest, GraphClient, retry_after_seconds
from teamsvoice.microsoft.paths import _GUID, object_segment
from teamsvoice.microsoft.ports import Cmdlets, VoiceState
from teamsvoice.core.remembered import Remembered

GLOBAL_ADMIN_TEMPLATE_ID = "62e90394-69f5-4237-9190-012177145e10"
NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"
POLICY = "/admin/teams/policy"
VOICE_ROUTING_POLICY_TYPE = "onlineVoiceRoutingPolicy"
USER_ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
# Graph documents no cap for one assign call; PowerShell's batch policy assignment takes 5,000 users per
# operation. 1,000 keeps one request body small (about 150 kB).
POLICY_ASSIGN_CHUNK = 1000
# The fields of a teamsUserConfiguration the connector reads ($select: Graph sends only these).
USER_CONFIGURATION_SELECT = "id,userPrincipalName,isEnterpriseVoiceEnabled,telephoneNumbers,effectivePolicyAssignments"
USER_SELECT = "id,userPrincipalName"
DIRECTORY_USER_SELECT = "id,userPrincipalName,displayName,mail,accountEnabled"
FINISHED = {"succeeded": True, "skipped": True, "failed": False}
POLICY_ID_SECONDS = 300.0
_POLICY_IDS: Remembered[str] = Remembered(POLICY_ID_SECONDS)  # (tenant, policy name) -> its Graph policy id


def voice_state_of(config: dict[str, Any]) -> VoiceState:
    """A Graph teamsUserConfiguration in domain terms ("Global" is no per-user policy)."""
    policy = next(((a.get("policyAssignment") or {}).get("displayName")
                   for a in config.get("effectivePolicyAssignments") or []
                   if "voicerouting" in str(a.get("policyType", "")).lower()), None)
    return VoiceState(
        user_id=str(config["id"]), user_principal_name=str(config.get("userPrincipalName") or "").lower(),
        enterprise_voice=bool(config.get("isEnterpriseVoiceEnabled")),
        phone_numbers=[n["telephoneNumber"] for n in config.get("telephoneNumbers") or []],
        voice_routing_policy=policy if policy not in ("", "Global") else None,
    )


def is_global(policy: str | None) -> bool:
    """None, "Global" or "Tag:Global": no per-user grant."""
    return policy is None or policy.strip() == "" or policy.removeprefix("Tag:").lower() == "global"


def refused(action: str, reason: str, code: str = "BadRequest") -> UpstreamError:
    """Teams refused a change, worded as the cmdlet path worded it."""
    return UpstreamError(f"{action} failed: {reason}", retryable=False, status=400, upstream_code=code)


class OperationPolling:
    """When to look at a running number operation again.

    The first look comes when most of this tenant's recent operations had finished: the time by which
    QUANTILE of them were done, learnt per tenant (a quantile estimate nudged by each first look: up a
    little when the operation was still running, down a little when it was done). Learning from when each
    look was sent, not when it was asked for, makes the estimate absorb the time looks queue for the
    tenant's budget, so a bulk job spends about one look per number. Later looks back off, doubling from a
    quarter of that time up to `cap`.

    The nudges are small (STEP): many operations are in flight at once and each teaches only when it is
    looked at, seconds after it began, so a larger step overshoots before the looks that would correct it
    come back (with 0.2 the estimate swung between 0.6 s and the cap under a bulk job).

    An operation of interactive work (its job, `budget.current_job`, awaits at most INTERACTIVE of them in
    this process: a one-user change, or the last items of a bulk job) is looked at sooner and more often:
    first at a quarter of the learnt time, then every `interactive_every` seconds (counted from when the previous
    look was sent: a slow look is followed at once). A one-user change then
    learns its outcome a fraction of a second after Teams, for a few Teams requests more than a bulk item
    spends.

    A Retry-After on the 202 or on an operation read is obeyed instead. Past `deadline` the operation
    counts as stuck: a transient failure."""

    QUANTILE = 0.9
    STEP = 0.05  # how far one look moves the estimate (relative)
    INTERACTIVE = 2

    def __init__(self, *, floor: float = 0.05, cap: float = 5.0, deadline: float = 300.0,
                 interactive_every: float = 0.25) -> None:
        self.floor, self.cap, self.deadline, self.interactive_every = floor, cap, deadline, interactive_every
        self._done_by: dict[str, float] = {}
        self._latest = 0.0  # the estimate last learnt, for any tenant
        self._awaited: dict[tuple[str, str | None], int] = {}  # (tenant, job) -> operations awaited now
        self._lock = threading.Lock()

    @contextmanager
    def awaiting(self, tenant: str) -> Iterator[bool]:
        """Counts an operation of the current job as awaited while inside; answers whether it is
        interactive work (see the class docstring)."""
        key = (tenant, current_job.get())
        with self._lock:
            self._awaited[key] = self._awaited.get(key, 0) + 1
            interactive = self._awaited[key] <= self.INTERACTIVE
        try:
            yield interactive
        finally:
            with self._lock:
                self._awaited[key] -= 1
                if not self._awaited[key]:
                    del self._awaited[key]

    def _estimate(self, tenant: str) -> float:
        """The tenant's learnt time; for a tenant this process has not seen finish an operation yet, the estimate
        last learnt for any tenant (an operation's time is Microsoft's, not the tenant's: twenty new tenants at
        once otherwise each looked at their first operations at once, 4.0 Teams requests per user against 3.3)."""
        return self._done_by.get(tenant, self._latest)

    def first_delay(self, tenant: str, interactive: bool = False) -> float:
        done_by = self._estimate(tenant)
        return min(self.cap, done_by / 4 if interactive else done_by)

    def next_delay(self, tenant: str, previous: float, interactive: bool = False) -> float:
        if interactive:
            return max(self.floor, self.interactive_every)
        return min(self.cap, max(self.floor, previous * 2, self._estimate(tenant) / 4))

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def learn(self, tenant: str, last_running: float, finished: float, *, teach: bool = True) -> None:
        """An operation finished between the last look that saw it running (`last_running`; 0: none did,
        it was done at the first look) and the one that saw it done (`finished`), in seconds after it was
        accepted, counted when each look was sent. The first operation of a tenant gives the estimate (the
        middle of those two looks, or the first look); later ones nudge it, unless `teach` is false (an
        interactive operation, looked at before the estimate says)."""
        with self._lock:
            before = self._done_by.get(tenant)
            if before is None:
                self._done_by[tenant] = min(self.deadline, (last_running + finished) / 2 if last_running > 0 else finished)
            elif teach and last_running <= 0:
                self._done_by[tenant] = before * (1 - self.STEP * (1 - self.QUANTILE))
            elif teach:
                self._done_by[tenant] = min(self.deadline, max(before, self.floor) * (1 + self.STEP * self.QUANTILE))
            self._latest = self._done_by[tenant]


POLLING = OperationPolling()


@dataclass(frozen=True)
class NumberOperation:
    action: str
    location: str
    retry_after: float | None
    accepted_at: float  # time.monotonic() when the 202 arrived


class GraphDirectory:
    def __init__(self, graph: GraphClient) -> None:
        self._graph = graph

    async def organization(self) -> dict[str, Any]:
        return (await self._graph.get("/organization", **{"$select": ORGANIZATION_SELECT}))["value"][0]

    async def user(self, id_or_upn: str) -> dict[str, Any]:
        return await self._graph.get(f"/users/{object_segment(id_or_upn)}", **{"$select": DIRECTORY_USER_SELECT})

    async def is_global_admin(self, user_id: str) -> bool:
        # No $select: memberOf mixes groups and directory roles, and roleTemplateId is only a role's.
        async for entry in self._graph.pages(f"/users/{object_segment(user_id)}/memberOf"):
            if entry.get("roleTemplateId") == GLOBAL_ADMIN_TEMPLATE_ID:
                return True
        return False


class TeamsVoiceAdapter:
    def __init__(self, graph: GraphClient, cmdlets: Cmdlets, *, polling: OperationPolling | None = None) -> None:
        self._graph = graph
        self._cmdlets = cmdlets
        self._polling = polling or POLLING
        self._ids: dict[str, str] = {}  # userPrincipalName (lower case) -> object id

    # --- reads ------------------------------------------------------------------------------------------
    async def voice_state(self, user_id: str) -> VoiceState:
        # (with the reads of the job's other items in one $batch: GraphClient.get_batched)
        config = await self._graph.get_batched(f"/admin/teams/userConfigurations/{object_segment(user_id)}",
                                               **{"$select": USER_CONFIGURATION_SELECT})
        state = voice_state_of(config)
        self._ids[state.user_principal_name] = state.user_id
        return state

    async def voice_users(self) -> list[VoiceState]:
        # The largest page Graph serves: a 5,000-user tenant in 6 round trips instead of 50.
        states = [voice_state_of(c) async for c in self._graph.pages(
            "/admin/teams/userConfigurations", **{"$top": "999", "$select": USER_CONFIGURATION_SELECT})]
        self._ids.update((s.user_principal_name, s.user_id) for s in states)
        return states

    async def user_id(self, id_or_upn: str, action: str) -> str:
        """The object id Graph's Teams actions take (assignmentTargetId, userId) for a UPN or an id."""
        if _GUID.fullmatch(id_or_upn):
            return id_or_upn.lower()
        key = id_or_upn.lower()
        if key not in self._ids:
            try:
                found = await self._graph.get(f"/users/{object_segment(id_or_upn)}", **{"$select": USER_SELECT})
            except NotFound:
                raise refused(action, f"Management object not found for identity '{id_or_upn}'.",
                              "ManagementObjectNotFound") from None
            self._ids[key] = str(found["id"])
        return self._ids[key]

    async def user_ids(self, ids_or_upns: Iterable[str], action: str) -> list[str]:
        """Object ids for many users: unknown UPNs are looked up in $batch requests of 20."""
        wanted = list(dict.fromkeys(ids_or_upns))
        missing = [u for u in wanted if not _GUID.fullmatch(u) and u.lower() not in self._ids]
        if len(missing) > 1:
            requests = [BatchRequest(str(i), "GET", f"/users/{object_segment(upn)}?$select={USER_SELECT}")
                        for i, upn in enumerate(missing)]
            answers = await self._graph.batch(requests)
            for request, upn in zip(requests, missing):
                answer = answers[request.id]
                if answer.ok:
                    self._ids[upn.lower()] = str(answer.body["id"])
                elif answer.status == 404:
                    raise refused(action, f"Management object not found for identity '{upn}'.", "ManagementObjectNotFound")
                else:
                    error = answer.error(request)
                    assert error is not None
                    raise error
        return [await self.user_id(u, action) for u in wanted]

    # --- numbers ----------------------------------------------------------------------------------------
    async def _start(self, action: str, body: dict[str, Any]) -> NumberOperation:
        # (with the job's other items' number changes in one $batch: GraphClient.batched)
        response = await self._graph.batched("POST", f"{NUMBERS}/{action}", body)
        location = response.headers.get("location")
        if response.status != 202 or not location:
            raise UpstreamError(f"{action}: Microsoft Graph answered {response.status} without an operation "
                                "to follow", retryable=True, status=response.status)
        return NumberOperation(action, location, retry_after_seconds(response.headers), time.monotonic())

    async def _finish(self, operation: NumberOperation) -> None:
        """Polls the operation until it succeeded (returns) or failed (raises Teams' refusal)."""
        tenant = self._graph.tenant_id or ""
        with self._polling.awaiting(tenant) as interactive:
            await self._poll(operation, tenant, interactive)

    async def _poll(self, operation: NumberOperation, tenant: str, interactive: bool) -> None:
        started = operation.accepted_at
        first = self._polling.first_delay(tenant, interactive)
        delay = operation.retry_after if operation.retry_after is not None else first
        delay = max(0.0, delay - (time.monotonic() - started))  # counted from the 202 (work may have run since)
        backoff, last_running = 0.0, 0.0
        while True:
            if time.monotonic() - started + delay > self._polling.deadline:
                raise UpstreamError(f"{operation.action}: the number operation was still running after "
                                    f"{self._polling.deadline:.0f} s", retryable=True)
            if delay > 0:
                await self._polling.wait(delay)
            try:
                # (with the job's other items' looks, reads and starts in one $batch: GraphClient.batched)
                response = await self._graph.batched("GET", operation.location)
            except NotFound:
                raise UpstreamError(f"{operation.action}: Microsoft Graph lost the number operation",
                                    retryable=True, status=404) from None
            elapsed = time.monotonic() - response.wire - started  # when this look was sent
            result = response.body if isinstance(response.body, dict) else {}
            status = str(result.get("status") or "")
            if status in FINISHED:
                self._polling.learn(tenant, last_running, elapsed, teach=not interactive)
                if FINISHED[status]:
                    return
                details = [n.get("statusDetail") for n in result.get("numbers") or [] if n.get("statusDetail")]
                raise refused(operation.action, "; ".join(details) or "the number operation failed")
            last_running = elapsed
            backoff = self._polling.next_delay(tenant, backoff, interactive)
            after = retry_after_seconds(response.headers)
            # An interactive operation's next look is due `interactive_every` after this one was sent, not after it
            # came back: a look that spent that long on the wire is followed at once (0.25 s plus a 0.3 s look made
            # a look every 0.55 s, and a one-user change learnt its outcome up to that much after Teams).
            delay = after if after is not None else (max(0.0, backoff - response.wire) if interactive else backoff)

    async def _number_operation(self, action: str, body: dict[str, Any]) -> None:
        await self._finish(await self._start(action, body))

    async def assign_number(self, user_principal_name: str, phone_number: str, *,
                            meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        """A Direct Routing number (an ';ext=' extension included) as the user's primary number. `meanwhile`
        runs once Teams accepted the change, while it completes (one request at a time: the user's next
        change rides the operation's time); the number's outcome is awaited either way, and a failure of
        `meanwhile` is raised after it."""
        target = await self.user_id(user_principal_name, "assignNumber")
        operation = await self._start("assignNumber", {
            "telephoneNumber": phone_number, "assignmentTargetId": target, "numberType": "directRouting",
            "assignmentCategory": "primary"})
        if meanwhile is not None:
            try:
                await meanwhile()
            except Exception:
                await self._finish(operation)
                raise
        await self._finish(operation)

    async def unassign_number(self, phone_number: str) -> None:
        await self._number_operation("unassignNumber", {"telephoneNumber": phone_number, "numberType": "directRouting"})

    async def update_number(self, phone_number: str, *, location_id: str | None = None,
                            network_site_id: str | None = None, reverse_number_lookup: list[str] | None = None) -> None:
        """Graph's updateNumber: only the attributes given are sent."""
        body: dict[str, Any] = {"telephoneNumber": phone_number}
        for key, value in (("locationId", location_id), ("networkSiteId", network_site_id),
                           ("reverseNumberLookupOptions", reverse_number_lookup)):
            if value is not None:
                body[key] = value
        await self._number_operation("updateNumber", body)

    async def remove_number(self, user_principal_name: str, phone_number: str) -> None:
        """Removes one number from the user; a number the user does not hold is refused (left with its holder)."""
        state = await self.voice_state(user_principal_name)
        if phone_number not in state.phone_numbers:
            raise refused("unassignNumber", f"Telephone Number '{phone_number}' is not assigned to the user.")
        await self.unassign_number(phone_number)

    async def remove_numbers(self, user_principal_name: str) -> None:
        """Every number of the user (Teams then turns Enterprise Voice off). Teams refuses to unassign a number that
        nobody holds: when another change of the same user removed it meanwhile (a cancelled bulk job's item still in
        flight when the job is retried, two jobs changing one user), the refusal is not this change's outcome. So a
        refused number is looked for again, and the refusal stands only if the user still holds it."""
        numbers = (await self.voice_state(user_principal_name)).phone_numbers
        outcomes = await asyncio.gather(*(self.unassign_number(n) for n in numbers), return_exceptions=True)
        refusals = [(n, o) for n, o in zip(numbers, outcomes) if isinstance(o, BaseException)]
        if not refusals:
            return
        for _, outcome in refusals:
            if not (isinstance(outcome, UpstreamError) and outcome.is_refusal):
                raise outcome  # a transient failure (or a cancel) is raised as it came
        held = (await self.voice_state(user_principal_name)).phone_numbers
        for number, outcome in refusals:
            if number in held:
                raise outcome

    async def set_enterprise_voice(self, user_principal_name: str, enabled: bool) -> None:
        # Graph's teamsUserConfiguration is read-only: Enterprise Voice alone is the cmdlet's.
        await self._cmdlets.run(
            "Set-CsPhoneNumberAssignment", {"Identity": user_principal_name, "EnterpriseVoiceEnabled": enabled}
        )

    # --- policies ---------------------------------------------------------------------------------------
    async def _policy_id(self, policy: str, *, fresh: bool = False) -> str:
        """The Graph id of a voice routing policy, remembered by the process for POLICY_ID_SECONDS (one
        lookup per tenant and policy, not one per job item); `fresh` asks Microsoft again."""
        name = policy.removeprefix("Tag:")
        key = (self._graph.tenant_id or "", name.lower())
        if not fresh:
            return await _POLICY_IDS.recall(key, lambda: self._read_policy_id(name, key))  # (several jobs' grants at once)
        identifier = await self._read_policy_id(name, key)
        _POLICY_IDS.put(key, identifier)
        return identifier

    async def _read_policy_id(self, name: str, key: tuple[str, str]) -> str:
        literal = quote(name.replace("'", "''"), safe="")
        try:
            found = await self._graph.get(f"{POLICY}/getPolicyId(type='{VOICE_ROUTING_POLICY_TYPE}',name='{literal}')")
        except NotFound:
            _POLICY_IDS.forget(key)
            raise refused("Grant voice routing policy", f"Policy \"{name}\" is not a user policy. You can assign "
                          "only a policy that has per-user scope.", "PolicyNotFound") from None
        values = found.get("value") or []
        if not values or not (values[0].get("policyId") or values[0].get("id")):
            raise refused("Grant voice routing policy", f"Policy \"{name}\" has no id in Microsoft Teams.", "PolicyNotFound")
        return str(values[0].get("policyId") or values[0]["id"])

    async def grant_voice_routing_policy(self, user_principal_name: str, policy: str | None) -> None:
        """One user's grant, sent in one call with the grants of the same tenant and policy that this process
        has waiting (microsoft/coalescing.py; up to POLICY_ASSIGN_CHUNK users)."""
        user = await self.user_id(user_principal_name, "Grant voice routing policy")
        name = "" if is_global(policy) else str(policy).removeprefix("Tag:").lower()

        async def send(users: list[str]) -> dict[str, BaseException]:
            await self._grant(users, policy)
            return {}

        await COALESCER.join(self._graph.shared_key("policy", name), user, send, limit=POLICY_ASSIGN_CHUNK)

    async def grant_voice_routing_policy_to_many(self, upns_or_ids: Iterable[str], policy: str | None) -> None:
        """One policy for many users, up to POLICY_ASSIGN_CHUNK per Graph call; None / "Global" removes the
        per-user grant. Repeating it leaves the users as one run would."""
        users = await self.user_ids(upns_or_ids, "Grant voice routing policy")
        if users:
            await self._grant(users, policy)

    async def _grant(self, users: list[str], policy: str | None) -> None:
        action = "unassign" if is_global(policy) else "assign"
        item: dict[str, Any] = {"@odata.type": USER_ASSIGNMENT_TYPE, "policyType": VOICE_ROUTING_POLICY_TYPE}
        if action == "assign":
            assert policy is not None
            item["policyId"] = await self._policy_id(policy)
        for start in range(0, len(users), POLICY_ASSIGN_CHUNK):
            body = {"value": [{**item, "userId": user} for user in users[start:start + POLICY_ASSIGN_CHUNK]]}
            try:
                await self._post_assignments(action, body)
            except (NotFound, UpstreamError) as exc:
                if action != "assign" or getattr(exc, "retryable", False):
                    raise
                # The remembered id may be stale (the policy made again): ask once more, retry if it changed.
                assert policy is not None
                stale, item["policyId"] = item["policyId"], await self._policy_id(policy, fresh=True)
                if item["policyId"] == stale:
                    raise
                await self._post_assignments(action, {"value": [{**a, "policyId": item["policyId"]} for a in body["value"]]})

    async def _post_assignments(self, action: str, body: dict[str, Any]) -> None:
        try:
            await self._graph.post(f"{POLICY}/userAssignments/{action}", body)
        except NotFound:  # a user deleted since it was looked up
            raise refused("Grant voice routing policy", "Management object not found for one of the users.",
                          "ManagementObjectNotFound") from None

