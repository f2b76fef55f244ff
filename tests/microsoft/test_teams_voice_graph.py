"""Teams voice through Graph's admin/teams (microsoft/teams_voice.py) against the emulator over HTTPS: numbers
through telephoneNumberManagement operations (polled), voice routing policy for many users per call, $select
on the reads; and the emulator's operations behaving as Microsoft's (202 + Location, notStarted / running
until done, failures reported through the operation)."""

import asyncio
import dataclasses
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from dataclasses import dataclass, field

import httpx
import pytest

from m365_emulator.faults import FaultConfig, Faults
from teamsvoice.core.errors import NotFound, UpstreamError
from teamsvoice.core.metrics import REGISTRY
from teamsvoice.domain.voice_state.service import grant_policies
from teamsvoice.domain.voice_state.planner import Difference
from teamsvoice.domain.voice_state.state import DesiredState
from teamsvoice.microsoft.budget import job_scope
from teamsvoice.microsoft.coalescing import COALESCER
from teamsvoice.microsoft.connector import MicrosoftConnector
from teamsvoice.microsoft.directory import DirectoryUser
from teamsvoice.microsoft.graph import BatchResponse, GraphClient
from teamsvoice.microsoft.teams_voice import OperationPolling, TeamsVoiceAdapter
from teamsvoice.microsoft.voice_state import tenant_voice
from tests.microsoft.support import MsEmulator, SeededTenant
from tests.microsoft.test_faults import faults, inject  # noqa: F401 (faults: the fixture, cleared around a test)
from tests.support.emulated import TEAMS_PHONE_SKU

NUMBERS = "/v1.0/admin/teams/telephoneNumberManagement/numberAssignments"


@dataclass
class Seen:
    """Every request the connector sent (method, path, query), the operation statuses it read (alone or in a
    `$batch`), and the calls that started number operations: the action's name for one sent alone, `$batch` for a
    batch holding any (operation looks share batches too)."""

    requests: list[tuple[str, str, str]] = field(default_factory=list)
    operation_statuses: list[str] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)

    def paths(self, method: str, fragment: str) -> list[str]:
        return [p for m, p, _ in self.requests if m == method and fragment in p]


@pytest.fixture
async def seen(connector: MicrosoftConnector) -> AsyncIterator[Seen]:
    record = Seen()

    async def on_response(response: httpx.Response) -> None:
        request = response.request
        record.requests.append((request.method, request.url.path, request.url.query.decode()))
        if request.url.path.endswith("/$batch"):
            await response.aread()
            members = json.loads(request.content)["requests"]
            if any(m["method"] == "POST" and "/numberAssignments/" in m["url"] for m in members):
                record.starts.append("$batch")
            answers = {a["id"]: a for a in response.json().get("responses", [])}
            record.operation_statuses.extend(
                answers[m["id"]]["body"]["status"] for m in members
                if "/telephoneNumberManagement/operations" in m["url"] and answers.get(m["id"], {}).get("status") == 200)
        elif request.method == "POST" and "/numberAssignments/" in request.url.path:
            record.starts.append(request.url.path.rsplit("/", 1)[-1])
        elif "/telephoneNumberManagement/operations" in request.url.path and response.status_code == 200:
            await response.aread()
            record.operation_statuses.append(response.json()["status"])

    hooks = connector.http.event_hooks["response"]
    hooks.append(on_response)
    yield record
    hooks.remove(on_response)


def new_number(extension: bool = False) -> str:
    number = f"+3225{random.randrange(10**6, 10**7)}"
    return f"{number};ext={random.randrange(100, 999)}" if extension else number


def voice(connector: MicrosoftConnector, tenant: SeededTenant) -> TeamsVoiceAdapter:
    adapter = connector.connect(tenant.tenant_id).voice
    assert isinstance(adapter, TeamsVoiceAdapter)
    return adapter


@pytest.fixture
async def people(connector: MicrosoftConnector, tenant: SeededTenant) -> list[DirectoryUser]:
    """Three new users of the tenant for one test, licensed for Teams Phone (a number needs it)."""
    admin = connector.connect(tenant.tenant_id).directory_admin
    made = []
    for _ in range(3):
        upn = f"voice-{uuid.uuid4().hex[:10]}@{tenant.domain}"
        await admin.create_user(user_principal_name=upn, display_name="Voice Person",
                                mail_nickname=upn.split("@")[0], password="Initial-Passw0rd!", usage_location="BE")
        made.append(await admin.assign_licences(upn, add=[TEAMS_PHONE_SKU]))
    return made


async def test_a_number_is_assigned_and_removed_through_graph_operations(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], seen: Seen,
        ms_emulator: MsEmulator) -> None:
    adapter, user, number = voice(connector, tenant), people[0], new_number()
    await adapter.assign_number(user.user_principal_name, number)
    state = await adapter.voice_state(user.id)
    assert (state.phone_numbers, state.enterprise_voice) == ([number], True)  # Teams turns EV on with a number
    assert seen.paths("POST", "/numberAssignments/assignNumber") == [f"{NUMBERS}/assignNumber"]
    assert seen.paths("GET", "/telephoneNumberManagement/operations(") and seen.operation_statuses[-1] == "succeeded"
    assert not seen.paths("POST", "/_powershell/invoke")  # no cmdlet
    voice_admin = ms_emulator.admin.get(f"/_admin/tenants/{tenant.tenant_id}/voice").json()
    assert voice_admin["assignmentRequests"][number] == 1
    assert next(n for n in voice_admin["numbers"] if n["telephoneNumber"] == number)["numberType"] == "directRouting"

    await adapter.assign_number(user.user_principal_name, number)  # again: a no-op, as the cmdlet was
    assert (await adapter.voice_state(user.id)).phone_numbers == [number]

    await adapter.remove_numbers(user.user_principal_name)
    state = await adapter.voice_state(user.id)
    assert (state.phone_numbers, state.enterprise_voice) == ([], False)
    assert len(seen.paths("POST", "/numberAssignments/unassignNumber")) == 1
    assert not seen.paths("POST", "/_powershell/invoke")
    # Reads ask only for the fields the connector uses.
    configuration_reads = [q for m, p, q in seen.requests if m == "GET" and "/userConfigurations/" in p]
    assert configuration_reads and all("%24select=" in q or "$select=" in q for q in configuration_reads)


async def test_a_direct_routing_extension_number(connector: MicrosoftConnector, tenant: SeededTenant,
                                                 people: list[DirectoryUser]) -> None:
    adapter, user = voice(connector, tenant), people[0]
    number = new_number(extension=True)
    await adapter.assign_number(user.user_principal_name, number)
    assert (await adapter.voice_state(user.id)).phone_numbers == [number]
    with pytest.raises(UpstreamError, match="is not assigned to the user") as wrong_holder:
        await adapter.remove_number(people[1].user_principal_name, number)
    assert wrong_holder.value.is_refusal and (await adapter.voice_state(user.id)).phone_numbers == [number]
    await adapter.remove_number(user.user_principal_name, number)
    assert (await adapter.voice_state(user.id)).phone_numbers == []


async def test_two_removals_of_one_users_number_at_once_both_succeed(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator) -> None:
    """Two changes of one user removing its number at once (a cancelled bulk job's item still in flight when the job
    is retried: a fresh-clone CI run ended such a job `partial` on "Telephone Number ... is not assigned to any user or
    resource account"): both read the number, both ask Teams to unassign it, and Teams refuses the one that comes
    second, since nobody holds the number any more. Both succeed: the user holds no number, as each wanted."""
    adapter, user, number = voice(connector, tenant), people[0], new_number()
    await adapter.assign_number(user.user_principal_name, number)
    inject(faults, numberOperationMs=300)  # both unassignments are started before either is applied
    await asyncio.gather(adapter.remove_numbers(user.user_principal_name), adapter.remove_numbers(user.user_principal_name))
    assert (await adapter.voice_state(user.id)).phone_numbers == []


async def test_a_number_held_by_another_user_fails_as_the_cmdlet_did(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator) -> None:
    adapter, number = voice(connector, tenant), new_number()
    await adapter.assign_number(people[0].user_principal_name, number)
    inject(faults, numberOperationMs=200)  # the refusal comes from a running operation, later
    with pytest.raises(UpstreamError) as taken:
        await adapter.assign_number(people[1].user_principal_name, number)
    error = taken.value
    assert error.message == f"assignNumber failed: Telephone Number '{number}' has already been assigned to another user"
    assert (error.status, error.retryable, error.is_refusal) == (400, False, True)  # ConnecttoTeams: 409
    assert (await adapter.voice_state(people[1].id)).phone_numbers == []
    assert (await adapter.voice_state(people[0].id)).phone_numbers == [number]

    with pytest.raises(UpstreamError, match="Management object not found for identity") as nobody:
        await adapter.assign_number(f"nobody-{uuid.uuid4().hex[:6]}@{tenant.domain}", new_number())
    assert nobody.value.upstream_code == "ManagementObjectNotFound" and not nobody.value.retryable


async def test_number_changes_started_together_share_a_batch_and_a_refusal_is_only_its_users(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], seen: Seen) -> None:
    """A bulk job's items each start their user's number assignment: the starts waiting while one is on its way go in
    the next `$batch` together (GraphClient.batched), each followed to its own operation's end; a number Teams
    refuses (held by another user) fails only its own user's assignment."""
    adapter, numbers = voice(connector, tenant), [new_number(), new_number(), new_number()]
    # The users' ids known first, as a bulk item knows them from its voice state read: otherwise each start waits for
    # its own user lookup, and under load those came back far enough apart that no start was on its way while the
    # next came (three starts alone; a fresh-clone CI run failed so).
    await adapter.user_ids([p.user_principal_name for p in people], "assignNumber")
    seen.starts.clear()
    outcomes = await asyncio.gather(*(adapter.assign_number(p.user_principal_name, n) for p, n in zip(people, numbers)),
                                    return_exceptions=True)
    assert outcomes == [None, None, None]
    assert seen.starts == ["assignNumber", "$batch"]  # the first alone, the two that came meanwhile together
    states = await asyncio.gather(*(adapter.voice_state(p.id) for p in people))
    assert [s.phone_numbers for s in states] == [[n] for n in numbers]

    seen.starts.clear()
    outcomes = await asyncio.gather(adapter.unassign_number(numbers[0]), adapter.unassign_number(numbers[1]),
                                    adapter.assign_number(people[0].user_principal_name, numbers[2]), return_exceptions=True)
    assert outcomes[:2] == [None, None]
    refusal = outcomes[2]
    assert isinstance(refusal, UpstreamError) and refusal.is_refusal
    assert refusal.message == f"assignNumber failed: Telephone Number '{numbers[2]}' has already been assigned to another user"
    assert seen.starts == ["unassignNumber", "$batch"]
    states = await asyncio.gather(*(adapter.voice_state(p.id) for p in people))
    assert [s.phone_numbers for s in states] == [[], [], [numbers[2]]]
    await adapter.unassign_number(numbers[2])
    assert not COALESCER._locks and not COALESCER._open


async def test_looks_at_operations_of_one_job_share_a_batch(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], seen: Seen) -> None:
    """A bulk job's items each look at their number's operation: the looks that come while one is on its way go in
    the next `$batch` together (one round trip where each was one), each answered its own operation's status."""
    connection = connector.connect(tenant.tenant_id)
    adapter = TeamsVoiceAdapter(connection.graph, connection.cmdlets, polling=OperationPolling())  # look at once
    await adapter.user_ids([p.user_principal_name for p in people], "assignNumber")
    numbers = [new_number() for _ in people]
    with job_scope("bulk"):
        operations = [await adapter._start("assignNumber", {"telephoneNumber": n, "assignmentTargetId": p.id,
                                                             "numberType": "directRouting"})
                      for p, n in zip(people, numbers)]
        seen.requests.clear()
        seen.operation_statuses.clear()
        await asyncio.gather(*(adapter._finish(operation) for operation in operations))
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _ in seen.requests] == [
        ("GET", operations[0].location.rsplit("/", 1)[-1]), ("POST", "$batch")]  # the first alone, two together
    assert seen.operation_statuses == ["succeeded"] * 3
    states = await asyncio.gather(*(adapter.voice_state(p.id) for p in people))
    assert [s.phone_numbers for s in states] == [[n] for n in numbers]
    assert not COALESCER._locks and not COALESCER._open


async def test_polling_waits_for_a_running_operation_with_the_microsoft_profile(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator,
        seen: Seen) -> None:
    connection = connector.connect(tenant.tenant_id)
    adapter = TeamsVoiceAdapter(connection.graph, connection.cmdlets, polling=OperationPolling())  # nothing learnt yet
    inject(faults, profile="microsoft", seed=3)  # number operations run 1-3 s
    number = new_number()
    await adapter.assign_number(people[2].user_principal_name, number)
    statuses = seen.operation_statuses
    assert statuses[-1] == "succeeded" and len(statuses) >= 2
    assert set(statuses[:-1]) <= {"notStarted", "running"} and statuses[:-1]
    inject(faults)
    assert (await adapter.voice_state(people[2].id)).phone_numbers == [number]


async def test_the_emulator_keeps_an_operation_running_then_applies_it(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], faults: MsEmulator) -> None:
    graph: GraphClient = connector.connect(tenant.tenant_id).graph
    inject(faults, numberOperationMs=4000)  # (running 1-4 s after the 202: seconds to spare on a busy machine)
    number = new_number()
    accepted = await graph.post("/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber", {
        "telephoneNumber": number, "assignmentTargetId": people[1].id, "numberType": "directRouting"})
    assert accepted.status_code == 202 and "/telephoneNumberManagement/operations('" in accepted.headers["location"]
    operation = (await graph.request("GET", accepted.headers["location"])).json()
    assert operation["status"] in ("notStarted", "running")
    configuration = await graph.get(f"/admin/teams/userConfigurations/{people[1].id}")
    assert configuration["telephoneNumbers"] == []  # not yet: the operation has not completed

    # Input errors are answered at once, not through an operation.
    for bad in ({"telephoneNumber": "tel:+3225550000", "assignmentTargetId": people[1].id, "numberType": "directRouting"},
                {"telephoneNumber": number, "assignmentTargetId": people[1].id, "numberType": "pstn"}):
        with pytest.raises(UpstreamError) as refused:
            await graph.post("/admin/teams/telephoneNumberManagement/numberAssignments/assignNumber", bad)
        assert refused.value.status == 400
    seen_statuses = [operation["status"]]
    for _ in range(300):
        await asyncio.sleep(0.1)
        operation = (await graph.request("GET", accepted.headers["location"])).json()
        seen_statuses.append(operation["status"])
        if operation["status"] == "succeeded":
            break
    assert seen_statuses[-1] == "succeeded" and "running" in seen_statuses
    assert operation["numbers"][0]["status"] == "succeeded"
    configuration = await graph.get(f"/admin/teams/userConfigurations/{people[1].id}")
    assert configuration["telephoneNumbers"] == [{"telephoneNumber": number, "assignmentCategory": "primary"}]
    inject(faults)
    await voice(connector, tenant).unassign_number(number)


async def test_update_number_and_a_number_not_in_the_tenant(connector: MicrosoftConnector, tenant: SeededTenant,
                                                            people: list[DirectoryUser]) -> None:
    adapter, number = voice(connector, tenant), new_number()
    with pytest.raises(UpstreamError, match="was not found in the tenant"):
        await adapter.update_number(number, network_site_id="site-1")
    with pytest.raises(UpstreamError, match="is not assigned to any user"):
        await adapter.unassign_number(number)
    await adapter.assign_number(people[0].user_principal_name, number)
    await adapter.update_number(number, network_site_id="site-1", reverse_number_lookup=["skipInternalVoip"])
    graph: GraphClient = connector.connect(tenant.tenant_id).graph
    listed = [a async for a in graph.pages("/admin/teams/telephoneNumberManagement/numberAssignments")]
    mine = next(a for a in listed if a["telephoneNumber"] == number)
    assert (mine["networkSiteId"], mine["reverseNumberLookupOptions"]) == ("site-1", ["skipInternalVoip"])
    await adapter.remove_numbers(people[0].user_principal_name)


async def test_a_voice_routing_policy_for_many_users_in_one_call(
        connector: MicrosoftConnector, tenant: SeededTenant, seen: Seen) -> None:
    connection = connector.connect(tenant.tenant_id)
    policy = f"Intl-{uuid.uuid4().hex[:6]}"
    await connection.cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": policy})
    admin = connection.directory_admin
    users = [u async for u in admin.users(page_size=999) if u.user_principal_name != tenant.admin][:45]
    adapter = voice(connector, tenant)
    seen.requests.clear()
    await adapter.grant_voice_routing_policy_to_many([u.id for u in users], policy)
    assert len(seen.paths("POST", "/policy/userAssignments/assign")) == 1
    assert len(seen.paths("GET", "/policy/getPolicyId")) == 1
    assert not seen.paths("POST", "/_powershell/invoke")
    states = {s.user_id: s for s in await adapter.voice_users()}
    assert {states[u.id].voice_routing_policy for u in users} == {policy}

    # By user principal name, on a new connection: the ids are looked up in $batch requests of 20.
    adapter = voice(connector, tenant)
    seen.requests.clear()
    await adapter.grant_voice_routing_policy_to_many([u.user_principal_name for u in users[:25]], "Global")
    assert len(seen.paths("POST", "/$batch")) == 2 and len(seen.paths("POST", "/policy/userAssignments/unassign")) == 1
    states = {s.user_id: s for s in await adapter.voice_users()}
    assert [u.id for u in users if states[u.id].voice_routing_policy is not None] == [u.id for u in users[25:]]
    await adapter.grant_voice_routing_policy(users[30].user_principal_name, None)  # one user: the same path
    assert (await adapter.voice_state(users[30].id)).voice_routing_policy is None

    with pytest.raises(UpstreamError, match="is not a user policy") as unknown:
        await adapter.grant_voice_routing_policy(users[0].user_principal_name, "No-Such-Policy")
    assert unknown.value.is_refusal and "policy" in unknown.value.message.lower()
    await adapter.grant_voice_routing_policy_to_many([u.id for u in users], None)


async def test_one_user_grants_sent_together_share_calls_and_a_refusal_is_only_its_users(
        connector: MicrosoftConnector, tenant: SeededTenant, seen: Seen) -> None:
    """Grants of one user each (a bulk job's items) that arrive while a call of the same tenant and policy is on
    its way go in the next call together; when Teams refuses a shared call (an unknown user among them), each
    user is sent again alone, so only the refused user's grant fails."""
    connection = connector.connect(tenant.tenant_id)
    policy = f"Batch-{uuid.uuid4().hex[:6]}"
    await connection.cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": policy})
    users = [u async for u in connection.directory_admin.users(page_size=999) if u.user_principal_name != tenant.admin][:12]
    adapter = voice(connector, tenant)
    seen.requests.clear()
    await asyncio.gather(*(adapter.grant_voice_routing_policy(u.id, policy) for u in users[:10]))
    # The first is sent at once, alone; the nine that came while it was on its way share the next call.
    assert len(seen.paths("POST", "/policy/userAssignments/assign")) == 2
    states = {s.user_id: s for s in await adapter.voice_users()}
    assert {states[u.id].voice_routing_policy for u in users[:10]} == {policy}

    # Another job's change (a one-user change beside a bulk job) is never held for the bulk job's next call.
    seen.requests.clear()

    async def bulk(user: DirectoryUser) -> None:
        with job_scope("bulk"):
            await adapter.grant_voice_routing_policy(user.id, "Global")

    async def one_user_change() -> None:
        with job_scope("one-user-change"):
            await adapter.grant_voice_routing_policy(users[9].id, "Global")

    await asyncio.gather(*(bulk(u) for u in users[:9]), one_user_change())
    assert len(seen.paths("POST", "/policy/userAssignments/unassign")) == 3  # the bulk job's two and its own
    await adapter.grant_voice_routing_policy_to_many([u.id for u in users[:10]], policy)

    seen.requests.clear()
    unknown = str(uuid.uuid4())
    wanted = [users[10].id, users[11].id, unknown]
    outcomes = await asyncio.gather(*(adapter.grant_voice_routing_policy(u, "Global") for u in [users[0].id, *wanted]),
                                    return_exceptions=True)
    assert outcomes[:3] == [None, None, None]
    assert isinstance(outcomes[3], UpstreamError) and outcomes[3].is_refusal
    # one alone, one shared and refused, then its three users one by one
    assert len(seen.paths("POST", "/policy/userAssignments/unassign")) == 5
    states = {s.user_id: s for s in await adapter.voice_users()}
    assert [states[u.id].voice_routing_policy for u in (users[0], users[10], users[11])] == [None, None, None]
    await adapter.grant_voice_routing_policy_to_many([u.id for u in users[1:10]], None)
    assert not COALESCER._locks and not COALESCER._open  # nothing kept once a key's changes are answered


async def test_voice_states_read_together_share_a_batch_counted_as_microsoft_counts(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], seen: Seen) -> None:
    """A bulk job's items each read their user's voice state: the reads waiting while one is on its way go in the next
    `$batch` together (GraphClient.get_batched), each answered its own user's state; an unknown user is NotFound for
    its read alone. The budget's request counter counts the reads inside a batch, as Microsoft's limits do."""
    adapter, numbers = voice(connector, tenant), [new_number(), new_number()]
    for person, number in zip(people, numbers):
        await adapter.assign_number(person.user_principal_name, number)

    def answered() -> float:
        return REGISTRY.get_sample_value("teamsvoice_microsoft_budget_requests_total", {
            "service_class": "teams", "tenant": tenant.tenant_id.lower(), "outcome": "answered"}) or 0.0

    seen.requests.clear()
    before = answered()
    wanted = [people[0].id, people[1].id, str(uuid.uuid4()), people[2].id]
    states = await asyncio.gather(*(adapter.voice_state(user) for user in wanted), return_exceptions=True)
    reads = [p for m, p, _ in seen.requests if p.endswith("/$batch") or "/userConfigurations/" in p]
    assert [p.rsplit("/", 1)[-1] if p.endswith("/$batch") else "GET" for p in reads] == ["GET", "$batch"]
    assert isinstance(states[2], NotFound)
    assert [(s.user_id, s.phone_numbers) for s in (states[0], states[1], states[3])] == [  # type: ignore[union-attr]
        (people[0].id, [numbers[0]]), (people[1].id, [numbers[1]]), (people[2].id, [])]
    assert answered() - before == 4  # two round trips, four Teams requests
    assert not COALESCER._locks and not COALESCER._open
    for person in people[:2]:
        await adapter.remove_numbers(person.user_principal_name)


def test_a_tenant_new_to_the_process_starts_from_the_time_learnt_for_others() -> None:
    """An operation's time is Microsoft's, not the tenant's: a tenant whose operations this process has not seen
    finish is first looked at after the estimate last learnt for any tenant, not at once (twenty new tenants
    together spent 4.0 Teams requests per user instead of 3.3)."""
    polling = OperationPolling()
    assert polling.first_delay("new") == 0.0  # nothing learnt anywhere: look at once
    polling.learn("known", 0.0, 2.0)
    assert polling.first_delay("new") == polling.first_delay("known") == 2.0
    assert polling.first_delay("new", interactive=True) == 0.5
    polling.learn("new", 1.0, 1.2)  # its own first operation: its own estimate from then on
    assert polling.first_delay("new") == pytest.approx(1.1) and polling.first_delay("known") == 2.0


def test_the_first_look_holds_steady_with_many_operations_in_flight() -> None:
    """A bulk job has tens of operations in flight and each teaches only when it is looked at, seconds after it
    began: the learnt first look must not swing (with large nudges it did, between 0.6 s and the cap)."""
    polling, draw = OperationPolling(), random.Random(3)
    due: list[tuple[float, float, float]] = []  # (when looked at, how long it took, when looked at after acceptance)
    learnt, now = [], 0.0
    for index in range(6000):
        now += 0.1  # ten operations accepted per second
        for entry in sorted(e for e in due if e[0] <= now):
            due.remove(entry)
            _, took, look = entry
            done = took <= look
            polling.learn("t", 0.0 if done else look, look if done else took + 0.1)
        took, look = draw.uniform(1.0, 3.0), polling.first_delay("t") + draw.uniform(0.0, 1.0)  # queued for the budget
        due.append((now + look, took, look))
        if index > 1000:
            learnt.append(polling.first_delay("t"))
    learnt.sort()
    assert 1.8 <= learnt[len(learnt) // 20] and learnt[-len(learnt) // 20] <= 3.0, (learnt[0], learnt[-1])


class RecordingPolling(OperationPolling):
    def __init__(self, **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.waits: list[float] = []

    async def wait(self, seconds: float) -> None:
        self.waits.append(seconds)


def scripted_graph(answers: list[httpx.Response], sent: list[httpx.Request] | None = None, *,
                   on_the_wire: float = 0.0) -> GraphClient:
    """A Graph client whose answers are scripted in memory (no network), in order; `sent` collects the requests;
    each answer takes `on_the_wire` seconds."""
    script = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if sent is not None:
            sent.append(request)
        answer = next(script)
        if not on_the_wire:
            return answer
        time.sleep(on_the_wire)  # (a streamed body: httpx times only a response it reads itself)
        return httpx.Response(answer.status_code, headers=answer.headers, stream=httpx.ByteStream(answer.content))

    async def token() -> str:
        return "token"

    return GraphClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), "https://graph.test/v1.0", token,
                       tenant_id="scripted")


def _accepted(retry_after: str | None = None) -> httpx.Response:
    headers = {"Location": "https://graph.test/v1.0/admin/teams/telephoneNumberManagement/operations('op-1')"}
    if retry_after:
        headers["Retry-After"] = retry_after
    return httpx.Response(202, headers=headers)


def _operation(status: str, detail: str | None = None, retry_after: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"id": "op-1", "status": status, "numbers": [{"status": status, "statusDetail": detail}]},
                          headers={"Retry-After": retry_after} if retry_after else {})


async def test_polling_honours_retry_after_and_backs_off() -> None:
    graph = scripted_graph([_accepted("2"), _operation("notStarted"), _operation("running", retry_after="7"),
                            _operation("running"), _operation("running"), _operation("succeeded")])
    polling = RecordingPolling(floor=0.1, cap=0.5)
    polling.INTERACTIVE = 0  # every operation polled as a bulk job's
    await TeamsVoiceAdapter(graph, cmdlets=None, polling=polling).unassign_number("+3225550001")  # type: ignore[arg-type]
    # The 202's Retry-After, the floor, the operation's Retry-After, then the backoff doubling up to its cap.
    assert polling.waits == pytest.approx([2.0, 0.1, 7.0, 0.4, 0.5], abs=0.05)  # the first counted from the 202


async def test_an_interactive_operation_is_looked_at_sooner_and_more_often() -> None:
    """A job awaiting one or two operations (a one-user change) looks at a quarter of the learnt time, then every
    `interactive_every`; a job awaiting more (a bulk job) at the learnt time, then backing off from a quarter
    of it."""
    def answers() -> list[httpx.Response]:
        return [_accepted(), _operation("running"), _operation("running"), _operation("succeeded")]

    polling = RecordingPolling(interactive_every=0.25)
    polling.learn("scripted", 0.0, 2.0)  # the tenant's operations are done about 2 s after they were accepted
    with job_scope("one-user-change"):
        await TeamsVoiceAdapter(scripted_graph(answers()), cmdlets=None, polling=polling).unassign_number("+3225550001")  # type: ignore[arg-type]
    assert polling.waits == pytest.approx([0.5, 0.25, 0.25], abs=0.05)

    # Looks that spend 0.15 s on the wire: the next is due 0.25 s after the previous was sent, not after it came back.
    # The client measures each call's wire time (at least the 0.15 s slept); the adapter is then given exactly 0.15 s,
    # as a busy machine stretches the sleep (0.2 s once failed a check against the measured 0.1 s).
    polling.waits.clear()
    graph, wires = scripted_graph(answers(), on_the_wire=0.15), []
    sent = graph.batched

    async def on_the_wire(method: str, url: str, body: Any = None) -> BatchResponse:
        response = await sent(method, url, body)
        wires.append(response.wire)
        return dataclasses.replace(response, wire=0.15)
    graph.batched = on_the_wire  # type: ignore[method-assign]
    with job_scope("one-user-change"):
        await TeamsVoiceAdapter(graph, cmdlets=None, polling=polling).unassign_number("+3225550001")  # type: ignore[arg-type]
    assert len(wires) == 4 and min(wires) >= 0.15, wires  # the start, then three looks
    assert polling.waits[1:] == pytest.approx([0.1, 0.1], abs=1e-6)

    polling.waits.clear()
    with job_scope("bulk"), polling.awaiting("scripted"), polling.awaiting("scripted"):  # two more of its operations
        await TeamsVoiceAdapter(scripted_graph(answers()), cmdlets=None, polling=polling).unassign_number("+3225550001")  # type: ignore[arg-type]
    assert polling.waits == pytest.approx([2.0, 0.5, 1.0], abs=0.05)


@pytest.mark.parametrize("queueing", [0.0, 1.0])
def test_the_first_look_comes_when_most_operations_are_done(queueing: float) -> None:
    """The learnt first look converges to when QUANTILE of the operations are done, counting the time a look
    queues for the tenant's budget (looks are sent `queueing` s after they were due): about one look per number."""
    polling, draw = OperationPolling(), random.Random(7)
    outcomes = []
    for _ in range(3000):
        took = draw.uniform(1.0, 3.0)  # the emulator's Microsoft profile
        look = polling.first_delay("t") + queueing
        done = took <= look
        polling.learn("t", 0.0 if done else look, look if done else took + 0.1)
        outcomes.append(done)
    share = sum(outcomes[-1500:]) / 1500
    assert 0.86 <= share <= 0.94, share
    assert abs(polling.first_delay("t") + queueing - 2.8) <= 0.2  # the 90th percentile of 1-3 s


async def test_a_failed_operation_is_a_refusal_and_a_stuck_one_is_transient() -> None:
    failed = scripted_graph([_accepted(), _operation("failed", "Telephone Number '+3225550001' is not assigned to any "
                                                               "user or resource account.")])
    with pytest.raises(UpstreamError) as refusal:
        await TeamsVoiceAdapter(failed, cmdlets=None, polling=RecordingPolling()).unassign_number("+3225550001")  # type: ignore[arg-type]
    assert refusal.value.message.startswith("unassignNumber failed: Telephone Number")
    assert (refusal.value.status, refusal.value.retryable) == (400, False)

    stuck = scripted_graph([_accepted()] + [_operation("running")] * 50)
    with pytest.raises(UpstreamError, match="still running after") as transient:
        await TeamsVoiceAdapter(stuck, cmdlets=None, polling=RecordingPolling(deadline=0.0)).unassign_number("+3225550001")  # type: ignore[arg-type]
    assert transient.value.retryable

    lost = scripted_graph([_accepted(), httpx.Response(404, json={"error": {"code": "NotFound", "message": "gone"}})])
    with pytest.raises(UpstreamError, match="lost the number operation") as gone:
        await TeamsVoiceAdapter(lost, cmdlets=None, polling=RecordingPolling()).unassign_number("+3225550001")  # type: ignore[arg-type]
    assert gone.value.retryable


def test_number_operation_timing_in_the_emulator() -> None:
    faults = Faults()
    faults.configure(FaultConfig(profile="microsoft", seed=2))
    durations = [faults.number_operation_seconds() for _ in range(100)]
    assert 1.0 <= min(durations) and max(durations) <= 3.0
    # The requests themselves are ordinary Graph writes and reads, not the operation's duration.
    assert faults.latency_seconds("POST", f"{NUMBERS}/assignNumber") <= 0.6
    assert faults.latency_seconds("GET", "/v1.0/admin/teams/telephoneNumberManagement/operations('x')") <= 0.4
    faults.configure(FaultConfig(numberOperationMs=250))
    assert faults.number_operation_seconds() == 0.25
    faults.configure(FaultConfig())
    assert faults.number_operation_seconds() == 0.0


async def at_once(call: Callable[[], Awaitable[object]]) -> object:
    return await call()


async def test_apply_grants_a_policy_to_a_chunk_of_users_in_one_call(
        connector: MicrosoftConnector, tenant: SeededTenant, people: list[DirectoryUser], seen: Seen) -> None:
    """Voice state apply (domain/voice_state/service.grant_policies): one call per policy; when Microsoft refuses
    the group (a user deleted since the plan), each user is tried alone and only that user fails."""
    connection = connector.connect(tenant.tenant_id)
    policy = f"Apply-{uuid.uuid4().hex[:6]}"
    await connection.cmdlets.run("New-CsOnlineVoiceRoutingPolicy", {"Identity": policy})
    tenant_voice_admin = tenant_voice(connection)

    def difference(user: DirectoryUser, wanted: str | None) -> Difference:
        return Difference(f"user:{user.user_principal_name}:voiceRoutingPolicy", "user", user.user_principal_name,
                          "voiceRoutingPolicy", "create", wanted, None, "policy_removed", "", user.id)

    seen.requests.clear()
    results = await grant_policies(tenant_voice_admin, [difference(u, policy) for u in people],
                                   DesiredState(tenant.tenant_id), at_once)
    assert [r["status"] for r in results] == ["done"] * 3
    assert len(seen.paths("POST", "/policy/userAssignments/assign")) == 1
    states = {s.user_id: s for s in await tenant_voice_admin.voice_users()}
    assert {states[u.id].voice_routing_policy for u in people} == {policy}

    await connection.directory_admin.delete_user(people[1].id)
    results = await grant_policies(tenant_voice_admin, [difference(u, None) for u in people],
                                   DesiredState(tenant.tenant_id), at_once)
    assert [r["status"] for r in results] == ["done", "failed", "done"]
    assert "Management object not found" in results[1]["detail"]
    states = {s.user_id: s for s in await tenant_voice_admin.voice_users()}
    assert (states[people[0].id].voice_routing_policy, states[people[2].id].voice_routing_policy) == (None, None)


def _policy_id(identifier: str) -> httpx.Response:
    return httpx.Response(200, json={"value": [{"id": identifier, "name": "p", "policyId": identifier}]})


async def test_a_remembered_policy_id_refused_is_asked_again() -> None:
    user = str(uuid.uuid4())
    refused_id = httpx.Response(400, json={"error": {"code": "BadRequest", "message": "Unknown policy id."}})
    name = f"Made-Again-{uuid.uuid4().hex[:6]}"
    sent: list[httpx.Request] = []
    graph = scripted_graph([_policy_id("id-1"), httpx.Response(204),  # first grant: looked up, remembered
                            refused_id, _policy_id("id-2"), httpx.Response(204)], sent)  # the policy was made again
    adapter = TeamsVoiceAdapter(graph, cmdlets=None)  # type: ignore[arg-type]
    await adapter.grant_voice_routing_policy(user, name)
    await adapter.grant_voice_routing_policy(user, name)  # refused with id-1, retried with id-2
    posted = [json.loads(r.content)["value"][0]["policyId"] for r in sent if r.method == "POST"]
    assert posted == ["id-1", "id-1", "id-2"]
    assert [r.method for r in sent] == ["GET", "POST", "POST", "GET", "POST"]

    same = f"Same-{uuid.uuid4().hex[:6]}"
    graph = scripted_graph([_policy_id("id-3"), refused_id, _policy_id("id-3")])
    with pytest.raises(UpstreamError, match="Unknown policy id") as refusal:  # the id is current: Teams' refusal stands
        await TeamsVoiceAdapter(graph, cmdlets=None).grant_voice_routing_policy(user, same)  # type: ignore[arg-type]
    assert refusal.value.status == 400


async def test_an_absolute_url_goes_in_a_batch_only_under_the_clients_root() -> None:
    """`GraphClient.batched` takes a Location as Graph answered it: under the client's version root it shares `$batch`
    calls as a relative URL would (relative inside the batch, as Graph requires); under another root it goes alone."""
    sent: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        await asyncio.sleep(0.05)  # on the wire: the requests that come meanwhile wait for the next call
        if request.url.path.endswith("/$batch"):
            members = json.loads(request.content)["requests"]
            return httpx.Response(200, json={"responses": [
                {"id": m["id"], "status": 200, "headers": {"Content-Type": "application/json"}, "body": {"url": m["url"]}}
                for m in members]})
        return httpx.Response(200, json={"url": str(request.url)})

    async def token() -> str:
        return "token"

    graph = GraphClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), "https://graph.test/v1.0", token,
                        tenant_id="scripted", credential="app")
    ours = [f"https://graph.test/v1.0/admin/teams/telephoneNumberManagement/operations('op-{i}')" for i in range(3)]
    answers = await asyncio.gather(*(graph.batched("GET", url) for url in ours))
    assert [(r.method, r.url.path) for r in sent] == [("GET", "/v1.0/admin/teams/telephoneNumberManagement/operations('op-0')"),
                                                       ("POST", "/v1.0/$batch")]  # the first alone, two together
    assert [m["url"] for m in json.loads(sent[1].content)["requests"]] == [
        "/admin/teams/telephoneNumberManagement/operations('op-1')", "/admin/teams/telephoneNumberManagement/operations('op-2')"]
    assert [a.body["url"].rsplit("/", 1)[-1] for a in answers] == ["operations('op-0')", "operations('op-1')", "operations('op-2')"]

    sent.clear()
    foreign = [f"https://elsewhere.test/v1.0/operations('op-{i}')" for i in range(3)]
    answers = await asyncio.gather(*(graph.batched("GET", url) for url in foreign))
    assert [(r.method, r.url.host) for r in sent] == [("GET", "elsewhere.test")] * 3  # each alone
    assert [a.body["url"] for a in answers] == foreign
    assert not COALESCER._locks and not COALESCER._open
